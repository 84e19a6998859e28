"""Verify a ledger from its stored rows: every hash, link, Merkle root and signature.

Pure: takes the rows in ledger order and the trust anchors, never reads a clock or a disk,
so the same code checks a live database, an export file or a bundle. It streams: memory is
the number of streams plus one range of rows and a fixed window of recent leaf hashes, not
the number of events.

Invariants checked, per event in ledger order:
- the record parses and its envelope names the row's own stream and version (else *edited*
  or, where the envelope belongs to another version of the stream, *reordered*);
- SHA-256 of the canonical envelope equals the stored hash (else *edited*);
- the row's topic (the class a reader would resolve it to, outside the hash) is the one
  the hashed envelope's type names (else *edited*);
- the salted payload digest matches the payload, where the payload is present (else *edited*);
- versions of a stream run 1, 2, 3… (a gap is *deleted*, a repeat or step back *reordered*)
  and ``prev_hash`` is the previous event's hash (else *inserted*);
- ``recorded_at`` never goes backwards in ledger order (else *reordered*);
- each checkpoint covers exactly the events before it that it claims (else *deleted*,
  *inserted* or *truncated*), its Merkle root matches (else *reordered*), it names the
  previous checkpoint, and its Ed25519 signature verifies under a key the ledger registered
  (and, when given, a trusted key) (else *bad signature*).

How: the ledger is cut into contiguous ranges of rows. :func:`check_range` does, for one
range, everything that needs no earlier row (parsing, hashes, digests, and the links between
events of a stream both in the range) and returns plain data; a :class:`Combiner` folds the
ranges in order, stitching each stream's first event in a range to the head the earlier
ranges left, extending the Merkle tree and checking the ledger's own events (keys, rotations,
checkpoints). Ranges can be checked in any order, in other processes; the fold is sequential
and cheap. The failure reported is the first in ledger order, and within an event the first in
the order listed above, exactly as a single pass over the rows would find it.
"""

from __future__ import annotations

import gc
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import chain, islice
from typing import Any, NamedTuple

import orjson

from ..domain.topics import EVENT_TOPICS
from ..errors import IntegrityError
from . import merkle
from .canonical import canonical
from .envelope import GENESIS, event_id, payload_digest, stream_uuid
from .keychain import KEY_TYPES, KeyChainError, check_checkpoint_signature, check_rotation
from .signing import key_id as compute_key_id
from .tiles import TileCheck

CHECKPOINT_TYPE = "Ledger.Checkpointed"
ERASED_TYPE = "Family.Erased"
LEDGER_TYPES = (*KEY_TYPES, CHECKPOINT_TYPE)
FRONTIER_WINDOW = 4096
#: Events between the frontier snapshots the window keeps (a past frontier is rebuilt from the
#: snapshot before it and the leaf hashes since, instead of copying the frontier per event).
#: A power of two: the tree also grows by aligned blocks of this many leaves.
SNAPSHOT_EVERY = 64
#: Rows per range: big enough that the per-range cost (each stream touched is stitched once)
#: is small per event, small enough that one range's data stays a few megabytes.
CHUNK = 20_000

#: Computes a sealed record's payload digest, hex; None when the payload can no longer be
#: read (its family's key was erased); raises IntegrityError when the ciphertext was changed.
SealedDigest = Callable[[dict[str, Any]], "str | None"]
Opener = Callable[[dict[str, Any]], dict[str, Any]]


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
    #: leaves the stored Merkle tiles hold, each checked against the events (0: none yet)
    tiles: int = 0

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
            "tiles": self.tiles,
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


class _Absent:
    """A field the envelope lacks, kept so that the stitch raises KeyError where a single pass
    over the rows would (pickles as the one instance)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Absent()


class LocalFailure(NamedTuple):
    """The first failure :func:`check_range` found on its own. ``late``: found by the checks
    after the payload digest (links, ``recorded_at``), so the stitch of that same event, if
    it is its stream's first in the range, comes before it."""

    index: int
    position: int
    event: str
    kind: str
    detail: str
    late: bool


