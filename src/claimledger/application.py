"""The claimledger application: one method per use case, each returning plain data.

Built on an eventsourcing :class:`~eventsourcing.application.Application` whose mapper
stores sealed records. The ledger clock (``--now`` / ``CLAIMLEDGER_NOW``) is read once per
command and must not be earlier than the last ``recorded_at`` in the ledger.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from eventsourcing.persistence import Mapper, StoredEvent

from . import __version__
from .access import Actors
from .crypto import KEYS_TABLE, KeyStore, create_master_key, master_key_id, master_key_path
from .domain.base import AppendContext, ChainedAggregate, iso_utc
from .domain.ledger import LEDGER_KEY, Ledger, checkpoint_statement, rotation_statement
from .errors import ClockError, ConfigError, ConflictError, UsageError
from .ledger import merkle, signing
from .ledger.canonical import canonical, loads
from .ledger.envelope import stream_uuid
from .ledger.verify import Row, VerifyResult, verify_rows
from .persistence import SealedMapper
from .store import APP_NAME, APPEND_LOCK_KEY, Location, locate

A = TypeVar("A", bound=ChainedAggregate)
PAGE = 5000
EXPORT_FORMAT = "claimledger-export/1"


def parse_moment(text: str, where: str = "--now") -> datetime:
    """An ISO date or date-time; naive values are UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not an ISO date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs from its environment."""

    db: str | None = None
    key_dir: Path | None = None
    now: str | None = None
    actor: str | None = None

    @property
    def keys(self) -> Path:
        return self.key_dir or Path(os.environ.get("CLAIMLEDGER_KEY_DIR", ".claimledger"))

    @property
    def who(self) -> str:
        if self.actor:
            return self.actor
        env = os.environ.get("CLAIMLEDGER_ACTOR")
        if env:
            return env
        try:
            import getpass

            return getpass.getuser()
        except Exception:  # pragma: no cover - no login name at all
            return "unknown"

    def clock(self) -> datetime:
        text = self.now or os.environ.get("CLAIMLEDGER_NOW")
        if text:
            return parse_moment(text, "--now" if self.now else "CLAIMLEDGER_NOW")
        return datetime.now(UTC)


class LedgerApp(Application):  # type: ignore[type-arg]
    name = APP_NAME

    def __init__(self, location: Location, settings: Settings):
        self.location = location
        self.settings = settings
        # Aggregates (the ledger's own stream grows by a checkpoint per claim) are cached and
        # fast-forwarded from the database on each get, so one process sealing many claims
        # does not replay the whole stream every time.
        env = {"AGGREGATE_CACHE_MAXSIZE": "256", "AGGREGATE_CACHE_FASTFORWARD": "y",
               **location.env}
        try:
            super().__init__(env=env)
        except Exception as e:  # connection refused, bad credentials, unwritable file …
            raise ConfigError(f"cannot open ledger at {location.url}: {_one_line(e)}") from None
        self._ctx: AppendContext | None = None
        self.actors = Actors.from_env()
        self.keystore = KeyStore(self)
        #: What ingest keeps between the files of one command (the member index).
        self.ingest_cache: dict[str, Any] = {}
        self.mapper.keys = self.keystore  # type: ignore[attr-defined]

    def construct_mapper(self) -> Mapper:  # type: ignore[type-arg]
        return SealedMapper(self.factory.transcoder())

    # --- reading --------------------------------------------------------------------
    def rows(self, start: int = 1, stop: int | None = None) -> Iterator[Row]:
        """Every stored event from ``start`` in ledger order, a page at a time.

        A direct cursor of plain tuples, one transaction a page: eventsourcing's
        select_notifications builds a Notification per row (from a dict per row on
        PostgreSQL) and converts ids through a slower path, and verify, seal and export read
        every row (on PostgreSQL the county's rows came 48k-58k a second that way, 70k-75k
        this way)."""
        rec: Any = self.recorder
        if self.location.backend == "sqlite":
            sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM "
                   f"{rec.events_table_name} WHERE rowid >= ? AND rowid <= ? "
                   f"ORDER BY rowid LIMIT ?")
            as_uuid: Any = uuid.UUID  # stored as 32 hex digits
            row_factory = None
        else:
            from psycopg.rows import tuple_row

            sql = (f"SELECT notification_id, originator_id, originator_version, topic, state "
                   f'FROM "{rec.datastore.schema or "public"}"."{rec.events_table_name}" '
                   f"WHERE notification_id >= %s AND notification_id <= %s "
                   f"ORDER BY notification_id LIMIT %s")
            as_uuid, row_factory = None, tuple_row  # psycopg gives uuid.UUID already
        last = stop if stop is not None else 2**62
        nxt = start
        while True:
            with rec.datastore.transaction(commit=False) as c:
                if row_factory is not None:
                    c.row_factory = row_factory
                c.execute(sql, (nxt, last, PAGE))
                page = c.fetchall()
            if not page:
                return
            for p, o, v, t, st in page:
                yield Row(p, as_uuid(o) if as_uuid else o, v, t, st)
            nxt = page[-1][0] + 1

    def last_row(self) -> Row | None:
        top = self.recorder.max_notification_id()
        if not top:
            return None
        page = self.recorder.select_notifications(top, 1)
        n = page[0]
        return Row(n.id, n.originator_id, n.originator_version, n.topic, n.state)

    def stream_records(self, stream: str) -> list[tuple[str, dict[str, Any]]]:
        """(topic, record) of every event of a stream, in version order, payloads opened
        (an erased family's records carry ``"erased": True`` and no payload)."""
        return [
            (s.topic, self.open_record(s.state))
            for s in self.recorder.select_events(stream_uuid(stream))
        ]

    def open_record(self, state: bytes) -> dict[str, Any]:
        """A stored record with its salt and payload readable (decrypted where sealed)."""
        return self.keystore.open_record(loads(state))

    def find(self, cls: type[A], key: str) -> A | None:
        try:
            return self.repository.get(stream_uuid(cls.stream_name(key)))  # type: ignore[return-value]
        except AggregateNotFoundError:
            return None

    def ledger(self) -> Ledger:
        agg = self.find(Ledger, LEDGER_KEY)
        if agg is None:
            raise UsageError(f"no ledger at {self.location.url}: run `claimledger init` first")
        return agg

    def master_key_id(self) -> str:
        """The id of the master key the ledger was initialised with, from its first event
        alone: it never changes, and replaying the ledger stream (one event per checkpoint,
        one checkpoint per claim) would cost every command that opens a family's data."""
        stored = self.recorder.select_events(stream_uuid(Ledger.stream_name(LEDGER_KEY)),
                                             lte=1)
        if not stored:
            raise UsageError(f"no ledger at {self.location.url}: run `claimledger init` first")
        first = self.mapper.to_domain_event(stored[0])
        return str(first.master_key_id)

    # --- writing --------------------------------------------------------------------
    def context(self) -> AppendContext:
        """The append context of this command: actor and one checked clock reading."""
        if self._ctx is None:
            now = self.settings.clock()
            last = self.last_row()
            if last is not None:
                last_at = loads(last.state)["envelope"]["recorded_at"]
                if iso_utc(now) < last_at:
                    raise ClockError(
                        f"clock reads {iso_utc(now)}, earlier than the ledger's last "
                        f"recorded_at {last_at}; refusing to write"
                    )
            self._ctx = AppendContext(actor=self.settings.who, recorded_at=now)
        return self._ctx

    def commit(self, *aggregates: Any) -> list[int]:
        """Save in one transaction; a concurrent writer's append is a ConflictError."""
        self.actors.check_events(self.settings.who, (
            type(e).__qualname__ for a in aggregates for e in a.pending_events))
        try:
            recordings = self.save(*aggregates)
        except StoreIntegrityError as e:
            raise ConflictError(
                f"another writer appended to the same stream first ({_one_line(e)}); "
                "nothing was written, retry the command"
            ) from None
        return [r.notification.id for r in recordings]

    @contextlib.contextmanager
    def bulk_insert(self, *, defer_checkpoint: bool = False) -> Iterator[BulkInsert]:
        """One transaction for a bulk append (ingest's fast path), open for the block: events
        and new families' wrapped data keys are inserted as they come and committed together
        when the block ends, or not at all if it raises. A stream version or family key
        another writer took first is a ConflictError (nothing of the block is written).

        ``defer_checkpoint`` (SQLite): the commit does not copy the write-ahead log into the
        database file (which SQLite otherwise does at a commit once the log is over 1,000
        pages: about as long again as the commit's own writes); the caller runs
        :meth:`checkpoint` when it has the time, as ingest's writer process does after it
        has answered."""
        rec: Any = self.recorder
        try:
            with rec.datastore.transaction(commit=True) as c:
                if defer_checkpoint and self.location.backend == "sqlite":
                    c.execute("PRAGMA wal_autocheckpoint = 0")  # this connection's setting
                yield BulkInsert(self, c)
                if self.location.backend != "sqlite":
                    c.execute(f'NOTIFY "{rec.channel_name}"')
        except StoreIntegrityError as e:
            raise ConflictError(
                f"another writer appended to the same stream or created the same family "
                f"first ({_one_line(e)}); nothing was written, retry the command"
            ) from None

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file, as far as no reader still
        needs it (a passive checkpoint: it never waits); nothing on PostgreSQL."""
        path = self.location.sqlite_path
        if self.location.backend != "sqlite" or path is None:
            return
        import sqlite3

        conn = sqlite3.connect(path, timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def insert_stored(self, stored: Sequence[StoredEvent],
                      family_keys: Sequence[tuple[str, bytes]] = ()) -> None:
        """Already-stored events (and the keys they are sealed under) in one transaction."""
        with self.bulk_insert() as bulk:
            bulk.keys(family_keys)
            bulk.events([(e.originator_id.hex, e.originator_version, e.topic, e.state)
                         for e in stored])

    # --- use cases: the ledger itself ---------------------------------------------------
    def init(self, authority: str, app_role: str | None = None) -> dict[str, Any]:
        self.actors.require(self.settings.who, "admin", "initialise a ledger")
        if self.find(Ledger, LEDGER_KEY) is not None:
            raise UsageError(f"a ledger already exists at {self.location.url}")
        if app_role and self.location.backend != "postgres":
            raise UsageError("--app-role applies to a PostgreSQL ledger only")
        keys = self.settings.keys
        ctx = self.context()
        master_path = master_key_path(keys)
        master = create_master_key(master_path)
        private = signing.generate_keypair(keys)
        pub = signing.public_raw(private)
        ledger_id = str(uuid.uuid4())
        self.keystore.create_table()
        led = Ledger.initialise(
            ctx, ledger_id=ledger_id, authority=authority, public_key=pub.hex(),
            key_id=signing.key_id(pub), master_key_id=master_key_id(master),
        )
        self.commit(led)
        if self.location.backend == "postgres":
            make_append_only(self, app_role)
        return {
            "ledger_id": ledger_id,
            "authority": authority,
            "db": self.location.url,
            "key_id": signing.key_id(pub),
            "private_key": str(keys / signing.PRIVATE_NAME),
            "public_key": str(keys / signing.PUBLIC_NAME),
            "master_key": str(master_path),
        }

    def seal(self) -> dict[str, Any]:
        """Sign a checkpoint over every event so far, continuing the last one's frontier."""
        led = self.ledger()
        private = signing.load_private(self.settings.keys / signing.PRIVATE_NAME)
        kid = signing.key_id(signing.public_raw(private))
        if kid != led.active_key_id:
            raise ConfigError(
                f"{self.settings.keys / signing.PRIVATE_NAME}: key {kid[:16]}… is not the "
                f"ledger's active signing key {led.active_key_id[:16]}…"
            )
        last = led.last_checkpoint
        if last is None:
            frontier, start, last_position = merkle.Frontier(), 1, 0
        else:
            frontier = merkle.Frontier.from_json(last["frontier"])
            start, last_position = last["last_position"] + 1, last["last_position"]
        for row in self.rows(start):
            frontier.append(merkle.leaf_hash(bytes.fromhex(loads(row.state)["hash"])))
            last_position = row.position
        ctx = self.context()
        if last is not None and frontier.size == last["tree_size"]:
            return {"sealed": False, "tree_size": frontier.size, "root": last["root"],
                    "reason": "nothing appended since the last checkpoint"}
        root = frontier.root().hex()
        signed_at = ctx.recorded_at_iso
        statement = checkpoint_statement(
            led.ledger_id, frontier.size, root, led.last_checkpoint_hash, signed_at, kid
        )
        signature = signing.sign(private, canonical(statement)).hex()
        led.checkpoint(
            ctx, tree_size=frontier.size, last_position=last_position, root=root,
            frontier=frontier.to_json(), key_id=kid, signed_at=signed_at,
            prev_checkpoint=led.last_checkpoint_hash, signature=signature,
        )
        positions = self.commit(led)
        result = {
            "sealed": True,
            "tree_size": frontier.size,
            "root": root,
            "key_id": kid,
            "signed_at": signed_at,
            "checkpoint_position": positions[-1],
            "checkpoint_hash": led.head_hash,
        }
        self._write_witness(result)
        return result

    def rotate_key(self, reason: str) -> dict[str, Any]:
        """A new signing key, endorsed by the old one; later checkpoints use it.

        The old private key is kept beside the new one as ``signing-<key id>.key`` (the
        ledger keeps every public key, so every old checkpoint and bundle still verifies).
        """
        self.actors.require(self.settings.who, "admin", "rotate the signing key")
        led = self.ledger()
        keys = self.settings.keys
        old = signing.load_private(keys / signing.PRIVATE_NAME)
        old_id = signing.key_id(signing.public_raw(old))
        if old_id != led.active_key_id:
            raise ConfigError(f"{keys / signing.PRIVATE_NAME}: not the ledger's active key")
        staged = signing.generate_keypair(
            keys, name="signing.key.new", public_name="signing.pub.new"
        )
        pub = signing.public_raw(staged)
        kid = signing.key_id(pub)
        endorsement = signing.sign(old, canonical(rotation_statement(led.ledger_id, old_id, kid)))
        try:
            led.rotate_key(self.context(), pub.hex(), kid, reason, endorsement.hex())
            self.commit(led)
        except BaseException:
            (keys / "signing.key.new").unlink(missing_ok=True)
            (keys / "signing.pub.new").unlink(missing_ok=True)
            raise
        (keys / signing.PRIVATE_NAME).rename(keys / f"signing-{old_id[:16]}.key")
        (keys / "signing.key.new").rename(keys / signing.PRIVATE_NAME)
        (keys / "signing.pub.new").rename(keys / signing.PUBLIC_NAME)
        return {"key_id": kid, "previous_key_id": old_id, "reason": reason,
                "retired_key": str(keys / f"signing-{old_id[:16]}.key")}

    def _write_witness(self, checkpoint: dict[str, Any]) -> None:
        """Keep the latest checkpoint beside the keys: `verify` then detects truncation."""
        path = self.settings.keys / "witness.json"
        with contextlib.suppress(OSError):  # a read-only key directory: a convenience only
            path.write_bytes(orjson.dumps(
                {"ledger": self.location.url, "tree_size": checkpoint["tree_size"],
                 "root": checkpoint["root"]}, option=orjson.OPT_INDENT_2))

    def verify(self, *, use_witness: bool = True, jobs: int | None = None) -> VerifyResult:
        """Check the whole ledger (ledger/verify.py). ``jobs``: processes checking ranges of
        it at once (parallel_verify.py); None picks one per CPU when the ledger holds more
        than two ranges, else 1; 1 checks in this process. The result is the same."""
        trusted: list[bytes] = []
        pub = self.settings.keys / signing.PUBLIC_NAME
        if pub.exists():
            trusted.append(signing.load_public_hex(pub.read_text(), str(pub)))
        witness = None
        wpath = self.settings.keys / "witness.json"
        if use_witness and wpath.exists():
            w = orjson.loads(wpath.read_bytes())
            if w.get("ledger") == self.location.url:
                witness = w
        from .parallel_verify import jobs_for, verify_parallel

        jobs = jobs_for(self) if jobs is None else jobs
        if jobs > 1:
            return verify_parallel(self, jobs=jobs, trusted_keys=trusted, witness=witness)
        digest, opener = self.payload_checks()
        return verify_rows(self.scan(), trusted_keys=trusted, witness=witness, digest=digest,
                           opener=opener)

    def payload_checks(self) -> tuple[Any, Any]:
        """(digest, opener) for verify's sealed payloads, or (None, None) without the master
        key (sealed payloads are then counted, not checked)."""
        keys = self.keystore
        if not keys.available():
            return None, None
        return keys.sealed_digest, keys.open_record

    def scan(self, start: int = 1, stop: int | None = None
             ) -> Iterator[tuple[int, Any, int, bytes]]:
        """The stored events from ``start`` to ``stop`` as verify reads them: tuples (position,
        originator id as stored, version, state), no topic. On SQLite one read transaction on
        a connection of its own, whose rows are plain tuples (the recorder's make a
        ``sqlite3.Row`` per row, several times slower to unpack), read a page at a time: a
        scan that alternates SQLite's code with the checks' row by row runs ~20% slower."""
        last = stop if stop is not None else 2**62
        if self.location.backend != "sqlite" or self.location.sqlite_path is None:
            return ((r.position, r.originator_id, r.version, r.state)
                    for r in self.rows(start, stop))
        import sqlite3

        rec: Any = self.recorder
        uri = self.location.sqlite_path.resolve().as_uri() + "?mode=ro"
        sql = (f"SELECT rowid, originator_id, originator_version, state FROM "
               f"{rec.events_table_name} WHERE rowid >= ? AND rowid <= ? ORDER BY rowid")
        conn = sqlite3.connect(uri, uri=True, timeout=10)

        def read() -> Iterator[tuple[int, Any, int, bytes]]:
            try:
                cursor = conn.execute(sql, (start, last))
                while page := cursor.fetchmany(500):
                    yield from page
            finally:
                conn.close()

        return read()

    # --- export / import ------------------------------------------------------------------
    def export(self, out: Path) -> dict[str, Any]:
        """JSON lines: a header, then one line per stored event with its exact bytes."""
        self.actors.require(self.settings.who, "admin", "export the ledger")
        n = 0
        with out.open("wb") as f:
            f.write(orjson.dumps({"format": EXPORT_FORMAT, "claimledger": __version__}) + b"\n")
            for row in self.rows():
                f.write(orjson.dumps({
                    "position": row.position,
                    "originator_id": str(row.originator_id),
                    "version": row.version,
                    "topic": row.topic,
                    "state": row.state.decode("utf-8"),
                }) + b"\n")
                n += 1
            wrapped = self.keystore.rows()
            for stream, blob in wrapped:
                f.write(orjson.dumps({"family_key": stream, "wrapped": blob.hex()}) + b"\n")
        return {"exported": n, "family_keys": len(wrapped), "file": str(out)}

    def import_(self, src: Path) -> dict[str, Any]:
        """Load an export into an empty ledger, keeping every position and byte."""
        self.actors.require(self.settings.who, "admin", "import a ledger")
        if self.recorder.max_notification_id():
            raise UsageError(f"{self.location.url} is not empty; import needs an empty ledger")
        batch: list[tuple[int, str, int, str, bytes]] = []
        wrapped: list[tuple[str, bytes]] = []
        with src.open("rb") as f:
            header = f.readline()
            try:
                head = orjson.loads(header)
            except orjson.JSONDecodeError:
                head = {}
            if head.get("format") != EXPORT_FORMAT:
                raise UsageError(
                    f"{src}:1: not a claimledger export (format {head.get('format')!r})"
                )
            for lineno, line in enumerate(f, start=2):
                try:
                    d = orjson.loads(line)
                    if "family_key" in d:
                        wrapped.append((d["family_key"], bytes.fromhex(d["wrapped"])))
                        continue
                    batch.append((int(d["position"]), d["originator_id"], int(d["version"]),
                                  d["topic"], d["state"].encode("utf-8")))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise UsageError(f"{src}:{lineno}: bad export line ({e})") from None
        insert_with_positions(self, batch)
        self.keystore.create_table()
        self.keystore.restore(wrapped)
        if self.location.backend == "postgres":
            make_append_only(self, None)
        return {"imported": len(batch), "family_keys": len(wrapped), "file": str(src),
                "db": self.location.url}


def insert_with_positions(app: LedgerApp, rows: list[tuple[int, str, int, str, bytes]]) -> None:
    """Insert rows at their original ledger positions in one transaction."""
    rec: Any = app.recorder
    table = rec.events_table_name
    if app.location.backend == "sqlite":
        with rec.datastore.transaction(commit=True) as c:
            c.executemany(
                f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?, ?)",
                [(p, uuid.UUID(o).hex, v, t, s) for p, o, v, t, s in rows],
            )
        return
    schema = rec.datastore.schema or "public"
    with rec.datastore.transaction(commit=True) as c:
        c.executemany(
            f'INSERT INTO "{schema}"."{table}" (notification_id, originator_id, '
            "originator_version, topic, state) VALUES (%s, %s, %s, %s, %s)",
            [(p, uuid.UUID(o), v, t, s) for p, o, v, t, s in rows],
        )
        if rows:
            c.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{schema}\".\"{table}\"', "
                "'notification_id'), %s)",
                (max(p for p, *_ in rows),),
            )


APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION {schema}.claimledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'claimledger: % on %.% refused: the ledger is append-only',
    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME;
END $$;
DROP TRIGGER IF EXISTS claimledger_append_only ON {schema}.{table};
CREATE TRIGGER claimledger_append_only BEFORE UPDATE OR DELETE ON {schema}.{table}
  FOR EACH ROW EXECUTE FUNCTION {schema}.claimledger_refuse_change();
DROP TRIGGER IF EXISTS claimledger_no_truncate ON {schema}.{table};
CREATE TRIGGER claimledger_no_truncate BEFORE TRUNCATE ON {schema}.{table}
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.claimledger_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM PUBLIC;
"""


class BulkInsert:
    """The inserts of one :meth:`LedgerApp.bulk_insert` transaction, a batch of events at a
    time: one executemany on SQLite (eventsourcing's recorder inserts row by row), a binary
    ``COPY`` on PostgreSQL (eventsourcing's pipelined insert stalled on batches of several
    thousand events here; an executemany loaded the county's rows at 23k–26k a second, the
    COPY at 51k–73k)."""

    #: The events table's columns as eventsourcing's PostgreSQL recorder makes them (with
    #: its default ``uuid`` originator ids), in COPY's binary format.
    PG_COPY_TYPES = ("uuid", "int8", "text", "bytea")

    def __init__(self, app: LedgerApp, cursor: Any):
        rec: Any = app.recorder
        self.app, self.cursor = app, cursor
        self.sqlite = app.location.backend == "sqlite"
        if self.sqlite:
            events, keys, mark = rec.events_table_name, KEYS_TABLE, "?"
        else:
            schema = rec.datastore.schema or "public"
            events = f'"{schema}"."{rec.events_table_name}"'
            keys, mark = f'"{schema}"."{KEYS_TABLE}"', "%s"
        columns = f"{events} (originator_id, originator_version, topic, state)"
        self._events_sql = (f"INSERT INTO {columns} VALUES (?, ?, ?, ?)" if self.sqlite
                            else f"COPY {columns} FROM STDIN (FORMAT BINARY)")
        self._keys_sql = f"INSERT INTO {keys} (stream, wrapped) VALUES ({mark}, {mark})"
        position = "rowid" if self.sqlite else "notification_id"
        self._last_sql = f"SELECT MAX({position}) FROM {events}"
        self.inserted = 0
        self._allowed: set[str] = set()
        self._locked = self.sqlite  # SQLite's BEGIN takes the write lock at the first insert

    def _lock(self) -> None:
        """PostgreSQL writers serialise on the advisory lock (LOCK TABLE needs UPDATE
        rights), taken at the first insert, as SQLite takes its write lock, so a block that
        prepares its rows for long keeps other writers waiting only while it inserts."""
        rec: Any = self.app.recorder
        self.cursor.execute(f"SET LOCAL lock_timeout = '{rec.datastore.lock_timeout}s'")
        self.cursor.execute(f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})")
        self._locked = True

    def events(self, rows: Sequence[tuple[str, int, str, bytes]]) -> None:
        """(originator id as 32 hex digits, version, topic, state) rows, each event type
        checked against the actor's role once."""
        if not rows:
            return
        types = {r[2] for r in rows} - self._allowed
        if types:
            self.app.actors.check_events(self.app.settings.who,
                                         (t.split(":", 1)[1] for t in types))
            self._allowed |= types
        if not self._locked:
            self._lock()
        if self.sqlite:
            self.cursor.executemany(self._events_sql, rows)
        else:
            with self.cursor.copy(self._events_sql) as copy:
                copy.set_types(self.PG_COPY_TYPES)
                write = copy.write_row
                for o, v, t, st in rows:
                    write((uuid.UUID(o), v, t, st))
        self.inserted += len(rows)

    def sole_writer_since(self, position: int) -> int | None:
        """The ledger's last position, if every event after ``position`` (where the caller's
        read of the ledger ended) is one this block inserted, so that what the caller read
        plus what it inserted is the whole ledger up to there; None if another writer's
        events came between (or the block inserted nothing). Run before the commit: the
        block holds the write lock, so no other writer's events can follow its own.

        Why the last position is enough: each of the block's events took a position above
        ``position`` (positions only grow, and it inserted after that read), so if the last
        is ``position`` + the number it inserted, its events fill every place between."""
        if not self.inserted:
            return None
        self.cursor.execute(self._last_sql)
        row = self.cursor.fetchone()
        last = row[0] if self.sqlite else next(iter(row.values()))
        return int(last) if last == position + self.inserted else None

    def keys(self, family_keys: Sequence[tuple[str, bytes]]) -> None:
        if family_keys:
            if not self._locked:
                self._lock()
            self.cursor.executemany(self._keys_sql, family_keys)


def make_append_only(app: LedgerApp, app_role: str | None) -> None:
    """On PostgreSQL the database itself refuses UPDATE, DELETE and TRUNCATE of events.

    A trigger rejects them for every role (only a superuser, who can disable triggers, gets
    past it), and the application's role, when named, is granted only SELECT and INSERT.
    """
    rec: Any = app.recorder
    schema = f'"{rec.datastore.schema or "public"}"'
    table = f'"{rec.events_table_name}"'
    with rec.datastore.transaction(commit=True) as c:
        c.execute(APPEND_ONLY_SQL.format(schema=schema, table=table))
        if app_role:
            role = '"' + app_role.replace('"', "") + '"'
            c.execute(f"REVOKE ALL ON {schema}.{table} FROM {role}")
            c.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            c.execute(f"GRANT SELECT, INSERT ON {schema}.{table} TO {role}")
            c.execute(f'GRANT SELECT, INSERT, DELETE ON {schema}."{KEYS_TABLE}" TO {role}')
            c.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    if app_role:
        # The cohort report's view is a projection the application role keeps up to date.
        from .audit.cohort import TRACKING_TABLE, VIEW_TABLES, open_view

        open_view(app.location)
        with rec.datastore.transaction(commit=True) as c:
            for t in (*VIEW_TABLES, TRACKING_TABLE):
                c.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}."{t}" TO {role}')


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def open_app(settings: Settings, *, must_exist: bool = True) -> LedgerApp:
    """Open the ledger the settings name; a missing SQLite file is not silently created."""
    loc = locate(settings.db)
    if must_exist and loc.exists is False:
        raise UsageError(f"no ledger at {loc.url}: run `claimledger init` first")
    if must_exist and loc.backend == "postgres":
        # The events table exists; an application role that may only SELECT and INSERT
        # cannot (and need not) create it.
        loc = replace(loc, env={**loc.env, "CREATE_TABLE": "false"})
    return LedgerApp(loc, settings)
