"""Verify a ledger from its stored rows: every hash, link, Merkle root and signature.

Pure: takes the rows in ledger order and the trust anchors, never reads a clock or a disk,
so the same code checks a live database, an export file or a bundle. It streams: memory is
the number of streams plus a fixed window of recent leaf hashes, not the number of events.

Invariants checked, per event in ledger order:
- the record parses and its envelope names the row's own stream and version (else *edited*
  or, where the envelope belongs to another version of the stream, *reordered*);
- SHA-256 of the canonical envelope equals the stored hash (else *edited*);
- the salted payload digest matches the payload, where the payload is present (else *edited*);
- versions of a stream run 1, 2, 3… (a gap is *deleted*, a repeat or step back *reordered*)
  and ``prev_hash`` is the previous event's hash (else *inserted*);
- ``recorded_at`` never goes backwards in ledger order (else *reordered*);
- each checkpoint covers exactly the events before it that it claims (else *deleted*,
  *inserted* or *truncated*), its Merkle root matches (else *reordered*), it names the
  previous checkpoint, and its Ed25519 signature verifies under a key the ledger registered
  (and, when given, a trusted key) (else *bad signature*).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, NamedTuple

from ..domain.ledger import checkpoint_statement, rotation_statement
from ..errors import IntegrityError
from . import merkle
from .canonical import canonical, loads
from .envelope import GENESIS, envelope_hash, event_id, payload_digest, stream_uuid
from .signing import key_id as compute_key_id
from .signing import verify_signature

CHECKPOINT_TYPE = "Ledger.Checkpointed"
KEY_TYPES = ("Ledger.Initialised", "Ledger.KeyRotated")
LEDGER_TYPES = (*KEY_TYPES, CHECKPOINT_TYPE)
FRONTIER_WINDOW = 4096
#: Events between the frontier snapshots the window keeps (a past frontier is rebuilt from the
#: snapshot before it and the leaf hashes since, instead of copying the frontier per event).
SNAPSHOT_EVERY = 64


class Row(NamedTuple):
    """One stored event as the ledger holds it (a tuple: cheap to make a million of)."""

    position: int
    originator_id: uuid.UUID | str
    version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Failure:
    position: int
    event: str
    kind: str  # edited | deleted | inserted | reordered | truncated | bad signature
    detail: str

    def message(self) -> str:
        return f"event {self.event} at position {self.position}: {self.kind}: {self.detail}"


@dataclass
class VerifyResult:
    """The non-raising result; :meth:`raise_for_failure` is the raising form."""

    events: int = 0
    streams: int = 0
    checkpoints: int = 0
    last_checkpoint_size: int = 0
    unsealed: int = 0
    unchecked_payloads: int = 0
    erased_streams: list[str] = field(default_factory=list)
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def reasons(self) -> list[str]:
        return [] if self.failure is None else [self.failure.message()]

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise IntegrityError(self.failure.message())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "streams": self.streams,
            "checkpoints": self.checkpoints,
            "last_checkpoint_size": self.last_checkpoint_size,
            "unsealed_events": self.unsealed,
            "unchecked_payloads": self.unchecked_payloads,
            "erased": sorted(self.erased_streams),
            "failure": None if self.failure is None else {
                "position": self.failure.position,
                "event": self.failure.event,
                "kind": self.failure.kind,
                "detail": self.failure.detail,
            },
        }


def _short(h: str) -> str:
    return h[:12] + "…"


class _Fail(Exception):
    def __init__(self, kind: str, detail: str):
        self.kind, self.detail = kind, detail


def verify_rows(
    rows: Iterable[Row],
    *,
    trusted_keys: Sequence[bytes] = (),
    witness: dict[str, Any] | None = None,
    opener: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> VerifyResult:
    """Check ``rows`` (in ledger order). ``trusted_keys``: raw Ed25519 public keys the
    verifier trusts (the ledger's active key must be one of them when given). ``witness``:
    a checkpoint seen earlier (``tree_size``, ``root``) that the ledger must still contain.
    ``opener``: turns a sealed (encrypted) record into a readable one, raising IntegrityError
    if its ciphertext was changed; without it sealed payloads are counted, not checked."""
    res = VerifyResult()
    #: stream -> (version, hash, originator id) of its last event
    heads: dict[str, tuple[int, str, uuid.UUID]] = {}
    keys: dict[str, bytes] = {}
    active_key: str | None = None
    ledger_id: str | None = None
    prev_checkpoint: str | None = None
    tree = _Tree()
    stack, leaves, positions, snapshots = tree.stack, tree.leaves, tree.positions, tree.snapshots
    count = 0  # events checked so far = leaves in the tree
    last_recorded = ""
    witnessed = False
    sealed_through = 0
    erased: set[str] = set()
    pos = 0
    fromhex = bytes.fromhex
    for row in rows:
        pos = row.position
        named = False
        try:
            try:
                rec = loads(row.state)
                env = rec["envelope"]
                stream, version = env["stream"], env["version"]
                stored_hash = rec["hash"]
            except (ValueError, KeyError, TypeError) as e:
                raise _Fail("edited", f"stored record does not parse ({e})") from None
            named = True
            try:
                head = heads.get(stream)
            except TypeError:  # not a stream name at all: fail as stream_uuid does
                head = None
            sid = stream_uuid(stream) if head is None else head[2]
            oid = row.originator_id
            if oid != sid and str(oid) != str(sid):
                raise _Fail("edited", f"envelope names stream {stream!r}, not this row's stream")
            got = envelope_hash(env)
            if got != stored_hash:
                raise _Fail("edited", f"envelope hash mismatch (got {_short(got)}, "
                                      f"stored {_short(stored_hash)})")
            if version != row.version:
                raise _Fail("reordered", f"row {row.version} of the stream holds version {version}")
            if "sealed" in rec:
                if opener is None:
                    res.unchecked_payloads += 1
                else:
                    try:
                        rec = opener(rec)
                    except IntegrityError as e:
                        raise _Fail("edited", str(e).split(": ", 1)[-1]) from None
                    if rec.get("erased") and stream not in erased:
                        erased.add(stream)
                        res.erased_streams.append(stream)
            if "payload" in rec:
                salt = fromhex(rec.get("salt", ""))
                digest = payload_digest(salt, rec["payload"])
                if digest != env["payload_digest"]:
                    raise _Fail("edited", f"payload digest mismatch (got {_short(digest)}, "
                                          f"expected {_short(env['payload_digest'])})")
            want_version = 1 if head is None else head[0] + 1
            if version != want_version:
                if version > want_version:
                    raise _Fail("deleted", f"stream {stream} jumps from version "
                                           f"{want_version - 1} to {version}: "
                                           f"{version - want_version} event(s) missing")
                raise _Fail("reordered", f"stream {stream} version {version} after version "
                                         f"{want_version - 1}")
            want_prev = GENESIS if head is None else head[1]
            if env["prev_hash"] != want_prev:
                raise _Fail("inserted", f"prev_hash mismatch (got {_short(env['prev_hash'])}, "
                                        f"expected {_short(want_prev)})")
            recorded_at = env["recorded_at"]
            if recorded_at < last_recorded:
                raise _Fail("reordered", f"recorded_at {recorded_at} is earlier than the "
                                         f"previous event's {last_recorded}")
            typ = env["type"]
            if typ in LEDGER_TYPES:
                payload = rec.get("payload")
                if payload is None:
                    raise _Fail("edited", "a ledger event has no payload")
                if typ in KEY_TYPES:
                    raw = fromhex(payload["public_key"])
                    if compute_key_id(raw) != payload["key_id"]:
                        raise _Fail("edited", "key id does not match its public key")
                    if typ == "Ledger.KeyRotated":
                        _check_rotation(payload, keys, active_key, ledger_id,
                                        event_id(stream, version))
                    keys[payload["key_id"]] = raw
                    active_key = payload["key_id"]
                    if typ == "Ledger.Initialised":
                        ledger_id = payload["ledger_id"]
                else:
                    _check_checkpoint(
                        payload, count, tree, keys, active_key, ledger_id, prev_checkpoint,
                        f"checkpoint {event_id(stream, version)}",
                    )
                    prev_checkpoint = stored_hash
                    res.checkpoints += 1
                    sealed_through = count + 1
                    res.last_checkpoint_size = payload["tree_size"]
                    if witness and witness.get("tree_size") == payload["tree_size"]:
                        if witness.get("root") != payload["root"]:
                            raise _Fail("reordered", "checkpoint root differs from the witnessed "
                                                     "checkpoint of the same size (rewritten)")
                        witnessed = True
        except _Fail as f:
            name = event_id(stream, version) if named else f"at position {pos}"
            res.failure = Failure(pos, name, f.kind, f.detail)
            res.events = count
            res.streams = len(heads)
            return res
        heads[stream] = (version, stored_hash, sid)
        last_recorded = recorded_at
        # The Merkle frontier, inline (merkle.Frontier.append, without the per-leaf objects):
        # the stack holds one perfect-subtree root per set bit of count, largest first.
        node = leaf = sha256(b"\x00" + fromhex(stored_hash)).digest()
        n = count
        while n & 1:
            node = sha256(b"\x01" + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
        count += 1
        leaves.append(leaf)
        positions.append(pos)
        if not count % SNAPSHOT_EVERY:
            snapshots.append((count, tuple(stack)))
    res.events = count
    ev_name = event_id(stream, version) if count else "?"
    res.streams = len(heads)
    res.unsealed = count - sealed_through
    if trusted_keys and active_key is not None and keys[active_key] not in trusted_keys:
        res.failure = Failure(pos, "ledger/main", "bad signature",
                              f"the ledger's active key {active_key[:16]}… is not a trusted key")
    elif witness and not witnessed:
        res.failure = Failure(
            pos, ev_name, "truncated",
            f"the witnessed checkpoint of tree size {witness.get('tree_size')} is missing; "
            f"the ledger holds {res.events} events and its last checkpoint covers "
            f"{res.last_checkpoint_size}",
        )
    return res


class _Tree:
    """The Merkle tree so far as a frontier (one subtree root per set bit of its size) and,
    for the last :data:`FRONTIER_WINDOW` events, their leaf hashes and positions plus a
    frontier snapshot every :data:`SNAPSHOT_EVERY` events: a checkpoint that covers fewer
    events than precede it is checked against the tree at its size, rebuilt from the
    snapshot before that size, without copying the frontier after every event."""

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        self.leaves: deque[bytes] = deque(maxlen=FRONTIER_WINDOW + SNAPSHOT_EVERY)
        self.positions: deque[int] = deque(maxlen=FRONTIER_WINDOW)
        self.snapshots: deque[tuple[int, tuple[bytes, ...]]] = deque(
            [(0, ())], maxlen=FRONTIER_WINDOW // SNAPSHOT_EVERY + 2)

    def __len__(self) -> int:
        return len(self.positions)

    @staticmethod
    def frontier(size: int, stack: Sequence[bytes]) -> merkle.Frontier:
        sizes = [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        return merkle.Frontier(size, list(zip(sizes, stack, strict=True)))

    def frontier_at(self, size: int, current: int) -> merkle.Frontier:
        """The frontier after ``size`` of the ``current`` events (``current - size`` less
        than ``len(self)``)."""
        if size == current:
            return self.frontier(size, self.stack)
        base = self.frontier(*next(s for s in reversed(self.snapshots) if s[0] <= size))
        offset = len(self.leaves) - current - 1  # leaves[k + offset] is leaf number k
        for k in range(base.size + 1, size + 1):
            base.append(self.leaves[k + offset])
        return base


def _check_rotation(p: dict[str, Any], keys: dict[str, bytes], active_key: str | None,
                    ledger_id: str | None, what: str) -> None:
    if p["previous_key_id"] != active_key or active_key not in keys:
        raise _Fail("bad signature", f"key rotation {what} names previous key "
                                     f"{p['previous_key_id'][:16]}…, which is not the active key")
    statement = rotation_statement(ledger_id or "", p["previous_key_id"], p["key_id"])
    try:
        verify_signature(keys[active_key], bytes.fromhex(p["endorsement"]), canonical(statement),
                         f"key rotation {what}")
    except (IntegrityError, ValueError):
        raise _Fail("bad signature", f"key rotation {what} is not endorsed by the previous "
                                     "key") from None


def _check_checkpoint(
    p: dict[str, Any], before: int, tree: _Tree, keys: dict[str, bytes],
    active_key: str | None, ledger_id: str | None, prev_checkpoint: str | None, what: str,
) -> None:
    size = p["tree_size"]
    if size > before:
        raise _Fail("truncated", f"{what} covers {size} events but only {before} precede it "
                                 f"({size - before} missing)")
    back = before - size
    if size and back >= len(tree):
        raise _Fail("inserted", f"{what} covers {size} events but {before} precede it")
    snap = tree.frontier_at(size, before) if size else merkle.Frontier()
    root = snap.root().hex()
    if root != p["root"]:
        if back:
            raise _Fail("inserted", f"{what} signed {size} events but {before} precede it and "
                                    f"the first {size} give root {_short(root)}, not "
                                    f"{_short(p['root'])}")
        raise _Fail("reordered", f"{what}: Merkle root over the first {size} events is "
                                 f"{_short(root)}, signed root is {_short(p['root'])} (events "
                                 "before it were changed, reordered or replaced)")
    positions = tree.positions
    if size and positions[-1 - back] != p["last_position"]:
        raise _Fail("inserted", f"{what} ends at position {p['last_position']} but its "
                                f"{size}th event is at position {positions[-1 - back]}")
    if snap.to_json() != p["frontier"]:
        raise _Fail("edited", f"{what}: stored frontier does not match the tree")
    if p["prev_checkpoint"] != prev_checkpoint:
        raise _Fail("inserted", f"{what} names previous checkpoint "
                                f"{_short(str(p['prev_checkpoint']))}, expected "
                                f"{_short(str(prev_checkpoint))}")
    kid = p["key_id"]
    if kid not in keys:
        raise _Fail("bad signature", f"{what} is signed with key {kid[:16]}…, which is not a "
                                     "key of this ledger")
    if kid != active_key:
        raise _Fail("bad signature", f"{what} is signed with retired key {kid[:16]}…")
    statement = checkpoint_statement(
        ledger_id or "", size, p["root"], p["prev_checkpoint"], p["signed_at"], kid
    )
    try:
        verify_signature(keys[kid], bytes.fromhex(p["signature"]), canonical(statement), what)
    except IntegrityError as e:
        raise _Fail("bad signature", str(e)) from None
    except ValueError:
        raise _Fail("bad signature", f"{what}: signature is not hex") from None