class LedgerEvent(NamedTuple):
    """A ledger event of the range (``Ledger.Initialised``/``KeyRotated``/``Checkpointed``),
    checked by the :class:`Combiner` at its place: it needs the keys and the Merkle tree."""

    index: int
    position: int
    stream: str
    version: int
    hash: str
    type: str
    payload: dict[str, Any] | None


@dataclass
class RangeCheck:
    """What :func:`check_range` found in one contiguous range of rows: plain data (it crosses
    process boundaries). Index = place of an event in the range, from 0."""

    #: events that passed every check the range can do alone (all of them, unless it failed)
    events: int = 0
    #: their Merkle leaf hashes, 32 bytes each, and their ledger positions
    leaves: bytes = b""
    positions: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    #: (position, stream, version) of the range's first row, once its own checks passed
    first: tuple[int, Any, Any] | None = None
    first_recorded: Any = MISSING
    last_recorded: Any = ""
    #: (stream, version) of the last event that passed
    last: tuple[Any, Any] | None = None
    #: stream -> (index, position, version, prev_hash) of its first event in the range
    firsts: dict[Any, tuple[int, int, Any, Any]] = field(default_factory=dict)
    #: stream -> (version, hash) of its last event in the range
    lasts: dict[Any, tuple[Any, str]] = field(default_factory=dict)
    ledger: list[LedgerEvent] = field(default_factory=list)
    #: (index, stream, version) of each stream's first event in the range whose payload
    #: could not be opened because its family's key is gone
    erased: list[tuple[int, str, Any]] = field(default_factory=list)
    #: streams with a ``Family.Erased`` event in the range (an erasure on record)
    erasures: list[str] = field(default_factory=list)
    #: indexes of sealed events whose payload was not opened (no key given)
    unchecked: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    failure: LocalFailure | None = None
    #: (index, late, exception): a check that raised (as a single pass would have raised)
    error: tuple[int, bool, BaseException] | None = None


#: stream name -> hex of its originator id: uuid5 costs ~5 µs, and every range meets the same
#: streams again. A memo of a pure function, bounded.
_SIDS: dict[str, str] = {}
_SIDS_MAX = 200_000


