"""The HTTP/1.1 protocol used by ``vesalius serve``: uvicorn's h11, with TCP_NODELAY.

asyncio enables TCP_NODELAY only for sockets it created itself with
``proto=IPPROTO_TCP``; the listening socket uvicorn shares with worker processes
has ``proto=0``, so accepted connections kept Nagle's algorithm and every
response written in two parts waited ~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
