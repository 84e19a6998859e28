"""Append one data-match file to the ledger: all of it in one transaction, or none of it.

The file is parsed completely first, then only the families it touches are replayed (plus,
for member-keyed kinds, a topic-filtered scan of ``Family.MemberAdded`` for the ledger-wide
member index). Events are built through the :class:`Family` aggregate, so each is sealed
into its stream's hash chain as usual, and written with one ``insert_stored`` call: one
transaction instead of one save per family, which is what makes bulk loads fast.

Every event carries its provenance: the file's SHA-256, the row's line number and
``row_key`` = SHA-256 over the kind and the row's canonical values. A row whose key the
family already holds (or that appeared earlier in the file) is skipped, so re-ingesting a
file, or the same row from another file, appends nothing. For kinds without a natural key
a row repeated within one file is that many records (two identical incidents on one day):
its n-th copy's key also covers n. A row that re-supplies a record with a natural key (the
same pupil and term, say) with different values appends a ``Family.Corrected`` naming the
record's current version instead of a second record; two such rows in one file contradict
each other and reject the file.

Nothing reaches the database until every row has passed: events are mapped to their stored
form (which seals family payloads and may create a family's data key) only after the last
row is checked, and then inserted in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ..domain.base import AppendContext, iso_utc
from ..domain.family import Family
from ..errors import InputError, UsageError
from ..ledger.canonical import canonical
from ..ledger.envelope import event_id, stream_uuid
from ..persistence import event_from_record
from .schemas import KINDS, PROVENANCE, SCHEMAS, BadCell, Schema

if TYPE_CHECKING:
    from ..application import LedgerApp

Progress = Callable[[int], Any]
PROGRESS_EVERY = 1000
_PAGE = 5000
_IN_CHUNK = 500
_MEMBER_TOPIC = get_topic(Family.MemberAdded)
_CORRECTED = Family.Corrected.__qualname__
_ERASED = Family.Erased.__qualname__


@dataclass(frozen=True)
class BatchContext(AppendContext):
    """The command's context with its ISO clock reading formatted once, not once per event."""

    @cached_property
    def recorded_at_iso(self) -> str:  # type: ignore[override]
        return iso_utc(self.recorded_at)


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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(name, None, None, f"cannot read file: {e.strerror or e}") from None
    sha = hashlib.sha256(data).hexdigest()
    rows, syntax_error = parse_file(schema, name, data)
    batch = Batch(app, schema, path, sha)
    batch.build(rows, progress)  # raises the first bad reference before a later syntax error
    if syntax_error is not None:
        raise syntax_error
    # Only now, with every row checked, are events mapped: mapping seals family payloads and
    # may create a family's data key, which a rejected file must not leave behind.
    stored = [app.mapper.to_stored_event(ev) for ev in batch.events]
    if stored:
        app.insert_stored(stored)
    return {
        "kind": kind,
        "file": name,
        "sha256": sha,
        "rows": len(rows),
        "appended": len(stored),
        "skipped_duplicates": batch.skipped,
        "corrected": batch.corrected,
        "families_touched": len(batch.touched),
    }


def count_rows(path: str | Path) -> int:
    """Data lines in a file (for a progress bar's length; quoted line breaks overcount)."""
    with Path(path).open("rb") as f:
        return max(sum(1 for line in f if line.strip()) - 1, 0)


