"""Accept header parsing for DICOMweb (PS3.18 §8.7 "Content negotiation")."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    @property
    def related_type(self) -> str | None:
        return self.params.get("type")


def _split_params(text: str) -> list[str]:
    """Split on ';' outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _split_ranges(header: str) -> list[str]:
    ranges: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            ranges.append("".join(current))
            current = []
        else:
            current.append(ch)
    ranges.append("".join(current))
    return [r for r in ranges if r.strip()]


def parse_accept(header: str | None) -> list[MediaRange]:
    """Media ranges in preference order (highest q first, then header order)."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    out: list[MediaRange] = []
    for raw in _split_ranges(header[:4096]):
        pieces = _split_params(raw)
        media = pieces[0].strip().lower()
        params: dict[str, str] = {}
        q = 1.0
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"').strip()
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif name:
                params[name] = value
        if q > 0:
            out.append(MediaRange(media, params, q))
    return sorted(out, key=lambda r: -r.q)


def matches(media: MediaRange, wanted: str) -> bool:
    if media.type in ("*/*", wanted):
        return True
    major, _, minor = media.type.partition("/")
    return minor == "*" and wanted.startswith(major + "/")
