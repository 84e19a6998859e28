"""Append one data-match file to the ledger: all of it in one transaction, or none of it.

The file is read twice, a buffer at a time, and never held. The first reading hashes it,
checks it is UTF-8 text of bounded lines, and notes the last line naming each reference
(every family or member, a cheap cut at commas and line breaks): memory in the families it
names, not its rows. The second parses and checks its rows, in file order, in one consistent
read of the ledger, a block of rows at a time: the families a block names that have not been
read yet are read then, each with only what appending this kind needs, never its whole
stream: the head (last version and hash, from the clear envelope), whether it is registered
and erased, its members where the kind checks them, and the row keys and natural-key index
of this kind's events and of corrections (member-keyed kinds first read the ledger-wide
member index). After the last line naming a family, what was read and planned for it is
dropped, but its head. So memory follows the families a stretch of the file names (a
family's rows together, as data matches list them: a few), not the file or the ledger; a
file listing every family's rows throughout holds them all till its end. The second
reading must hash as the first did (the hash is bound into every event).

Each row is planned (skip, append, or correct, at which version of its family's stream), in
file order; the first bad row, of whatever kind, stops the file. Planned events go to a
:mod:`~claimledger.ingest.sink` as their payloads' canonical bytes; the sink seals them, in
row order, into their streams' hash chains from the heads read (each the very record
``Family`` would trigger and ``SealedMapper`` store, without an event object per row),
encrypts them and inserts them with the new families' data keys in one transaction. A small
file (when the command has no writer process) goes to a sink in this process once every row
has passed. A large file, and every file once the command's writer process is ready, goes a
chunk at a time as its rows are checked to the sink in that second process, so parsing and
checking here overlap sealing, encrypting and inserting there; its transaction commits only
after the last row has passed.

One command loading several files (``claimledger ingest KIND FILE KIND FILE ...``) keeps,
for its next file, the heads of the families it read or wrote and the member index, as of
the ledger position its last file ended at: the insert checks that no other writer's events
came between the file's read and its own, and the next file uses them only if the ledger
still ends there (else it reads them again).

Every event carries its provenance: the file's SHA-256, the row's line number and
``row_key`` = SHA-256 over the kind and the row's canonical values. A row whose key the
family already holds (or that appeared earlier in the file) is skipped, so re-ingesting a
file, or the same row from another file, appends nothing. For kinds without a natural key
a row repeated within one file is that many records (two identical incidents on one day):
its n-th copy's key also covers n. A row that re-supplies a record with a natural key (the
same pupil and term, say) with different values appends a ``Family.Corrected`` naming the
record's current version instead of a second record; two such rows in one file contradict
each other and reject the file.

Nothing is committed until every row has passed, and then all of it or nothing (a bad row
rolls back what a large file's writer had inserted): another writer appending to a family
meanwhile takes a version this file also takes (or creating a family this file creates,
its key), so one of the two inserts fails with ConflictError.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from ..domain.family import Family
from ..errors import InputError, UsageError
from ..ledger.canonical import canonical, loads
from ..ledger.envelope import GENESIS, event_id, stream_uuid
from ..ledger.verify import collector_paused
from ..persistence import checked_record
from ..store.ledger_view import LedgerView
from .rows import FileLines, count_lines, count_rows, parse_rows, ref_cells  # noqa: F401
from .schemas import KINDS, SCHEMAS, Schema
from .sink import Appended, FileTransaction, Item, Sink, running_writer, writer_for

if TYPE_CHECKING:
    from ..application import LedgerApp

Progress = Callable[[int], Any]
PROGRESS_EVERY = 1000
#: Files of more rows than this are encrypted and inserted by a second process while this
#: one checks and seals (:class:`~claimledger.ingest.sink.WriterProcess`, started by the
#: first such file of a command and kept for the rest, which then all go to it): starting it
#: costs a few tenths of a second on the other core, which a smaller file would not win back.
WRITER_PROCESS_ABOVE = 5_000
#: Events handed to the sink at a time.
SINK_CHUNK = 2_000
_MEMBER_TOPIC = get_topic(Family.MemberAdded)
_ERASED_TOPIC = get_topic(Family.Erased)
_REGISTERED = Family.Registered.__qualname__
_MEMBER = Family.MemberAdded.__qualname__
_CORRECTED = Family.Corrected.__qualname__
_ERASED = Family.Erased.__qualname__
_CORRECTED_TOPIC = get_topic(Family.Corrected)
#: Rows read ahead at a time: the families they name that have not been read yet are read
#: together.
BLOCK = 2_000
#: Seconds between the queries that keep the file's snapshot and its writer's transaction
#: from sitting idle (PostgreSQL ends either after 5 s idle in a transaction).
KEEP_ALIVE = 1.0
#: What a closed family's collections become (empty, never added to: a closed family is
#: never checked against again).
_NOTHING: Any = frozenset()


def ingest(
    app: LedgerApp, kind: str, path: str | Path, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Ingest ``path`` as ``kind``; raise InputError on the first bad row, writing nothing.

    ``progress`` (optional) is called with the number of rows just processed, e.g.
    ``click.progressbar(...).update``. The result is plain data: ``appended`` counts every
    event written, of which ``corrected`` are corrections; ``rows`` = ``appended`` +
    ``skipped_duplicates``.
    """
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise UsageError(f"unknown ingest kind {kind!r}: expected one of {', '.join(KINDS)}")
    path = Path(path)
    name = str(path)
    scan = scan_file(schema, name, path)
    second = FileLines(name, path)
    rows = parse_rows(schema, name, second)
    with collector_paused():
        batch = FilePlanner(app, schema, path, scan.sha256)
        if scan.lines > WRITER_PROCESS_ABOVE or running_writer(app, ready=True) is not None:
            # A large file, or any file once the command's writer is ready: a second
            # process (started first, so that it gets ready while this one parses; kept for
            # the command's next files) encrypts and inserts while this one parses, checks
            # and seals, in one transaction it commits only once every row has passed.
            with FileTransaction(app) as writer:
                batch.build(rows, scan.last, progress, stream_to=writer)
                scan.same_as(second)
                batch.seal_into(writer)
                appended = writer.commit(batch.read_at)
        else:
            batch.build(rows, scan.last, progress)
            scan.same_as(second)
            # Every row has passed: only now is anything sealed, encrypted and inserted.
            appended = None
            if batch.plans:
                with Sink(app) as sink:
                    batch.seal_into(sink)
                    appended = sink.commit(batch.read_at)
        if appended is not None and batch.appended:
            batch.remember(appended)
    return {
        "kind": kind,
        "file": name,
        "sha256": scan.sha256,
        "rows": batch.appended + batch.skipped,
        "appended": batch.appended,
        "skipped_duplicates": batch.skipped,
        "corrected": batch.corrected,
        "families_touched": len(batch.touched),
    }


