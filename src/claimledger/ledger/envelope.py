"""Sealing events: the envelope, the salted payload digest and the event hash.

A stored event is one canonical JSON record::

    {"envelope": {stream, version, type, recorded_at, actor, prev_hash, payload_digest},
     "hash": SHA-256(canonical(envelope)),
     "salt": hex, "payload": {...}}

Invariants:
- ``payload_digest`` = SHA-256(salt || canonical(payload)); the salt is random per event, so
  a digest reveals nothing about an erased payload;
- ``hash`` covers the envelope only, and the envelope covers the payload through its digest,
  so payload and salt can later be encrypted or destroyed while every hash, link and proof
  still verifies;
- ``prev_hash`` is the hash of the previous event of the same stream, or :data:`GENESIS`.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from typing import Any, NamedTuple

from .canonical import canonical, loads

GENESIS = "0" * 64
RECORD_FORMAT = 1
_NS = uuid.UUID("6b1f8a2e-4f0e-5c1a-9d0b-3c2f1e7a8b90")


@functools.lru_cache(maxsize=16384)
def stream_uuid(stream: str) -> uuid.UUID:
    """The eventsourcing originator id of a named stream ("family/F-17"); cached, as each
    file of a load names the same families again (uuid5 costs about 10 µs)."""
    return uuid.uuid5(_NS, stream)


def payload_digest(salt: bytes, payload: dict[str, Any]) -> str:
    return hashlib.sha256(salt + canonical(payload)).hexdigest()


def envelope_hash(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(envelope)).hexdigest()


class Sealed(NamedTuple):
    """An event sealed into its stream: the envelope, its hash, the salt, and the canonical
    bytes of envelope and payload (kept so the stored record is composed, not re-encoded).
    A tuple: ingest makes one per row, and a frozen dataclass costs several times more."""

    envelope: dict[str, Any]
    hash: str
    salt: str
    envelope_bytes: bytes
    payload_bytes: bytes


def seal(
    *, stream: str, version: int, type_: str, recorded_at: str, actor: str,
    prev_hash: str, salt: bytes, payload: dict[str, Any],
) -> Sealed:
    payload_bytes = canonical(payload)
    env = {
        "stream": stream,
        "version": version,
        "type": type_,
        "recorded_at": recorded_at,
        "actor": actor,
        "prev_hash": prev_hash,
        "payload_digest": hashlib.sha256(salt + payload_bytes).hexdigest(),
    }
    envelope_bytes = canonical(env)
    return Sealed(env, hashlib.sha256(envelope_bytes).hexdigest(), salt.hex(), envelope_bytes,
                  payload_bytes)


class Sealer:
    """:func:`seal` for many events of one actor at one moment (a data-match file): the
    same envelope bytes and hash, composed from canonical parts instead of a dict encoded
    per event, since only the digest, prev_hash, stream, type and version change.

    The envelope's keys, sorted, are actor, payload_digest, prev_hash, recorded_at,
    stream, type, version; each string's canonical form is its own JSON text, and the two
    digests are hex. tests/test_merkle_and_encoding.py checks it against :func:`seal`.
    """

    def __init__(self, *, recorded_at: str, actor: str):
        self._head = b'{"actor":' + canonical(actor) + b',"payload_digest":"'
        self._middle = b'","recorded_at":' + canonical(recorded_at) + b',"stream":'
        self._types: dict[str, bytes] = {}

    @staticmethod
    def stream_part(stream: str) -> bytes:
        """The canonical text of a stream name (kept per stream by the caller)."""
        return canonical(stream)

    def seal(self, stream_part: bytes, version: int, type_: str, prev_hash: str, salt: bytes,
             payload: dict[str, Any]) -> tuple[bytes, str, str, bytes]:
        """(envelope bytes, hash, salt hex, payload bytes), as :func:`seal` makes them."""
        return self.seal_bytes(stream_part, version, type_, prev_hash, salt, canonical(payload))

    def seal_bytes(self, stream_part: bytes, version: int, type_: str, prev_hash: str,
                   salt: bytes, payload_bytes: bytes) -> tuple[bytes, str, str, bytes]:
        """:meth:`seal` given the payload's canonical bytes."""
        tail = self._types.get(type_)
        if tail is None:
            tail = self._types[type_] = b',"type":' + canonical(type_) + b',"version":'
        envelope_bytes = b"".join((
            self._head, hashlib.sha256(salt + payload_bytes).hexdigest().encode(),
            b'","prev_hash":"', prev_hash.encode(), self._middle, stream_part, tail,
            str(version).encode(), b"}"))
        return (envelope_bytes, hashlib.sha256(envelope_bytes).hexdigest(), salt.hex(),
                payload_bytes)


# Stored records are composed from canonical parts rather than encoded again: canonical JSON
# is compositional (an object's members are its keys, sorted, each with its value's own
# canonical bytes), and every key at these top levels is a fixed ASCII name, so the
# concatenations below are byte for byte canonical(record). tests/test_merkle_and_encoding.py
# checks them against canonical().
def record_state(sealed: Sealed) -> bytes:
    """canonical({"envelope", "hash", "payload", "salt"}): a record stored in the clear."""
    return b"".join((b'{"envelope":', sealed.envelope_bytes, b',"hash":"', sealed.hash.encode(),
                     b'","payload":', sealed.payload_bytes, b',"salt":"', sealed.salt.encode(),
                     b'"}'))


def sealed_state(sealed: Sealed, ciphertext_b64: bytes) -> bytes:
    """canonical({"envelope", "hash", "sealed"}): a record whose salt and payload are
    encrypted (``ciphertext_b64`` is the base64 text of nonce + AES-GCM ciphertext)."""
    return b"".join((b'{"envelope":', sealed.envelope_bytes, b',"hash":"', sealed.hash.encode(),
                     b'","sealed":"', ciphertext_b64, b'"}'))


def plaintext(salt: str, payload_bytes: bytes) -> bytes:
    """canonical({"payload", "salt"}): what a sealed record encrypts."""
    return b"".join((b'{"payload":', payload_bytes, b',"salt":"', salt.encode(), b'"}'))


def parse_record(state: bytes) -> dict[str, Any]:
    return loads(state)


def event_id(stream: str, version: int) -> str:
    return f"{stream}#{version}"
