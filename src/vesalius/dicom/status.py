"""DICOM status codes and the domain errors they stand for (PS3.4 Annexes B, C, F, J, K,
PS3.7 Annex C; PS3.18 §10.5.3 reuses them as STOW-RS failure reasons)."""

from __future__ import annotations

from vesalius.core.errors import (
    Conflict,
    DoesNotMatchRequest,
    InvalidInput,
    MissingAttribute,
    NotFound,
    StorageFailure,
    TooLarge,
    VesaliusError,
)

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
NOT_AUTHORIZED = 0x0124
NO_SUCH_OBJECT_INSTANCE = 0x0112
DUPLICATE_SOP_INSTANCE = 0x0111
PROCESSING_FAILURE = 0x0110
INVALID_ATTRIBUTE_VALUE = 0x0106
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
MPPS_MAY_NO_LONGER_BE_UPDATED = 0xA710
CLASS_INSTANCE_CONFLICT = 0x0119


def store_status(error: VesaliusError) -> int:
    """Failure status for an instance that was not stored (C-STORE, PS3.4 Table B.2-1;
    STOW-RS failure reasons, PS3.18 §10.5.3)."""
    if isinstance(error, TooLarge | StorageFailure):
        return OUT_OF_RESOURCES
    if isinstance(error, MissingAttribute | DoesNotMatchRequest):
        return DATASET_DOES_NOT_MATCH
    if isinstance(error, Conflict):
        return DUPLICATE_SOP_INSTANCE
    if isinstance(error, InvalidInput):
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE


def query_status(error: VesaliusError) -> int:
    """C-FIND/C-MOVE/C-GET failure status (PS3.4 Table C.4-1)."""
    if isinstance(error, InvalidInput):
        return DATASET_DOES_NOT_MATCH
    if isinstance(error, NotFound):
        return DATASET_DOES_NOT_MATCH
    return CANNOT_UNDERSTAND
