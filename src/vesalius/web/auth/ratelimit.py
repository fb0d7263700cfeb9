"""A sliding-window request limit per client address, held in this process.

What it is: at most ``limit`` requests in any 60 seconds from one address, on one endpoint;
the next is answered 429 with ``Retry-After`` (RFC 6585 §4,
https://www.rfc-editor.org/rfc/rfc6585#section-4). It slows password guessing and token
grinding from one address; account lockout (in the identity service) covers guessing spread
over many addresses.

What it is not: shared between processes or nodes. Each HTTP worker counts on its own, so
the effective limit is ``limit`` times the number of workers behind the same address; a
deployment that needs one global count puts the limit in its load balancer.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_SECONDS = 60.0
#: Addresses tracked at once; the least recently seen are forgotten first, so a flood of
#: rotating addresses costs bounded memory.
MAX_ADDRESSES = 10_000


@dataclass(frozen=True)
class Refusal:
    #: Seconds until a request from this address is allowed again (for ``Retry-After``).
    retry_after: int
    #: The first refusal of this address in its window: the one worth a Security Alert.
    #: Auditing each refused request would turn a flood into a flood of audit records.
    first: bool


@dataclass
class _Address:
    times: deque[float] = field(default_factory=deque)
    alerted_until: float = -math.inf


class SlidingWindow:
    def __init__(self, limit: int, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, _Address] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, address: str) -> Refusal | None:
        """Count one request: ``None`` when it is allowed, else a :class:`Refusal`.

        A refused request is not counted, so a client that waits as told gets through.
        ``limit <= 0`` turns the limit off.
        """
        if self.limit <= 0:
            return None
        now = self.clock()
        with self._lock:
            entry = self._seen.pop(address, None) or _Address()
            self._seen[address] = entry
            while len(self._seen) > self.max_addresses:
                self._seen.popitem(last=False)
            times = entry.times
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return None
            first = now >= entry.alerted_until
            if first:
                entry.alerted_until = now + self.window
            return Refusal(max(1, math.ceil(times[0] + self.window - now)), first)
