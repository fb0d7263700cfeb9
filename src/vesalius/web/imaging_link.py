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

from vesalius.core.errors import VesaliusError
from vesalius.node import Node
from vesalius.web.principal import record_for
from vesalius.web.problems import problem_for


async def problems(request: Request) -> Response:
    node: Node = request.app.state.node
    try:
        record_for(request).require_function("imaging-link.problems")
    except VesaliusError as error:
        return problem_for(error)
    found = await run_in_threadpool(node.link.problems)
    return JSONResponse([{"studyInstanceUid": p.study_uid, "issue": p.issue,
                          "recorded": p.at.isoformat()} for p in found])
