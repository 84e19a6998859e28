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

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from .canonical import canonical, loads

GENESIS = "0" * 64
RECORD_FORMAT = 1
_NS = uuid.UUID("6b1f8a2e-4f0e-5c1a-9d0b-3c2f1e7a8b90")


def stream_uuid(stream: str) -> uuid.UUID:
    """The eventsourcing originator id of a named stream ("family/F-17")."""
    return uuid.uuid5(_NS, stream)


def payload_digest(salt: bytes, payload: dict[str, Any]) -> str:
    return hashlib.sha256(salt + canonical(payload)).hexdigest()


def envelope_hash(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(envelope)).hexdigest()


@dataclass(frozen=True, slots=True)
class Sealed:
    envelope: dict[str, Any]
    hash: str
    salt: str


def seal(
    *, stream: str, version: int, type_: str, recorded_at: str, actor: str,
    prev_hash: str, salt: bytes, payload: dict[str, Any],
) -> Sealed:
    env = {
        "stream": stream,
        "version": version,
        "type": type_,
        "recorded_at": recorded_at,
        "actor": actor,
        "prev_hash": prev_hash,
        "payload_digest": payload_digest(salt, payload),
    }
    return Sealed(env, envelope_hash(env), salt.hex())


def record_bytes(sealed: Sealed, payload: dict[str, Any] | None) -> bytes:
    rec: dict[str, Any] = {"envelope": sealed.envelope, "hash": sealed.hash}
    if payload is not None:
        rec["salt"] = sealed.salt
        rec["payload"] = payload
    return canonical(rec)


def parse_record(state: bytes) -> dict[str, Any]:
    return loads(state)


def event_id(stream: str, version: int) -> str:
    return f"{stream}#{version}"
