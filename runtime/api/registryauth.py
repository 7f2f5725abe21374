"""The X-Registry-Auth header that pull and push requests carry."""

import base64
import binascii
import json

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Any, Dict, Optional  # noqa: F401


def decode_registry_auth(header):
    # type: (Optional[str]) -> Optional[Dict[str, Any]]
    """The X-Registry-Auth header: base64url (padding optional) of an AuthConfig JSON object."""
    if not header or not header.strip():
        return None
    text = header.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidParameter("invalid X-Registry-Auth header: not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter("invalid X-Registry-Auth header: a JSON object is expected")
    return {k.lower(): v for k, v in data.items() if v}