def prepare(app: LedgerApp, paths: Iterable[str | Path]) -> None:
    """Before loading several files in one command: if any is large enough for the writer
    process, start it now, so that it gets ready (a few tenths of a second) while the first
    files load instead of when the first large one needs it."""
    for path in paths:
        try:
            lines = count_lines(path)
        except OSError:
            continue  # ingest itself reports the file
        if lines > WRITER_PROCESS_ABOVE:
            writer_for(app)
            return


def finish(app: LedgerApp) -> None:
    """At the end of a command's files: wait for its writer process, if it has one, to
    finish (copying SQLite's write-ahead log into the database file) and stop it. (It
    would stop when the application is collected; a command's timing should include it.)"""
    writer = running_writer(app)
    if writer is not None:
        writer.close()


@dataclass
class FileScan:
    """A file's first reading: its SHA-256, its lines, and the last line naming each
    reference (family_ref or member_ref) it holds: memory in its references, not its rows."""

    name: str
    sha256: str
    lines: int
    last: dict[str, int]

    def same_as(self, second: FileLines) -> None:
        """The second reading (the rows) read the very bytes the first hashed (a file
        changed in between could not be bound to the hash its events carry)."""
        if second.sha256 != self.sha256:
            raise InputError(self.name, None, None, "the file changed while it was being "
                             "ingested; nothing was written (ingest it again)")


def scan_file(schema: Schema, name: str, path: Path) -> FileScan:
    """Read the file once through: hash it, check it is UTF-8 text of bounded lines, and
    note the last line naming each reference (:func:`ref_cells`)."""
    lines = FileLines(name, path)
    it = iter(lines)
    last = {ref: line for line, ref in ref_cells(schema, it)}
    for _ in it:  # the rest, after a line the CSV reader refused (parsing reports it)
        pass
    return FileScan(name, lines.sha256, lines.lines, last)


@dataclass
class MemberIndex:
    """member_ref -> member for the whole ledger, as of a ledger position.

    Building it decrypts every MemberAdded event, so one command that loads several files
    (``claimledger ingest KIND FILE KIND FILE ...``) keeps it on its application and brings
    it up to date from the events after that position (members added, families erased,
    whoever wrote them) instead of building it again for each file.
    """

    position: int = 0
    members: dict[str, Member] = field(default_factory=dict)

    def families(self) -> dict[str, set[str]]:
        """family_ref -> its members' refs."""
        out: dict[str, set[str]] = {}
        for ref, m in self.members.items():
            out.setdefault(m.family_ref, set()).add(ref)
        return out


@dataclass
class KnownHeads:
    """family_ref -> (version, hash) of its stream's last event, for the families one
    command has read or written, as of a ledger position (:meth:`FilePlanner.remember`)."""

    position: int
    heads: dict[str, tuple[int, str]]