def check_range(
    rows: Iterable[tuple[int, Any, Any, bytes]], *,
    digest: SealedDigest | None = None, opener: Opener | None = None,
) -> RangeCheck:
    """Check a contiguous run of rows (in ledger order) as far as it can be without the rows
    before it: parse, stream and version, envelope hash, payload digest, and the links
    between events of a stream both in the range. Stops at the first failure.

    ``rows``: (position, originator id, version, topic, state) tuples (a :class:`Row`), the
    originator id a UUID or its text as stored, the topic None where the source has none
    (it is then not checked). ``digest``: the payload digest of
    a sealed record (see :data:`SealedDigest`); ``opener``: a sealed record made readable,
    used for a sealed ledger event's payload and, when no ``digest`` is given, for the digest
    too. With neither, sealed payloads are counted, not checked."""
    if digest is None and opener is not None:
        digest = _digest_by(opener)
    rc = RangeCheck()
    #: stream -> (version, hash, originator id hex) of its last event in the range
    heads: dict[Any, tuple[Any, str, str]] = {}
    firsts = rc.firsts
    erased_seen: set[str] = set()
    leaves = bytearray()
    add_leaf, add_position = leaves.extend, rc.positions.append
    sids = _SIDS
    if len(sids) > _SIDS_MAX:
        sids.clear()
    loads_, dumps, SORT, fromhex = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS, bytes.fromhex
    ledger_types = LEDGER_TYPES
    topics = EVENT_TOPICS
    last_recorded: Any = ""
    stream: Any = None
    version: Any = None
    i = 0
    late = False
    try:
        for pos, oid, row_version, topic, state in rows:
            late = named = False
            try:
                try:
                    rec = loads_(state)
                    env = rec["envelope"]
                    stream, version = env["stream"], env["version"]
                    stored_hash = rec["hash"]
                except (ValueError, KeyError, TypeError) as e:
                    raise _Fail("edited", f"stored record does not parse ({e})") from None
                named = True
                try:
                    head = heads.get(stream)
                    sid_hex = sids.get(stream) if head is None else head[2]
                except TypeError:  # not a stream name at all: stream_uuid raises as it does
                    head = sid_hex = None
                if sid_hex is None:
                    sid_hex = sids[stream] = stream_uuid(stream).hex
                # SQLite stores the id's hex: compared as text, no UUID made per row.
                if oid != sid_hex and _other_stream(oid, sid_hex):
                    raise _Fail("edited",
                                f"envelope names stream {stream!r}, not this row's stream")
                enc = dumps(env, option=SORT)
                h = sha256(enc if enc.isascii() else canonical(env))
                got = h.hexdigest()
                if got != stored_hash:
                    raise _Fail("edited", f"envelope hash mismatch (got {_short(got)}, "
                                          f"stored {_short(stored_hash)})")
                if topic is not None and topic != topics.get(env.get("type")):
                    raise _Fail("edited", f"row's topic {topic!r} is not the type its hashed "
                                          f"envelope names ({env.get('type')!r})")
                if version != row_version:
                    raise _Fail("reordered",
                                f"row {row_version} of the stream holds version {version}")
                sealed = "sealed" in rec
                if sealed and digest is not None:
                    try:
                        d = digest(rec)
                    except IntegrityError as e:
                        raise _Fail("edited", str(e).split(": ", 1)[-1]) from None
                    if d is None:
                        if stream not in erased_seen:
                            erased_seen.add(stream)
                            rc.erased.append((i, stream, version))
                    elif d != env["payload_digest"]:
                        raise _Fail("edited", f"payload digest mismatch (got {_short(d)}, "
                                              f"expected {_short(env['payload_digest'])})")
                else:
                    if sealed:
                        rc.unchecked.append(i)
                    if "payload" in rec:
                        d = payload_digest(fromhex(rec.get("salt", "")), rec["payload"])
                        if d != env["payload_digest"]:
                            raise _Fail("edited", f"payload digest mismatch (got {_short(d)}, "
                                                  f"expected {_short(env['payload_digest'])})")
                late = True
                if head is None:  # stitched to the earlier ranges by the Combiner
                    firsts[stream] = (i, pos, version, env.get("prev_hash", MISSING))
                elif version != head[0] + 1 or env.get("prev_hash") != head[1]:
                    _check_link(stream, version, env.get("prev_hash", MISSING), head)
                if i:
                    recorded_at = env["recorded_at"]
                    if recorded_at < last_recorded:
                        raise _Fail("reordered", f"recorded_at {recorded_at} is earlier than "
                                                 f"the previous event's {last_recorded}")
                else:  # compared with the previous range's last by the Combiner
                    rc.first = (pos, stream, version)
                    recorded_at = rc.first_recorded = env.get("recorded_at", MISSING)
                    if recorded_at is MISSING:
                        raise KeyError("recorded_at")
                typ = env["type"]
                if typ == ERASED_TYPE:
                    rc.erasures.append(stream)
                if typ in ledger_types:
                    if sealed and digest is not None:
                        payload = opener(rec).get("payload") if opener is not None else None
                    else:
                        payload = rec.get("payload")
                    rc.ledger.append(LedgerEvent(i, pos, stream, version, stored_hash, typ,
                                                 payload))
            except _Fail as f:
                name = event_id(stream, version) if named else f"at position {pos}"
                rc.failure = LocalFailure(i, pos, name, f.kind, f.detail, late)
                break
            heads[stream] = (version, stored_hash, sid_hex)
            last_recorded = recorded_at
            add_leaf(sha256(b"\x00" + h.digest()).digest())
            add_position(pos)
            i += 1
    except Exception as e:  # raised where a single pass would raise: the Combiner re-raises
        rc.error = (i, late, e)
    rc.events = i
    rc.leaves = bytes(leaves)
    rc.lasts = {s: (v, hh) for s, (v, hh, _) in heads.items()}
    if i:
        rc.last_recorded = last_recorded
        rc.last = (stream, version) if rc.failure is None and rc.error is None else None
    return rc