# --- parsing ----------------------------------------------------------------------------
def parse_file(
    schema: Schema, name: str, data: bytes
) -> tuple[list[tuple[int, dict[str, Any]]], InputError | None]:
    """(line, values) of each row up to the first bad one, and that row's error if any.

    Line numbers count the header as line 1. Blank rows (every cell empty) are ignored.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(name, line, None, f"not UTF-8 text (byte {data[e.start]:#04x})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    expected = ",".join(schema.header)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(name, 1, None, f"empty file: expected the header {expected}") from None
    except csv.Error as e:
        raise InputError(name, 1, None, f"bad CSV: {e}") from None
    if tuple(c.strip() for c in header) != schema.header:
        raise InputError(
            name, 1, None,
            f"wrong header for {schema.kind}: expected {expected}, found {','.join(header)}",
        )
    width = len(schema.header)
    rows: list[tuple[int, dict[str, Any]]] = []
    line = reader.line_num
    parse = schema.parse
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return rows, None
        except csv.Error as e:
            return rows, InputError(name, reader.line_num, None, f"bad CSV: {e}")
        line = reader.line_num
        if len(cells) != width:
            if not any(c.strip() for c in cells):
                continue
            return rows, InputError(
                name, start, None, f"expected {width} cells ({expected}), found {len(cells)}"
            )
        try:
            rows.append((start, parse(cells)))
        except BadCell as e:
            if not any(c.strip() for c in cells):
                continue
            return rows, InputError(name, start, e.column, e.reason)


def select_streams(app: LedgerApp, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[StoredEvent]]:
    """Every stored event of the given streams, by stream in version order: a few queries
    for thousands of families instead of one each."""
    out: dict[uuid.UUID, list[StoredEvent]] = {}
    rec: Any = app.recorder
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = ids[i: i + _IN_CHUNK]
        if app.location.backend == "sqlite":
            marks = ",".join("?" * len(chunk))
            sql = (f"SELECT originator_id, originator_version, topic, state FROM "
                   f"{rec.events_table_name} WHERE originator_id IN ({marks}) "
                   "ORDER BY originator_id, originator_version")
            with rec.datastore.transaction(commit=False) as c:
                c.execute(sql, [u.hex for u in chunk])
                rows = [(uuid.UUID(r[0]), r[1], r[2], r[3]) for r in c.fetchall()]
        else:
            from psycopg.sql import SQL, Identifier

            sql = SQL("SELECT originator_id, originator_version, topic, state FROM "
                      "{schema}.{table} WHERE originator_id = ANY(%s) "
                      "ORDER BY originator_id, originator_version").format(
                schema=Identifier(rec.datastore.schema or "public"),
                table=Identifier(rec.events_table_name))
            with rec.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(sql, [chunk])
                rows = [(r["originator_id"], r["originator_version"], r["topic"],
                         bytes(r["state"])) for r in curs.fetchall()]
        for oid, version, topic, state in rows:
            out.setdefault(oid, []).append(StoredEvent(oid, version, topic, state))
    return out


# --- resolving and building ---------------------------------------------------------------
@dataclass
class FamilyState:
    """What ingest needs to know of one family's stream, replayed from the ledger."""

    ref: str
    agg: Family | None = None
    erased: bool = False
    row_keys: set[str] = field(default_factory=set)
    #: natural key -> (event id of the record's current version, its values)
    current: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Member:
    family_ref: str
    role: str | None
    birth_date: str | None
    line: int | None = None  # set when the member comes from the file being ingested


