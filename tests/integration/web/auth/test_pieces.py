"""The provider's pure pieces with a controlled clock: the rate window and sign-in tickets."""

from __future__ import annotations

from pathlib import Path

from vesalius.web.auth.ratelimit import SlidingWindow
from vesalius.web.auth.tickets import PageSecrets, Ticket, load_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_refuses_then_forgives_and_alerts_once_per_window() -> None:
    clock = Clock()
    window = SlidingWindow(2, clock=clock)
    assert window.hit("a") is None
    clock.now += 10
    assert window.hit("a") is None
    first = window.hit("a")
    assert first is not None and first.first and first.retry_after == 50
    clock.now += 20
    again = window.hit("a")
    assert again is not None and not again.first and again.retry_after == 30
    assert window.hit("b") is None  # other addresses are counted apart
    clock.now += 30  # the first request left the window
    assert window.hit("a") is None
    clock.now += 61
    assert window.hit("a") is None and window.hit("a") is None
    later = window.hit("a")
    assert later is not None and later.first


def test_window_forgets_the_oldest_addresses_and_can_be_off() -> None:
    window = SlidingWindow(1, max_addresses=2, clock=Clock())
    for address in ("a", "b", "c"):
        assert window.hit(address) is None
    assert window.hit("a") is None  # forgotten, so counted afresh
    assert window.hit("c") is not None
    off = SlidingWindow(0)
    assert all(off.hit("a") is None for _ in range(100))


def test_key_file_is_private_and_shared(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key = load_key(keys)
    assert load_key(keys) == key
    assert (keys / "web-auth.key").stat().st_mode & 0o077 == 0


def test_tickets_expire_and_are_bound_to_the_browser(tmp_path: Path) -> None:
    secrets = PageSecrets(load_key(tmp_path))
    ticket = Ticket("mfa", "root", "Correct-horse-battery-9")
    sealed = secrets.seal(ticket, "browser-1", now=1000.0)
    assert "Correct-horse" not in sealed and "Correct-horse" not in repr(ticket)
    assert secrets.open(sealed, "browser-1", now=1100.0) == ticket
    assert secrets.open(sealed, "browser-2", now=1100.0) is None
    assert secrets.open(sealed, "browser-1", now=1000.0 + 301) is None
    for junk in ("", "!!!", sealed[:20], "A" * 40, sealed + "A"):
        assert secrets.open(junk, "browser-1", now=1100.0) is None
    assert secrets.csrf_valid("browser-1", secrets.csrf_token("browser-1"))
    assert not secrets.csrf_valid("browser-2", secrets.csrf_token("browser-1"))
    assert not secrets.csrf_valid("browser-1", "")
