"""``GET /api/imaging-link/problems``: archived studies the imaging link could not put in a chart.

Each entry names the study by its StudyInstanceUID and gives the problem as an OperationOutcome
issue (https://hl7.org/fhir/R4/operationoutcome.html) with the time it was recorded; no
patient data, so the list can be shown to whoever reconciles identities (by merging Patients,
``POST /fhir/Patient/$merge``).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vesalius.node import Node


async def problems(request: Request) -> Response:
    node: Node = request.app.state.node
    found = await run_in_threadpool(node.link.problems)
    return JSONResponse([{"studyInstanceUid": p.study_uid, "issue": p.issue,
                          "recorded": p.at.isoformat()} for p in found])
