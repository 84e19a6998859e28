"""Canonical JSON (RFC 8785) for float-free data, fast.

Events and decisions carry no floats (integers, ISO dates, decimal strings), and for such
data RFC 8785 reduces to: keys sorted, no insignificant white space, UTF-8, minimal string
escapes. ``orjson`` with sorted keys produces exactly those bytes at ~35x the speed of the
pure-Python ``rfc8785`` package; a property test checks the two agree.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

_OPTS = orjson.OPT_SORT_KEYS


def canonical(obj: Any) -> bytes:
    """RFC 8785 bytes of ``obj`` (which must hold no floats)."""
    return orjson.dumps(obj, option=_OPTS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