def _other_stream(oid: Any, sid_hex: str) -> bool:
    """Whether a row's originator id (a UUID, or its text as stored) is not the stream's
    (whose hex is ``sid_hex``); text that is no UUID raises ValueError, as reading it did."""
    o = uuid.UUID(oid) if isinstance(oid, str) else oid
    if isinstance(o, uuid.UUID):
        return o.hex != sid_hex
    sid = uuid.UUID(sid_hex)
    return bool(o != sid and str(o) != str(sid))


def _check_link(stream: Any, version: Any, prev_hash: Any, head: tuple[Any, ...] | None
                ) -> None:
    """An event against the head of its stream before it (None: the stream begins here)."""
    want_version = 1 if head is None else head[0] + 1
    if version != want_version:
        if version > want_version:
            raise _Fail("deleted", f"stream {stream} jumps from version "
                                   f"{want_version - 1} to {version}: "
                                   f"{version - want_version} event(s) missing")
        raise _Fail("reordered", f"stream {stream} version {version} after version "
                                 f"{want_version - 1}")
    want_prev = GENESIS if head is None else head[1]
    if prev_hash is MISSING:
        raise KeyError("prev_hash")
    if prev_hash != want_prev:
        raise _Fail("inserted", f"prev_hash mismatch (got {_short(prev_hash)}, "
                                f"expected {_short(want_prev)})")


def _digest_by(opener: Opener) -> SealedDigest:
    """A :data:`SealedDigest` from an opener (a record made readable)."""

    def digest(rec: dict[str, Any]) -> str | None:
        opened = opener(rec)
        if opened.get("erased"):
            return None
        if "payload" not in opened:  # nothing readable to check, nothing erased
            return str(rec["envelope"]["payload_digest"])
        return payload_digest(bytes.fromhex(opened.get("salt", "")), opened["payload"])

    return digest


class Combiner:
    """Folds :class:`RangeCheck` results, in ledger order, into one :class:`VerifyResult`.

    Holds what a single pass holds between events: each stream's head, the keys, the last
    checkpoint, the Merkle frontier and its window. For each range it runs, in event order,
    the checks the range could not do alone (each stream's first event against its head,
    the first ``recorded_at`` against the previous range's last, the ledger's own events)
    and then the range's own first failure, so the failure reported is the one a single
    pass would report. :meth:`add` returns False once a failure is found.
    """

    def __init__(self, *, trusted_keys: Sequence[bytes] = (),
                 witness: dict[str, Any] | None = None, tiles: TileCheck | None = None):
        self.trusted_keys = trusted_keys
        self.tiles = tiles
        self.witness = witness
        self.res = VerifyResult()
        #: stream -> (version, hash) of its last event
        self.heads: dict[Any, tuple[Any, str]] = {}
        self.keys: dict[str, bytes] = {}
        self.active_key: str | None = None
        self.ledger_id: str | None = None
        self.prev_checkpoint: str | None = None
        self.tree = _Tree()
        self.count = 0  # events checked so far
        self.size = 0  # leaves in the tree (= count between ranges)
        self.last_recorded: Any = ""
        self.last_position = 0
        self.last_event: tuple[Any, Any] | None = None
        self.witnessed = False
        self.sealed_through = 0
        self.erased: set[str] = set()
        #: stream -> (position, event) of its first event whose family key is gone
        self.unreadable: dict[str, tuple[int, str]] = {}
        #: streams whose erasure is on record (a ``Family.Erased`` event)
        self.erasures: set[str] = set()

    def add(self, rc: RangeCheck) -> bool:
        """Fold the next range in; False once the ledger has failed (add no more)."""
        if self.res.failure is not None:
            return False
        firsts, ledger = rc.firsts, rc.ledger
        # (index, step, key): step 0 stitch, 1 recorded_at boundary, 2 ledger event
        todo: list[tuple[int, int, Any]] = [(f[0], 0, s) for s, f in firsts.items()]
        if rc.first is not None:
            todo.append((0, 1, None))
        todo += [(ev.index, 2, k) for k, ev in enumerate(ledger)]
        todo.sort(key=lambda t: (t[0], t[1]))
        local, error = rc.failure, rc.error
        stop = local or error
        # The range's own failure comes before everything deferred for its event, unless
        # it was found after that event's payload digest (then after its stitch, boundary).
        late = (local.late if local is not None else error[1]) if stop else False
        done = 0  # leaves of this range already in the tree
        for index, step, key in todo:
            if stop and (index > rc.events or (index == rc.events and not late)):
                break
            try:
                if step == 0:
                    where = firsts[key]
                    at, name = where[1], (key, where[2])
                    _check_link(key, where[2], where[3], self.heads.get(key))
                elif step == 1:
                    assert rc.first is not None
                    at, name = rc.first[0], rc.first[1:]
                    recorded_at = rc.first_recorded
                    if recorded_at is MISSING:
                        raise KeyError("recorded_at")
                    if recorded_at < self.last_recorded:
                        raise _Fail("reordered", f"recorded_at {recorded_at} is earlier than "
                                                 f"the previous event's {self.last_recorded}")
                else:
                    ev = ledger[key]
                    at, name = ev.position, (ev.stream, ev.version)
                    self._grow(rc, done, index)
                    done = index
                    self._ledger_event(ev, self.count + index)
            except _Fail as f:
                self._fail(rc, index, Failure(at, event_id(*name), f.kind, f.detail))
                return False
        if error is not None:
            raise error[2]
        if local is not None:
            self._fail(rc, local.index,
                       Failure(local.position, local.event, local.kind, local.detail))
            return False
        n = rc.events
        self._grow(rc, done, n)
        if not n:
            return True
        self.heads.update(rc.lasts)
        self.count += n
        self.last_recorded = rc.last_recorded
        self.last_position = rc.positions[-1]
        self.last_event = rc.last
        self._take_erased(rc, n)
        self.res.unchecked_payloads += len(rc.unchecked)
        return True

    def finish(self) -> VerifyResult:
        """The result; after the last range, the trusted-key and witness checks."""
        res = self.res
        if res.failure is not None:
            return res
        count, witness = self.count, self.witness
        res.events = count
        res.streams = len(self.heads)
        res.unsealed = count - self.sealed_through
        res.tiles = self.tiles.size if self.tiles is not None else 0
        pos = self.last_position
        ev_name = event_id(*self.last_event) if count and self.last_event else "?"
        active = self.active_key
        lost = sorted((at, ev, s) for s, (at, ev) in self.unreadable.items()
                      if s not in self.erasures)
        if lost:
            at, ev, stream = lost[0]
            more = f" (and {len(lost) - 1} more families)" if len(lost) > 1 else ""
            res.failure = Failure(at, ev, "deleted",
                                  f"{stream}'s data key is missing but no Family.Erased event "
                                  f"records its erasure{more}")
        elif (self.trusted_keys and active is not None
              and self.keys[active] not in self.trusted_keys):
            res.failure = Failure(pos, "ledger/main", "bad signature",
                                  f"the ledger's active key {active[:16]}… is not a trusted key")
        elif witness and not self.witnessed:
            res.failure = Failure(
                pos, ev_name, "truncated",
                f"the witnessed checkpoint of tree size {witness.get('tree_size')} is missing; "
                f"the ledger holds {res.events} events and its last checkpoint covers "
                f"{res.last_checkpoint_size}",
            )
        elif self.tiles is not None and (bad := self.tiles.finish(count)) is not None:
            res.failure = Failure(bad[0], "merkle tiles", bad[1], bad[2])
        return res

    # --- inside ---------------------------------------------------------------------------
    def _fail(self, rc: RangeCheck, index: int, failure: Failure) -> None:
        """The ledger failed at event ``index`` of ``rc``: the counts as of that event."""
        res = self.res
        res.failure = failure
        res.events = self.count + index
        heads = self.heads
        res.streams = len(heads) + sum(
            1 for s, f in rc.firsts.items() if f[0] < index and s not in heads)
        self._take_erased(rc, index + 1)
        res.unchecked_payloads += sum(1 for k in rc.unchecked if k <= index)

    def _take_erased(self, rc: RangeCheck, before: int) -> None:
        for index, stream, version in rc.erased:
            if index < before and stream not in self.erased:
                self.erased.add(stream)
                self.res.erased_streams.append(stream)
                self.unreadable[stream] = (int(rc.positions[index]), event_id(stream, version))
        self.erasures.update(rc.erasures)

    def _grow(self, rc: RangeCheck, a: int, b: int) -> None:
        """Events ``a`` to ``b`` (exclusive) of the range into the Merkle tree: the frontier,
        inline (merkle.Frontier.append without the per-leaf objects; the stack holds one
        perfect-subtree root per set bit of the size, largest first), and the window.

        Leaf by leaf up to a multiple of :data:`SNAPSHOT_EVERY`, then a block of that many
        leaves at a time: the block's perfect subtree is hashed level by level, a list at a
        time (the same hashes, in far fewer interpreter steps), and its root goes onto the
        stack as a leaf would at that level; then the leaves after the last whole block.
        The stack and the snapshots are exactly the leaf-by-leaf ones."""
        if a >= b:
            return
        tree, leaves = self.tree, rc.leaves
        if self.tiles is not None:
            self.tiles.feed(leaves[32 * a:32 * b], rc.positions[a:b])
        stack, snapshots = tree.stack, tree.snapshots
        pop, push = stack.pop, stack.append
        size = self.size
        k, end = 32 * a, 32 * b
        block = 32 * SNAPSHOT_EVERY
        shift = SNAPSHOT_EVERY.bit_length() - 1
        while k < end:
            if size % SNAPSHOT_EVERY or k + block > end:  # one leaf
                node, n, step = leaves[k:k + 32], size, 1
            else:  # a whole block, aligned: its subtree's root, at level `shift`
                nodes = [leaves[j:j + 32] for j in range(k, k + block, 32)]
                while len(nodes) > 1:  # 64, 32, ... 2: always pairs
                    pairs = iter(nodes)
                    nodes = [sha256(b"\x01" + x + y).digest()
                             for x, y in zip(pairs, pairs, strict=True)]
                node, n, step = nodes[0], size >> shift, SNAPSHOT_EVERY
            while n & 1:
                node = sha256(b"\x01" + pop() + node).digest()
                n >>= 1
            push(node)
            size += step
            k += 32 * step
            if not size % SNAPSHOT_EVERY:
                snapshots.append((size, tuple(stack)))
        self.size = size
        keep = max(a, b - FRONTIER_WINDOW - SNAPSHOT_EVERY)
        tree.leaves.extend([leaves[k:k + 32] for k in range(32 * keep, 32 * b, 32)])
        tree.positions.extend(rc.positions[max(a, b - FRONTIER_WINDOW):b])

    def _ledger_event(self, ev: LedgerEvent, count: int) -> None:
        """A key registration, rotation or checkpoint, ``count`` events after the start."""
        payload, res = ev.payload, self.res
        if payload is None:
            raise _Fail("edited", "a ledger event has no payload")
        if ev.type in KEY_TYPES:
            raw = bytes.fromhex(payload["public_key"])
            if compute_key_id(raw) != payload["key_id"]:
                raise _Fail("edited", "key id does not match its public key")
            if ev.type == "Ledger.KeyRotated":
                _check_rotation(payload, self.keys, self.active_key, self.ledger_id,
                                event_id(ev.stream, ev.version))
            self.keys[payload["key_id"]] = raw
            self.active_key = payload["key_id"]
            if ev.type == "Ledger.Initialised":
                self.ledger_id = payload["ledger_id"]
            return
        _check_checkpoint(
            payload, count, self.tree, self.keys, self.active_key, self.ledger_id,
            self.prev_checkpoint, f"checkpoint {event_id(ev.stream, ev.version)}",
        )
        self.prev_checkpoint = ev.hash
        res.checkpoints += 1
        self.sealed_through = count + 1
        res.last_checkpoint_size = payload["tree_size"]
        witness = self.witness
        if witness and witness.get("tree_size") == payload["tree_size"]:
            if witness.get("root") != payload["root"]:
                raise _Fail("reordered", "checkpoint root differs from the witnessed "
                                         "checkpoint of the same size (rewritten)")
            self.witnessed = True


