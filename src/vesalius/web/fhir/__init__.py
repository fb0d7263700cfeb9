"""The FHIR R4 RESTful API (https://hl7.org/fhir/R4/http.html), mounted at ``/fhir``.

JSON only: ``application/fhir+json`` and ``application/json`` are served; XML is answered with
406 (``Accept``/``_format``) or 415 (request bodies).
"""