class Batch:
    """The events one file appends, built row by row against the replayed families."""

    def __init__(self, app: LedgerApp, schema: Schema, path: Path, sha: str):
        self.app = app
        self.schema = schema
        self.name = str(path)
        self.file_name = path.name
        self.sha = sha
        self.kind = schema.kind
        self.event_class = schema.event
        self.qualname = self.event_class.__qualname__
        self.payload_columns = schema.payload_columns
        nk = schema.natural_key
        if nk is not None and self.kind != "families":
            nk = tuple(c for c in nk if c != "family_ref")  # implied by the stream
        self.key_columns = nk
        self.families: dict[str, FamilyState] = {}
        self.members: dict[str, Member] | None = None
        #: Every event built so far, in row order (taken from the aggregates' pending lists).
        self.events: list[Any] = []
        self.skipped = 0
        self.corrected = 0
        self.touched: set[str] = set()

    # --- loading ------------------------------------------------------------------------
    def load_members(self) -> dict[str, Member]:
        """member_ref -> family, from every MemberAdded in the ledger (one filtered scan)."""
        index: dict[str, Member] = {}
        rec = self.app.recorder
        nxt = 1
        while True:
            page = rec.select_notifications(nxt, _PAGE, topics=[_MEMBER_TOPIC])
            if not page:
                return index
            for n in page:
                r = self.app.open_record(n.state)
                p = r.get("payload")
                if p is None:  # erased: the member can no longer be named
                    continue
                fam = r["envelope"]["stream"].split("/", 1)[1]
                index[p["member_ref"]] = Member(fam, p["role"], p["birth_date"])
            nxt = page[-1].id + 1

    def load_families(self, refs: Iterable[str]) -> None:
        wanted = {stream_uuid(Family.stream_name(r)): r for r in refs if r not in self.families}
        streams = select_streams(self.app, list(wanted))
        for uid, ref in wanted.items():
            self.families[ref] = self.replay(ref, streams.get(uid, []))

    def replay(self, ref: str, stored: list[StoredEvent]) -> FamilyState:
        state = FamilyState(ref)
        by_event: dict[str, tuple[Any, ...]] = {}
        agg: Any = None
        for s in stored:
            rec = self.app.open_record(s.state)
            payload = rec.get("payload")
            env = rec["envelope"]
            if payload is None or env["type"] == _ERASED:
                state.erased = True
                continue
            agg = event_from_record(s.topic, s.originator_id, rec).mutate(agg)
            if "row_key" in payload:
                state.row_keys.add(payload["row_key"])
            eid = event_id(env["stream"], env["version"])
            if env["type"] == self.qualname:
                self._index(state, by_event, eid, payload)
            elif env["type"] == _CORRECTED:
                old = by_event.pop(payload["supersedes"], None)
                if old is not None and state.current.get(old, ("",))[0] == payload["supersedes"]:
                    del state.current[old]
                rep = payload.get("replacement") or {}
                if "row_key" in rep:
                    state.row_keys.add(rep["row_key"])
                if rep.get("type") == self.qualname:
                    self._index(state, by_event, eid, rep)
        state.agg = agg
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

    def build(self, rows: list[tuple[int, dict[str, Any]]], progress: Progress | None) -> None:
        if not rows:
            return
        schema = self.schema
        by_member = schema.ref == "member_ref"
        if by_member or self.kind == "members":
            self.members = self.load_members()
        if by_member:
            assert self.members is not None
            self.load_families(
                {m.family_ref for _, r in rows if (m := self.members.get(r["member_ref"]))}
            )
        else:
            self.load_families({r["family_ref"] for _, r in rows})
        base = self.app.context()
        ctx = BatchContext(base.actor, base.recorded_at, base.new_salt)
        seen: set[str] = set()
        in_file: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
        kind_tag = self.kind
        copies: dict[bytes, int] | None = {} if self.key_columns is None else None
        done = 0
        for line, row in rows:
            content = canonical({"kind": kind_tag, "row": row})
            if copies is not None:
                # Without a natural key, a row repeated within one file is that many records
                # (two identical incidents on one day); its n-th copy has its own key, so
                # re-ingesting the file is still a no-op.
                n = copies.get(content, 0)
                copies[content] = n + 1
                if n:
                    content = canonical({"kind": kind_tag, "row": row, "copy": n})
            row_key = hashlib.sha256(content).hexdigest()
            state = self.family_of(line, row)
            if row_key in seen or row_key in state.row_keys:
                self.skipped += 1
            else:
                seen.add(row_key)
                self.row(ctx, line, row, row_key, state, in_file)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
        if progress is not None and done % PROGRESS_EVERY:
            progress(done % PROGRESS_EVERY)

    def family_of(self, line: int, row: dict[str, Any]) -> FamilyState:
        """The family a row belongs to, checking every reference it makes."""
        if self.schema.ref == "member_ref":
            assert self.members is not None
            m = self.members.get(row["member_ref"])
            if m is None:
                raise self.fail(line, "member_ref", f"unknown member_ref {row['member_ref']!r}: "
                                "not a member of any registered family")
            state = self.families[m.family_ref]
            column = "member_ref"
        else:
            ref = row["family_ref"]
            state = self.families[ref]
            column = "family_ref"
            if state.agg is None and self.kind != "families" and not state.erased:
                raise self.fail(line, "family_ref", f"unknown family_ref {ref!r}: not registered "
                                "in the ledger (ingest its families file first)")
        if state.erased:
            raise self.fail(line, column, f"family {state.ref!r} was erased; nothing more can "
                            "be recorded for it")
        member = row.get("member_ref")
        if (self.kind in ("indicators", "attestations") and member is not None
                and state.agg is not None and member not in state.agg.members):
            raise self.fail(line, "member_ref",
                            f"unknown member_ref {member!r}: not a member of family {state.ref!r}")
        return state

    def row(
        self, ctx: AppendContext, line: int, row: dict[str, Any], row_key: str,
        state: FamilyState, in_file: dict[tuple[Any, ...], tuple[int, dict[str, Any]]],
    ) -> None:
        payload = {c: row[c] for c in self.payload_columns}
        if self.kind == "members":
            self.check_member(line, row, state)
        if self.key_columns is None:
            self.append(ctx, state, payload, line, row_key)
            return
        key = tuple(row[c] for c in self.key_columns)
        earlier = in_file.get((state.ref, *key))
        if earlier is not None:
            names = self.schema.natural_key or ()
            raise self.fail(line, None, f"conflicts with line {earlier[0]}: same "
                            f"{', '.join(names)} ({', '.join(str(row[c]) for c in names)}) "
                            f"with other values ({self.differences(earlier[1], payload)})")
        in_file[(state.ref, *key)] = (line, payload)
        if self.kind == "families" and state.agg is not None:
            for col in ("authority", "policy_id"):
                if getattr(state.agg, col) != row[col]:
                    raise self.fail(line, col, f"family {state.ref!r} is registered with {col} "
                                    f"{getattr(state.agg, col)!r}; ingest cannot change it")
        current = state.current.get(key)
        if current is None:
            self.append(ctx, state, payload, line, row_key)
            eid = event_id(state.agg.stream, state.agg.version)  # type: ignore[union-attr]
        elif current[1] == payload:  # the same values under another row key: nothing new
            self.skipped += 1
            return
        else:
            eid = self.correct(ctx, state, current[0], payload, line, row_key)
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

    def append(
        self, ctx: AppendContext, state: FamilyState, payload: dict[str, Any], line: int,
        row_key: str,
    ) -> None:
        payload["file_sha256"] = self.sha
        payload["row"] = line
        payload["row_key"] = row_key
        if state.agg is None:
            state.agg = Family.register(ctx, **payload)
        else:
            state.agg.record(self.event_class, ctx, **payload)
        self.keep(state.agg)
        for p in PROVENANCE:
            del payload[p]

    def keep(self, agg: Family) -> None:
        self.events.append(agg.pending_events.pop())
        self.touched.add(agg.family_ref)

    def correct(
        self, ctx: AppendContext, state: FamilyState, supersedes: str, payload: dict[str, Any],
        line: int, row_key: str,
    ) -> str:
        agg = state.agg
        assert agg is not None
        replacement = {"type": self.qualname, **payload, "file_sha256": self.sha, "row": line,
                       "row_key": row_key}
        agg.correct(ctx, supersedes=supersedes, reason=f"re-supplied in {self.file_name} "
                    f"line {line}", replacement=replacement)
        self.keep(agg)
        self.corrected += 1
        return event_id(agg.stream, agg.version)
