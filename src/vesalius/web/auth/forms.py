"""Bounded, strict reading of the provider's form bodies and query strings.

The sign-in, token and revocation endpoints take ``application/x-www-form-urlencoded``
bodies (RFC 6749 §3.2, https://www.rfc-editor.org/rfc/rfc6749#section-3.2). They are read
here with a size limit (a body past it is refused while it streams, not after it is held in
memory), decoded as strict UTF-8, and refused when a parameter appears twice: "Request and
response parameters MUST NOT be included more than once" (RFC 6749 §3.1).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

#: Largest form body accepted (a login form or a token request is a few hundred bytes; a
#: private_key_jwt assertion a few KiB).
MAX_FORM_BYTES = 64 * 1024
#: Most parameters in one form or query string.
MAX_FIELDS = 64
FORM_TYPE = "application/x-www-form-urlencoded"


class FormError(Exception):
    """A form the provider cannot read; ``status`` is 400, 413 or 415."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def parse_params(text: str) -> dict[str, str]:
    """``a=1&b=2`` as a dict; a repeated or malformed parameter is a :class:`FormError`."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                          errors="strict", max_num_fields=MAX_FIELDS)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormError(400, "the parameters cannot be read") from exc
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise FormError(400, f"the parameter {name!r} is repeated")
        if "\x00" in name or "\x00" in value:
            raise FormError(400, "the parameters contain a NUL character")
        out[name] = value
    return out


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The request's form parameters, or a :class:`FormError` (never a partial read)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise FormError(415, f"the body must be {FORM_TYPE}")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise FormError(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise FormError(413, f"the body is larger than {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise FormError(413, f"the body is larger than {limit} bytes")
    except ClientDisconnect as exc:
        raise FormError(400, "the body was cut short") from exc
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError(400, "the body is not UTF-8") from exc
    return parse_params(text)
