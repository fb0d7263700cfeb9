"""The DICOM listener(s): one plain port and, when configured, one TLS port."""

from __future__ import annotations

import copy
import logging
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, _config, build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import _STORAGE_CLASSES

from vesalius.config import Settings
from vesalius.dimse import uids
from vesalius.dimse.handlers import DimseHandlers
from vesalius.dimse.tls import server_context

log = logging.getLogger(__name__)

#: Query/retrieve and normalized services use the uncompressed syntaxes.
UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2")


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom settings: no identifiers (PHI) in logs, streamed C-STORE."""
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    _config.STORE_RECV_CHUNKED_DATASET = True
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def storage_sop_classes() -> list[str]:
    return sorted(str(uid) for uid in _STORAGE_CLASSES.values())


def build_ae(settings: Settings) -> AE:
    ae = AE(ae_title=settings.ae_title)
    ae.require_called_aet = True
    ae.maximum_pdu_size = settings.dicom_max_pdu
    ae.maximum_associations = settings.dicom_max_associations
    ae.dimse_timeout = settings.dicom_timeout
    ae.network_timeout = settings.dicom_timeout
    ae.acse_timeout = 30
    # pynetdicom accepts the first of *our* syntaxes the requestor proposed: Explicit VR
    # Little Endian comes first so a peer offering it is not downgraded to implicit VR
    # (which turns private elements into UN for every later reader).
    storage_syntaxes = [UNCOMPRESSED[0]] + [ts for ts in ALL_TRANSFER_SYNTAXES
                                            if ts != UNCOMPRESSED[0]]
    contexts = [build_context(uid, storage_syntaxes) for uid in storage_sop_classes()]
    contexts += [build_context(uid, list(UNCOMPRESSED)) for uid in uids.QUERY_RETRIEVE]
    contexts += [build_context(uid, list(UNCOMPRESSED))
                 for uid in uids.NORMALIZED_AND_VERIFICATION]
    ae.supported_contexts = contexts
    # C-GET sends C-STORE sub-operations back over the same association: the
    # storage contexts must accept the SCU/SCP role negotiation from the caller.
    for cx in ae.supported_contexts:
        if str(cx.abstract_syntax) in set(storage_sop_classes()):
            cx.scu_role = True
            cx.scp_role = True
    return ae


class _SharedContext(PresentationContext):
    """A supported context that is cheap to deep-copy.

    pynetdicom deep-copies every supported context for every incoming association;
    with all storage classes times every transfer syntax that took ~150 ms per
    association. Syntax UIDs are immutable strings, so copying the lists suffices.
    """

    def __deepcopy__(self, _memo: dict[int, Any]) -> _SharedContext:
        clone = copy.copy(self)
        clone.__dict__ = {k: list(v) if isinstance(v, list) else v
                          for k, v in self.__dict__.items()}
        return clone


def listener_contexts(ae: AE) -> list[PresentationContext]:
    """The AE's supported contexts as :class:`_SharedContext` objects for the server."""
    out: list[PresentationContext] = []
    for cx in ae.supported_contexts:
        shared = _SharedContext()
        shared.__dict__.update(copy.deepcopy(cx.__dict__))
        out.append(shared)
    return out


class DicomServer:
    """Starts and stops the DIMSE listeners around the HTTP server's lifetime."""

    def __init__(self, settings: Settings, handlers: DimseHandlers) -> None:
        self.settings = settings
        self.handlers = handlers
        self.ae: AE | None = None
        self.servers: list[Any] = []

    def start(self) -> None:
        configure_pynetdicom()
        self.ae = build_ae(self.settings)
        bindings: Any = self.handlers.bindings()
        contexts = listener_contexts(self.ae)
        if self.settings.dicom_port:
            self.servers.append(self.ae.start_server(
                (self.settings.host, self.settings.dicom_port), block=False,
                evt_handlers=bindings, contexts=contexts))
        if self.settings.dicom_tls_port:
            self.servers.append(self.ae.start_server(
                (self.settings.host, self.settings.dicom_tls_port), block=False,
                evt_handlers=bindings, ssl_context=server_context(self.settings),
                contexts=contexts))

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
        self.servers.clear()
