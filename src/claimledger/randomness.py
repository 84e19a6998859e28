"""Random bytes for salts and nonces, drawn from the OS a page at a time.

Every event takes a 16-byte salt and every sealed payload a 12-byte AES-GCM nonce; one
``os.urandom`` system call each cost about as much as hashing the event. The bytes come from
the same source, only fetched in 4 KiB pages. Each byte is handed out once; a forked child
starts with an empty page of its own, so parent and child never share a nonce.
"""

from __future__ import annotations

import os
import threading

_PAGE = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._buf):
                self._buf, at = os.urandom(max(_PAGE, n)), 0
            self._at = at + n
            return self._buf[at: at + n]

    def reset(self) -> None:
        self._buf, self._at, self._lock = b"", 0, threading.Lock()


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.reset)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG (as ``os.urandom``)."""
    return _pool.take(n)


def salt16() -> bytes:
    """A fresh 16-byte salt."""
    return _pool.take(16)
