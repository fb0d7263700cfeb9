"""What can go wrong when reading an encrypted blob, in the domain error tree.

Neither error is the caller's fault, so neither is an ``InvalidInput``: the edges answer
them as server errors (HTTP 500, DIMSE "processing failure"), and the message names the
object's state, never its content or any key material.
"""

from __future__ import annotations

from vesalius.core.errors import VesaliusError


class TamperedData(VesaliusError):
    """Stored ciphertext failed authentication: flipped, truncated, reordered or moved.

    AES-GCM refuses to return plaintext whose tag does not verify, so a damaged object is
    reported, never served as garbage.
    """

    code = "integrity-failure"


class KeyUnavailable(VesaliusError):
    """The key-encryption key an object was wrapped under is not known to this node."""

    code = "key-unavailable"