# --- resolving and building ---------------------------------------------------------------
def _getter(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The values of ``columns`` of a row, always as a tuple (itemgetter's are not for one)."""
    if not columns:
        return lambda row: ()
    if len(columns) == 1:
        only = columns[0]
        return lambda row: (row[only],)
    return itemgetter(*columns)


def _same(value: dict[str, Any]) -> dict[str, Any]:
    """The value as it is: a row whose columns are all stored is its own payload (rows are
    never changed)."""
    return value


@dataclass(eq=False, slots=True)
class FamilyState:
    """What ingest needs to know of one family's stream, and its head as this file extends it.

    ``exists`` (the stream has a head), ``registered`` (the Registered payload: read only by
    the families kind, which checks a re-registration against it) and ``members`` (read for
    the kinds that check them) are what the ledger held before this file;
    ``version`` and ``head_hash`` start at the stream's last event and move with each event
    this file appends, which is all appending needs from the stream.
    """

    ref: str
    uid: uuid.UUID
    stream: str
    #: ``uid`` as 32 hex digits, as the events table keeps it.
    hex: str = ""
    registered: dict[str, Any] | None = None
    members: set[str] = field(default_factory=set)
    version: int = 0
    #: the stream's head hash as read; None once its first event of the file has gone to
    #: the sink, which seals and chains the rest
    head_hash: str | None = GENESIS
    erased: bool = False
    #: The stream has events (so it begins with Family.Registered).
    exists: bool = False
    #: A new family without a data key yet: its first event creates one.
    needs_key: bool = False
    row_keys: set[str] = field(default_factory=set)
    #: natural key -> (event id of the record's current version, its values)
    current: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    #: The last line of the file naming the family: after it, what the file read and
    #: planned for the family is dropped (:meth:`FilePlanner.close`).
    until: int = 0
    closed: bool = False
    #: Row keys of this file's rows so far.
    seen: set[str] = field(default_factory=set)
    #: natural key -> (line, values) of this file's rows so far.
    in_file: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    #: For kinds without a natural key: how many times each row's content came so far.
    copies: dict[bytes, int] = field(default_factory=dict)


@dataclass
class Member:
    family_ref: str
    role: str | None
    birth_date: str | None
    line: int | None = None  # set when the member comes from the file being ingested


class FilePlanner:
    """The events one file appends, built row by row against the families it touches."""

    def __init__(self, app: LedgerApp, schema: Schema, path: Path, sha: str):
        self.app = app
        self.schema = schema
        self.name = str(path)
        self.file_name = path.name
        self.sha = sha
        self.kind = schema.kind
        self.event_class = schema.event
        self.qualname = self.event_class.__qualname__
        self.topic = get_topic(self.event_class)
        self.payload_columns = schema.payload_columns
        nk = schema.natural_key
        if nk is not None and self.kind != "families":
            nk = tuple(c for c in nk if c != "family_ref")  # implied by the stream
        self.key_columns = nk
        self.by_member = schema.ref == "member_ref"
        #: The row's natural key (a tuple) and its stored values, without a per-row loop.
        self.key_of = None if nk is None else _getter(nk)
        if self.payload_columns == schema.header:
            self.payload_of: Callable[[dict[str, Any]], dict[str, Any]] = _same
        else:
            columns = self.payload_columns
            values = _getter(columns)
            self.payload_of = lambda row: dict(zip(columns, values(row), strict=True))
        self.view = LedgerView(app)
        #: Kinds naming a family's member beside the family: the member must be in it.
        self.check_members = self.kind in ("indicators", "attestations")
        #: Kinds that read the ledger's member index (to find the family, to check a
        #: member's family, or a new member's uniqueness).
        self.needs_members = self.by_member or self.check_members or self.kind == "members"
        wanted: list[type] = [Family.Erased, Family.Corrected, self.event_class]
        if self.kind == "families":
            wanted.append(Family.Registered)
        self.topics = sorted({get_topic(c) for c in wanted})
        self.families: dict[str, FamilyState] = {}
        self.members: dict[str, Member] | None = None
        #: family_ref -> its members' refs (the kinds that check them), and the last line
        #: naming each family (:meth:`start`).
        self.of_family: dict[str, set[str]] = {}
        self.until: dict[str, int] = {}
        #: Every event the file appends, in row order: (family, version, type, topic,
        #: payload); sealed once every row has passed (:meth:`seal_into`).
        self.plans: list[tuple[FamilyState, int, str, str, dict[str, Any]]] = []
        #: Events sealed and handed to the sink so far.
        self.appended = 0
        self.skipped = 0
        self.corrected = 0
        self.touched: set[str] = set()
        self.actor = ""
        #: the ledger position of the file's snapshot (:meth:`start`)
        self.read_at: int | None = None

    # --- loading ------------------------------------------------------------------------
    def start(self, last: dict[str, int]) -> None:
        """Inside the file's snapshot: its position, the member index when the kind needs it,
        and the last line naming each family (``last``: per reference, from the file's first
        reading)."""
        top = self.read_at = self.view.last_position()
        if not self.needs_members:
            self.until = last
            return
        index = self.member_index(top)
        # The members kind adds to its copy as it checks (a member named twice).
        self.members = dict(index.members) if self.kind == "members" else index.members
        if self.check_members:
            self.of_family = index.families()
        if self.by_member:
            members, until = self.members, {}
            for ref, line in last.items():
                m = members.get(ref)
                if m is not None and until.get(m.family_ref, 0) < line:
                    until[m.family_ref] = line
            self.until = until
        else:
            self.until = last

    def unread(self, block: list[tuple[int, dict[str, Any]]]) -> list[str]:
        """The families the rows of ``block`` belong to that have not been read yet, in the
        order they come (a row naming an unknown member is reported when it is checked)."""
        families, out = self.families, {}
        if self.by_member:
            members = self.members
            assert members is not None
            for _, row in block:
                m = members.get(row["member_ref"])
                if m is not None and m.family_ref not in families:
                    out[m.family_ref] = None
        else:
            for _, row in block:
                if row["family_ref"] not in families:
                    out[row["family_ref"]] = None
        return list(out)

    def load(self, refs: list[str]) -> None:
        """Read these families (inside :meth:`LedgerView.snapshot`, after :meth:`start`):
        each one's head and its events of :attr:`topics`, through the key, a few hundred
        families per query; the rest of the ledger is never read."""
        if not refs:
            return
        wanted = self.wanted(refs)
        assert self.read_at is not None
        heads = self.heads(wanted, self.read_at)
        events = self.view.events([u for _, u in wanted.values()], self.topics)
        until = self.until
        new = []
        for k, (ref, uid) in wanted.items():
            state = self.families[ref] = self.family_state(ref, uid, heads.get(k),
                                                           events.get(k, ()))
            state.until = until.get(ref, 0)
            if self.check_members:
                state.members = self.of_family.get(ref, set())
            if not state.exists:
                new.append(state.stream)
        if self.kind == "families":
            for stream in self.app.keystore.missing(new):
                self.families[stream.split("/", 1)[1]].needs_key = True

    def read(self, refs: Iterable[str]) -> None:
        """Read these families as a file naming them would (what ingest knows of them)."""
        with self.view.snapshot():
            self.start({})
            self.load(list(refs))

    def close(self, state: FamilyState) -> None:
        """The file names the family no more: drop what was read and planned for it, all
        but its head (what the command's next file may reuse)."""
        state.closed = True
        state.registered = None
        state.members = state.row_keys = state.seen = _NOTHING  # type: ignore[assignment]
        state.current = state.in_file = state.copies = _NOTHING  # type: ignore[assignment]

    def heads(self, wanted: dict[Any, tuple[str, uuid.UUID]], top: int
              ) -> dict[Any, tuple[int, str]]:
        """Stream key -> (version, hash) of the last event of each wanted family that has
        one: from :class:`KnownHeads` when nothing was written since this command's last
        file, else read (inside :meth:`LedgerView.snapshot`, at ledger position ``top``)."""
        known = self.app.ingest_cache.get("heads")
        usable = known.heads if isinstance(known, KnownHeads) and known.position == top else {}
        out: dict[Any, tuple[int, str]] = {}
        missing = []
        for k, (ref, uid) in wanted.items():
            head = usable.get(ref)
            if head is None:
                missing.append(uid)
            else:
                out[k] = head
        for k, (version, state) in self.view.heads(missing).items():
            out[k] = (version, loads(state)["hash"])
        return out

    def remember(self, appended: Appended) -> None:
        """After the file committed: keep the heads of its families, and the member index,
        for the command's next file, as of the ledger position the file ended at, when the
        file's events are all that was written since it read the ledger (a later file then
        checks that the ledger still ends there)."""
        cache: dict[str, Any] = self.app.ingest_cache
        if appended.position is None:
            cache.pop("heads", None)
            return
        known = cache.get("heads")
        heads = (known.heads if isinstance(known, KnownHeads) and known.position == self.read_at
                 else {})
        for state in self.families.values():
            new_hash = appended.heads.get(state.stream)
            if new_hash is not None:
                heads[state.ref] = (state.version, new_hash)
            elif state.exists and state.head_hash is not None:
                heads[state.ref] = (state.version, state.head_hash)
        cache["heads"] = KnownHeads(appended.position, heads)
        index = cache.get("members")
        if isinstance(index, MemberIndex) and index.position == self.read_at:
            if self.kind == "members":  # the only kind that adds members
                assert self.members is not None
                for ref, m in self.members.items():
                    if m.line is not None:
                        index.members[ref] = Member(m.family_ref, m.role, m.birth_date)
            index.position = appended.position

    def member_index(self, top: int) -> MemberIndex:
        """The ledger's members as of this snapshot (at ledger position ``top``): the
        application's index brought up to date from the MemberAdded and Erased events after
        its position (read inside :meth:`LedgerView.snapshot`). An erased family's members
        name nobody."""
        view = self.view
        cache: dict[str, Any] = self.app.ingest_cache
        index = cache.get("members")
        if not isinstance(index, MemberIndex) or index.position > top:
            index = MemberIndex()
        open_record = self.app.keystore.open_record
        members = index.members
        for _, _, topic, state in view.scan([_MEMBER_TOPIC, _ERASED_TOPIC], index.position):
            r = open_record(checked_record(topic, state))
            fam = r["envelope"]["stream"].split("/", 1)[1]
            if topic == _ERASED_TOPIC:
                for ref in [ref for ref, m in members.items() if m.family_ref == fam]:
                    del members[ref]
                continue
            p = r.get("payload")
            if p is None:  # its family's key is gone: the member can no longer be named
                continue
            members[p["member_ref"]] = Member(fam, p["role"], p["birth_date"])
        index.position = top
        cache["members"] = index
        return index

    def wanted(self, refs: Iterable[str]) -> dict[Any, tuple[str, uuid.UUID]]:
        """Stream key -> (family_ref, originator id) of each family to load."""
        key = self.view.key
        out = {}
        for ref in refs:
            uid = stream_uuid(Family.stream_name(ref))
            out[key(uid)] = (ref, uid)
        return out

    def family_state(
        self, ref: str, uid: uuid.UUID, head: tuple[int, str] | None,
        stored: Iterable[tuple[int, str, bytes]],
    ) -> FamilyState:
        """The family as ingest needs it, from its head and its events of ``self.topics``.

        This is what replaying the whole stream into a ``Family`` would give for appending:
        of Family's events only Registered, MemberAdded and Erased change its state (no
        other has an ``apply``), and the next event needs only the head's version and hash.
        (tests/test_ingest.py checks both against ``app.repository.get``.)
        """
        state = FamilyState(ref, uid, Family.stream_name(ref), uid.hex)
        by_event: dict[str, tuple[Any, ...]] = {}
        open_record = self.app.keystore.open_record
        qualname = self.qualname
        for _, topic, raw in stored:
            rec = open_record(checked_record(topic, raw))
            payload = rec.get("payload")
            env = rec["envelope"]
            type_ = env["type"]
            if payload is None or type_ == _ERASED:
                state.erased = True
                continue
            if type_ == _REGISTERED:
                state.registered = payload
            elif type_ == _MEMBER:
                state.members.add(payload["member_ref"])
            if "row_key" in payload:
                state.row_keys.add(payload["row_key"])
            if type_ == qualname:
                self._index(state, by_event, event_id(env["stream"], env["version"]), payload)
            elif type_ == _CORRECTED:
                eid = event_id(env["stream"], env["version"])
                old = by_event.pop(payload["supersedes"], None)
                if old is not None and state.current.get(old, ("",))[0] == payload["supersedes"]:
                    del state.current[old]
                rep = payload.get("replacement") or {}
                if "row_key" in rep:
                    state.row_keys.add(rep["row_key"])
                if rep.get("type") == qualname:
                    self._index(state, by_event, eid, rep)
        if head is not None:
            state.exists = True
            state.version, state.head_hash = head
        return state

    def _index(
        self, state: FamilyState, by_event: dict[str, tuple[Any, ...]], eid: str,
        payload: dict[str, Any],
    ) -> None:
        if self.key_columns is None:
            return
        key = tuple(payload.get(c) for c in self.key_columns)
        state.current[key] = (eid, {c: payload.get(c) for c in self.payload_columns})
        by_event[eid] = key

    # --- building -----------------------------------------------------------------------
    def fail(self, line: int, column: str | None, reason: str) -> InputError:
        return InputError(self.name, line, column, reason)

    def build(self, rows: Iterable[tuple[int, dict[str, Any]]], last: dict[str, int],
              progress: Progress | None, stream_to: FileTransaction | None = None) -> None:
        """Check and plan every row, as they are parsed, in one snapshot of the ledger;
        ``last``: the last line naming each reference (:func:`scan_file`). Rows come a
        :data:`BLOCK` at a time; the families a block names are read when it comes, and
        dropped after the last line naming them, so memory follows the families a stretch
        of the file names, not the file. With ``stream_to``, planned events are also sealed
        and sent a chunk at a time as the rows are checked (the writer rolls them back if a
        later row fails); otherwise nothing is sealed until :meth:`seal_into`."""
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return
        self.actor = self.app.settings.actor_name
        kind_tag = self.kind
        counted = self.key_columns is None
        family_of, add_row, sha256, close = self.family_of, self.row, hashlib.sha256, self.close
        done = 0
        # canonical({"kind": kind, "row": row}), composed (see ledger/envelope.py).
        prefix = b'{"kind":' + canonical(kind_tag) + b',"row":'
        with self.view.snapshot():
            self.start(last)
            alive = time.monotonic()
            for block in _blocks(chain((first,), rows)):
                if time.monotonic() - alive > KEEP_ALIVE:  # the snapshot, the writer's
                    self.view.keep_alive()  # transaction: neither may sit idle too long
                    if stream_to is not None:
                        stream_to.put((self.actor, []))
                    alive = time.monotonic()
                self.load(self.unread(block))
                for line, row in block:
                    state = family_of(line, row)
                    if state.closed:
                        raise self.fail(line, None, "the file changed while it was being "
                                        "ingested; nothing was written (ingest it again)")
                    content = prefix + canonical(row) + b"}"
                    if counted:
                        # Without a natural key, a row repeated within one file is that many
                        # records (two identical incidents on one day); its n-th copy has its
                        # own key, so re-ingesting the file is still a no-op.
                        n = state.copies.get(content, 0)
                        state.copies[content] = n + 1
                        if n:
                            content = canonical({"kind": kind_tag, "row": row, "copy": n})
                    row_key = sha256(content).hexdigest()
                    if row_key in state.seen or row_key in state.row_keys:
                        self.skipped += 1
                    else:
                        state.seen.add(row_key)
                        add_row(line, row, row_key, state)
                    if line >= state.until:
                        close(state)
                    done += 1
                    if stream_to is not None and len(self.plans) >= SINK_CHUNK:
                        self.seal_into(stream_to)
                    if progress is not None and done % PROGRESS_EVERY == 0:
                        progress(PROGRESS_EVERY)
        if progress is not None and done % PROGRESS_EVERY:
            progress(done % PROGRESS_EVERY)

    def family_of(self, line: int, row: dict[str, Any]) -> FamilyState:
        """The family a row belongs to, checking every reference it makes."""
        if self.by_member:
            assert self.members is not None
            m = self.members.get(row["member_ref"])
            if m is None:
                raise self.fail(line, "member_ref", f"unknown member_ref {row['member_ref']!r}: "
                                "not a member of any registered family")
            state = self.families[m.family_ref]
            if state.erased:
                raise self.fail(line, "member_ref", f"family {state.ref!r} was erased; "
                                "nothing more can be recorded for it")
            return state
        ref = row["family_ref"]
        state = self.families[ref]
        if state.erased:
            raise self.fail(line, "family_ref", f"family {state.ref!r} was erased; nothing "
                            "more can be recorded for it")
        if not state.exists:
            if self.kind != "families":
                raise self.fail(line, "family_ref", f"unknown family_ref {ref!r}: not "
                                "registered in the ledger (ingest its families file first)")
        elif self.check_members:
            member = row["member_ref"]
            if member is not None and member not in state.members:
                raise self.fail(line, "member_ref", f"unknown member_ref {member!r}: not a "
                                f"member of family {state.ref!r}")
        return state

    def row(self, line: int, row: dict[str, Any], row_key: str, state: FamilyState) -> None:
        payload = self.payload_of(row)
        if self.kind == "members":
            self.check_member(line, row, state)
        key_of = self.key_of
        if key_of is None:
            self.append(state, payload, line, row_key)
            return
        key = key_of(row)
        earlier = state.in_file.get(key)
        if earlier is not None:
            names = self.schema.natural_key or ()
            raise self.fail(line, None, f"conflicts with line {earlier[0]}: same "
                            f"{', '.join(names)} ({', '.join(str(row[c]) for c in names)}) "
                            f"with other values ({self.differences(earlier[1], payload)})")
        state.in_file[key] = (line, payload)
        if self.kind == "families" and state.registered is not None:
            for col in ("authority", "policy_id"):
                if state.registered[col] != row[col]:
                    raise self.fail(line, col, f"family {state.ref!r} is registered with {col} "
                                    f"{state.registered[col]!r}; ingest cannot change it")
        current = state.current.get(key)
        if current is None:
            eid = self.append(state, payload, line, row_key)
        elif current[1] == payload:  # the same values under another row key: nothing new
            self.skipped += 1
            return
        else:
            eid = self.correct(state, current[0], payload, line, row_key)
        state.current[key] = (eid, payload)

    def check_member(self, line: int, row: dict[str, Any], state: FamilyState) -> None:
        """member_ref is unique across the ledger and a member's details are fixed."""
        assert self.members is not None
        ref = row["member_ref"]
        known = self.members.get(ref)
        if known is not None:
            if known.line is not None:
                raise self.fail(line, "member_ref",
                                f"duplicate member {ref!r}: already on line {known.line}")
            if known.family_ref != state.ref:
                raise self.fail(line, "member_ref", f"duplicate member {ref!r}: already in "
                                f"family {known.family_ref!r}")
            raise self.fail(line, "member_ref", f"duplicate member {ref!r}: already in family "
                            f"{state.ref!r} with other details (role {known.role}, "
                            f"birth_date {known.birth_date})")
        self.members[ref] = Member(state.ref, row["role"], row["birth_date"], line)

    @staticmethod
    def differences(a: dict[str, Any], b: dict[str, Any]) -> str:
        return ", ".join(f"{k} {a[k]!r} vs {b[k]!r}" for k in a if a[k] != b[k])

    def emit(
        self, state: FamilyState, type_: str, topic: str, payload: dict[str, Any]
    ) -> str:
        """Plan one event at the family's next version; return its event id."""
        version = state.version = state.version + 1
        self.plans.append((state, version, type_, topic, payload))
        self.touched.add(state.ref)
        return f"{state.stream}#{version}"  # event_id(stream, version)

    def seal_into(self, sink: Sink | FileTransaction) -> None:
        """Hand the planned events to ``sink``, which seals them into their streams' chains,
        encrypts and inserts them, and forget them (:attr:`appended` counts them).

        Each event goes as its payload's canonical bytes, with its stream's head hash when
        it is the stream's first event of the file (the sink chains the rest: it seals in
        order). Each record is exactly the one ``Family`` would trigger and ``SealedMapper``
        would store, built without an event object per row (tests/test_ingest.py compares
        the two).
        """
        chunk: list[Item] = []
        for state, version, type_, topic, payload in self.plans:
            chunk.append((state.hex, version, topic, state.needs_key, state.stream, type_,
                          state.head_hash, canonical(payload)))
            state.needs_key = False
            state.head_hash = None  # the sink holds the stream's head from here on
            if len(chunk) == SINK_CHUNK:
                sink.put((self.actor, chunk))
                chunk = []
        if chunk:
            sink.put((self.actor, chunk))
        self.appended += len(self.plans)
        self.plans.clear()

    def append(
        self, state: FamilyState, payload: dict[str, Any], line: int, row_key: str
    ) -> str:
        return self.emit(state, self.qualname, self.topic,
                         {**payload, "file_sha256": self.sha, "row": line, "row_key": row_key})

    def correct(
        self, state: FamilyState, supersedes: str, payload: dict[str, Any], line: int,
        row_key: str,
    ) -> str:
        replacement = {"type": self.qualname, **payload, "file_sha256": self.sha, "row": line,
                       "row_key": row_key}
        self.corrected += 1
        return self.emit(state, _CORRECTED, _CORRECTED_TOPIC, {
            "supersedes": supersedes,
            "reason": f"re-supplied in {self.file_name} line {line}",
            "replacement": replacement})


def _blocks(rows: Iterator[tuple[int, dict[str, Any]]]
            ) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """The rows a :data:`BLOCK` at a time. A bad row ends the block before it, which is
    checked first (an earlier row's bad reference is the one reported), then raises."""
    block: list[tuple[int, dict[str, Any]]] = []
    try:
        for item in rows:
            block.append(item)
            if len(block) == BLOCK:
                yield block
                block = []
    except InputError:
        if block:
            yield block
        raise
    if block:
        yield block
