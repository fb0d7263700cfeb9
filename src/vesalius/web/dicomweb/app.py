"""The DICOMweb surface, mounted at ``/dicom-web`` (PS3.18 resource paths)."""

from __future__ import annotations

from starlette.routing import Route

from vesalius.web.dicomweb import delete, qido, stow, wado

_S = "/studies/{study}"
_SE = _S + "/series/{series}"
_I = _SE + "/instances/{instance}"

routes = [
    Route("/studies", qido.search_studies, methods=["GET"]),
    Route("/studies", stow.store_instances, methods=["POST"]),
    Route("/series", qido.search_series, methods=["GET"]),
    Route("/instances", qido.search_instances, methods=["GET"]),
    Route("/patients", qido.search_patients, methods=["GET"]),
    Route(_S, stow.store_instances, methods=["POST"]),
    Route(_S + "/series", qido.search_series, methods=["GET"]),
    Route(_S + "/instances", qido.search_instances, methods=["GET"]),
    Route(_SE + "/instances", qido.search_instances, methods=["GET"]),
    Route(_I + "/frames/{frames}", wado.retrieve_frames, methods=["GET"]),
    Route(_I + "/frames/{frames}/rendered", wado.retrieve_rendered, methods=["GET"]),
    Route(_I + "/frames/{frames}/thumbnail", wado.retrieve_thumbnail, methods=["GET"]),
    Route(_I + "/bulkdata/{tag}", wado.retrieve_bulkdata, methods=["GET"]),
]
# Every study, series and instance resource has the same retrieve/delete family.
for _resource in (_S, _SE, _I):
    routes += [
        Route(_resource, wado.retrieve_instances, methods=["GET"]),
        Route(_resource, delete.delete_resource, methods=["DELETE"]),
        Route(_resource + "/metadata", wado.retrieve_metadata, methods=["GET"]),
        Route(_resource + "/rendered", wado.retrieve_rendered, methods=["GET"]),
        Route(_resource + "/thumbnail", wado.retrieve_thumbnail, methods=["GET"]),
    ]