def verify_rows(
    rows: Iterable[Row] | Iterable[tuple[int, Any, Any, bytes]],
    *,
    trusted_keys: Sequence[bytes] = (),
    witness: dict[str, Any] | None = None,
    opener: Opener | None = None,
    digest: SealedDigest | None = None,
    chunk: int | None = None,
    tiles: TileCheck | None = None,
) -> VerifyResult:
    """Check ``rows`` (in ledger order; :class:`Row` s, or (position, originator id, version,
    state) tuples, whose topics are then not checked). ``trusted_keys``: raw Ed25519 public keys the
    verifier trusts (the ledger's active key must be one of them when given). ``witness``:
    a checkpoint seen earlier (``tree_size``, ``root``) that the ledger must still contain.
    ``opener``: turns a sealed (encrypted) record into a readable one, raising IntegrityError
    if its ciphertext was changed; ``digest``: a faster way to a sealed record's payload
    digest (see :data:`SealedDigest`); with neither, sealed payloads are counted, not checked.

    The rows are checked ``chunk`` (default :data:`CHUNK`) at a time (:func:`check_range`)
    and folded in order (:class:`Combiner`): one range in memory at a time. ``tiles``: the
    stored Merkle tiles' check, fed every leaf (a mismatch is an *edited* finding)."""
    chunk = chunk or CHUNK
    combiner = Combiner(trusted_keys=trusted_keys, witness=witness, tiles=tiles)
    it = _range_rows(rows)
    with collector_paused():
        while True:
            rc = check_range(islice(it, chunk), digest=digest, opener=opener)
            if not combiner.add(rc) or rc.events < chunk:
                break
    return combiner.finish()


def _range_rows(rows: Iterable[Any]) -> Iterator[tuple[int, Any, Any, Any, bytes]]:
    """``rows`` as :func:`check_range` takes them: :class:`Row` s as they are, and
    (position, originator id, version, state) tuples with no topic (None)."""
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return iter(())
    rest = chain((first,), it)
    return rest if len(first) == 5 else ((p, o, v, None, s) for p, o, v, s in rest)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off during a scan or a load, then as it was: a
    range, or a data-match file, is tens of thousands of dicts, strings and tuples, none in
    a cycle (reference counting frees them), and the collector would otherwise walk the
    growing heap again and again for nothing (about a fifth of a large file's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    try:
        check_rotation(p, keys, active_key, ledger_id, f"key rotation {what}")
    except KeyChainError as e:
        raise _Fail("bad signature", str(e)) from None


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
    try:
        check_checkpoint_signature(p, keys[kid], ledger_id or "", what)
    except KeyChainError as e:
        raise _Fail("bad signature", str(e)) from None
