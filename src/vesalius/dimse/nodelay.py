"""TCP_NODELAY for DIMSE connections: C-STORE rates are latency-bound (Nagle + delayed ACK)."""

from __future__ import annotations

import socket
from typing import Any

from pynetdicom.events import Event


def set_nodelay(event: Event) -> None:
    """``EVT_CONN_OPEN`` handler: disable Nagle's algorithm on the association's socket."""
    try:
        wrapper: Any = event.assoc.dul.socket
        sock = wrapper.socket if wrapper is not None else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass
