"""The patient record: a FHIR R4 (4.0.1) resource store with search, history and bundles."""
