"""The claimledger application: one method per use case, each returning plain data.

Built on an eventsourcing :class:`~eventsourcing.application.Application` whose mapper
stores sealed records. The ledger clock (``--now`` / ``CLAIMLEDGER_NOW``) is read once per
command and must not be earlier than the last ``recorded_at`` in the ledger.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Mapper

from . import witness
from .access import Actors
from .crypto import KeyStore, create_master_key, master_key_id, master_key_path
from .domain.base import AppendContext, ChainedAggregate, iso_utc, reseal
from .domain.ledger import LEDGER_KEY, Ledger
from .errors import ClockError, ConfigError, IntegrityError, UsageError
from .ledger import merkle, signing
from .ledger.canonical import canonical, loads
from .ledger.envelope import stream_uuid
from .ledger.keychain import checkpoint_statement, rotation_statement
from .ledger.tiles import TileBuilder, TileCheck
from .ledger.verify import Row, VerifyResult, verify_rows
from .persistence import SealedMapper, checked_record
from .store import APP_NAME, Location, locate
from .store.events import ClaimEventReads, StreamReads
from .store.hardening import make_append_only
from .store.keys import KEYS_TABLE
from .store.location import check_server
from .store.scan import EventScan
from .store.tiles import TileStore
from .store.writer import WriterTransaction

A = TypeVar("A", bound=ChainedAggregate)
PAGE = 5000
#: Leaves handed to the tile builder at a time when seal grows the stored tiles.
TILE_BATCH = 1 << 16


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
    def key_directory(self) -> Path:
        return self.key_dir or Path(os.environ.get("CLAIMLEDGER_KEY_DIR", ".claimledger"))

    @property
    def actor_name(self) -> str:
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

    def explicit_now(self) -> datetime | None:
        """The time given by ``--now`` / ``CLAIMLEDGER_NOW`` (to load history), if any. A
        time later than this machine's clock is refused: once written it would hold every
        later write at the real time behind it, and an append-only ledger cannot undo it."""
        text = self.now or os.environ.get("CLAIMLEDGER_NOW")
        if not text:
            return None
        where = "--now" if self.now else "CLAIMLEDGER_NOW"
        moment = parse_moment(text, where)
        real = datetime.now(UTC)
        if moment > real:
            raise ClockError(f"{where}: {iso_utc(moment)} is later than this machine's clock "
                             f"({iso_utc(real)}); --now is for loading history, in the past")
        return moment

    def clock(self) -> datetime:
        """The command's reading of the time: ``--now`` if given, else the machine's clock.
        What is written gets its moment under the writers' lock instead (store/writer.py)."""
        return self.explicit_now() or datetime.now(UTC)


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
            raise ConfigError(f"cannot open ledger at {location.shown}: {_one_line(e)}") from None
        self._ctx: AppendContext | None = None
        self._writer: WriterTransaction | None = None
        self._first: Any = None
        self.actors = Actors.from_env()
        self.keystore = KeyStore(self)
        # The storage seam's parts (store/), each handed the recorder's datastore.
        rec: Any = self.recorder
        sqlite = location.backend == "sqlite"
        self.tiles = TileStore(rec.datastore, sqlite)
        self.streams = StreamReads(rec.datastore, rec.events_table_name, sqlite)
        self.claim_events = ClaimEventReads(rec.datastore, rec.events_table_name, sqlite)
        self.events = EventScan(location, rec.datastore, rec.events_table_name)
        #: What ingest keeps between the files of one command (the member index).
        self.ingest_cache: dict[str, Any] = {}
        self.mapper.keys = self.keystore  # type: ignore[attr-defined]

    def construct_mapper(self) -> Mapper:  # type: ignore[type-arg]
        return SealedMapper(self.factory.transcoder())

    # --- reading --------------------------------------------------------------------
    def rows(self, start: int = 1, stop: int | None = None) -> Iterator[Row]:
        """Every stored event from ``start`` in ledger order, a page at a time."""
        return self.events.rows(start, stop)

    def stream_records(self, stream: str) -> list[tuple[str, dict[str, Any]]]:
        """(topic, record) of every event of a stream, in version order, payloads opened
        (an erased family's records carry ``"erased": True`` and no payload)."""
        return [
            (s.topic, self.open_record(checked_record(s.topic, s.state)))
            for s in self.recorder.select_events(stream_uuid(stream))
        ]

    def open_record(self, state: bytes | dict[str, Any]) -> dict[str, Any]:
        """A stored record with its salt and payload readable (decrypted where sealed)."""
        return self.keystore.open_record(loads(state) if isinstance(state, bytes) else state)

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

    def _initialised(self) -> Any:
        """The ledger's first event: what never changes (its id, its master key's id) is
        read from it alone, not by replaying the ledger stream (one event per checkpoint)."""
        if self._first is None:
            stored = self.recorder.select_events(
                stream_uuid(Ledger.stream_name(LEDGER_KEY)), lte=1)
            if not stored:
                raise UsageError(
                    f"no ledger at {self.location.url}: run `claimledger init` first")
            self._first = self.mapper.to_domain_event(stored[0])
        return self._first

    def master_key_id(self) -> str:
        """The id of the master key the ledger was initialised with."""
        return str(self._initialised().master_key_id)

    def ledger_id(self) -> str:
        return str(self._initialised().ledger_id)

    # --- writing --------------------------------------------------------------------
    def new_writer(self) -> WriterTransaction:
        """A transaction of the serialised append (store/writer.py), not yet locked."""
        rec: Any = self.recorder
        channel = getattr(rec, "channel_name", "")  # PostgreSQL's notification channel
        return WriterTransaction(self.location, rec.datastore, rec.events_table_name,
                                 KEYS_TABLE, channel=channel)

    @contextlib.contextmanager
    def writing(self, at: datetime | None = None) -> Iterator[WriterTransaction]:
        """The writers' lock and one transaction for the block: every :meth:`commit` and
        :meth:`seal` inside it goes into that transaction, and :meth:`context` gives the
        moment assigned under the lock (store/writer.py says how). ``at``: a moment asked for
        through the API (as ``--now`` is on the command line), refused if earlier than the
        last event's. Nested, the outer block's transaction serves. New families' data keys
        are inserted with the events."""
        if self._writer is not None:
            yield self._writer
            return
        with self.new_writer() as w:
            moment = w.moment(at or self.settings.explicit_now())
            self._writer = w
            self._ctx = AppendContext(actor=self.settings.actor_name, recorded_at=moment)
            try:
                with self.keystore.batch(write=False) as new_keys:
                    yield w
                    w.insert_keys(list(new_keys.items()))
            finally:
                self._writer = self._ctx = None

    def context(self) -> AppendContext:
        """Who is appending and when. Inside :meth:`writing`, the moment assigned under the
        writers' lock; outside, a provisional reading of the command's clock, which
        :meth:`commit` replaces by the assigned moment (the events are sealed again)."""
        if self._ctx is not None:
            return self._ctx
        return AppendContext(actor=self.settings.actor_name, recorded_at=self.settings.clock())

    def commit(self, *aggregates: Any) -> list[int]:
        """Append the aggregates' pending events in one serialised transaction (the
        current :meth:`writing` block's, or one of its own) at the moment assigned under the
        lock; returns their positions. A concurrent writer's append to the same stream is a
        ConflictError, and nothing is written."""
        with self.writing() as w:
            assert self._ctx is not None
            ctx = self._ctx
            events: list[Any] = []
            for agg in aggregates:
                pending = reseal(agg.collect_events(), ctx)
                if pending:
                    agg.head_hash = pending[-1].event_hash
                events += pending
            self.actors.check_events(self.settings.actor_name,
                                     (type(e).__qualname__ for e in events))
            stored = [self.mapper.to_stored_event(e) for e in events]
            w.insert_events([(e.originator_id.hex, e.originator_version, e.topic, e.state)
                             for e in stored])
            last = w.last_position()
        return list(range(last - len(stored) + 1, last + 1))

    @contextlib.contextmanager
    def bulk_insert(self, *, defer_checkpoint: bool = False) -> Iterator[BulkInsert]:
        """One serialised transaction for a bulk append (ingest's fast path), open for the
        block: events and new families' wrapped data keys are inserted as they come and
        committed together when the block ends, or not at all if it raises. The writers'
        lock is taken at the first :meth:`BulkInsert.moment` or insert, so a block that
        prepares its rows for long keeps other writers waiting only while it inserts. A
        stream version or family key another writer took first is a ConflictError.

        ``defer_checkpoint`` (SQLite): the commit does not copy the write-ahead log into the
        database file (which SQLite otherwise does at a commit once the log is over 1,000
        pages: about as long again as the commit's own writes); the caller runs
        :meth:`checkpoint_wal` when it has the time, as ingest's writer process does after it
        has answered."""
        with self.new_writer() as w:
            if defer_checkpoint:
                w.defer_wal_checkpoint()
            yield BulkInsert(self, w)

    def checkpoint_wal(self) -> None:
        """Copy SQLite's write-ahead log into the database file (store/scan.py)."""
        self.events.checkpoint_wal()

    # --- use cases: the ledger itself ---------------------------------------------------
    def init(self, authority: str, app_role: str | None = None) -> dict[str, Any]:
        """Create the ledger: key files, the family-keys table, the first event and, on
        PostgreSQL, the append-only trigger and the application role's grants.

        Everything is checked first (no ledger yet, the role exists, the key directory can
        take new keys); the database part is one transaction, and key files this command
        created are removed again if it fails, so a failed init leaves nothing to undo and
        can simply be run again."""
        self.actors.require(self.settings.actor_name, "admin", "initialise a ledger")
        if self.find(Ledger, LEDGER_KEY) is not None:
            raise UsageError(f"a ledger already exists at {self.location.url}")
        check_server(self.location, need_ledger=False, role=app_role)
        keys = self.settings.key_directory
        master_path = master_key_path(keys)
        created = [p for p in (master_path, keys / signing.PRIVATE_NAME,
                               keys / signing.PUBLIC_NAME) if not p.exists()]
        if keys / signing.PRIVATE_NAME not in created:
            raise ConfigError(f"{keys / signing.PRIVATE_NAME}: a signing key already exists; "
                              "refusing to overwrite (use another --key-dir)")
        try:
            master = create_master_key(master_path)
            private = signing.generate_keypair(keys)
            pub = signing.public_raw(private)
            ledger_id = str(uuid.uuid4())
            if app_role:
                # The cohort view's tables (eventsourcing creates them on connections of its
                # own), so that the transaction below can grant the role its rights on them.
                from .audit.cohort import open_view

                open_view(self.location)
            with self.writing() as w:
                self.keystore.create_table(w)
                self.tiles.create(w)
                self.claim_events.create(w)
                led = Ledger.initialise(
                    self.context(), ledger_id=ledger_id, authority=authority,
                    public_key=pub.hex(), key_id=signing.key_id(pub),
                    master_key_id=master_key_id(master),
                )
                self.commit(led)
                make_append_only(w, self.recorder.events_table_name,  # type: ignore[attr-defined]
                                 app_role, cohort_tables())
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise
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
        """Sign a checkpoint over every event so far, continuing the last one's frontier.

        Under the writers' lock (the current :meth:`writing` block's, or its own), so the
        checkpoint covers exactly the events before it: the length is read, the tree grown
        and the checkpoint appended with no other writer able to come between."""
        with self.writing() as w:
            led = self.ledger()
            private = signing.load_private(self.settings.key_directory / signing.PRIVATE_NAME)
            kid = signing.key_id(signing.public_raw(private))
            if kid != led.active_key_id:
                raise ConfigError(
                    f"{self.settings.key_directory / signing.PRIVATE_NAME}: key {kid[:16]}… is "
                    f"not the ledger's active signing key {led.active_key_id[:16]}…"
                )
            last = led.last_checkpoint
            self.claim_events.create(w)  # on a ledger written before the index existed
            frontier, last_position, built = self.grow_tiles(w, last)
            if last is not None and frontier.size == last["tree_size"]:
                return {"sealed": False, "tree_size": frontier.size, "root": last["root"],
                        "tiles_built": built,
                        "reason": "nothing appended since the last checkpoint"}
            ctx = self.context()
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
                "tiles_built": built,
            }
            w.after_commit(lambda: self._write_witness(result))
        return result

    def grow_tiles(self, w: WriterTransaction, last: dict[str, Any] | None
                   ) -> tuple[merkle.Frontier, int, int]:
        """The tree over every event so far, in the writer's transaction: the frontier
        (continued from the last checkpoint's), the last event's position, and how many
        leaves were added to the stored tiles, which grow to the same size and are checked
        to give the same root (a ledger written before tiles were stored gets all of its
        tiles here, once). Memory: the frontier and one partial tile per level."""
        store = self.tiles
        store.ensure(w, self.recorder.events_table_name)  # type: ignore[attr-defined]
        builder = TileBuilder(store.edge(w))
        tiled = builder.last_position
        if tiled is None:
            tiled = store.last_full_position(w) or 0
        if last is None:
            frontier, start, last_position = merkle.Frontier(), 1, 0
        else:
            frontier = merkle.Frontier.from_json(last["frontier"])
            start, last_position = last["last_position"] + 1, last["last_position"]
        before = builder.size
        leaves, positions = bytearray(), array("q")
        for position, state in w.states_from(min(tiled + 1, start)):
            leaf = merkle.leaf_hash(bytes.fromhex(loads(state)["hash"]))
            if position > tiled:
                leaves += leaf
                positions.append(position)
                if len(positions) == TILE_BATCH:
                    builder.append(bytes(leaves), positions)
                    store.write(w, builder.completed())
                    leaves, positions = bytearray(), array("q")
            if position >= start:
                frontier.append(leaf)
                last_position = position
        builder.append(bytes(leaves), positions)
        if builder.size != frontier.size or builder.root() != frontier.root():
            raise IntegrityError(f"the stored Merkle tiles give a tree of {builder.size} "
                                 f"leaves and root {builder.root().hex()[:16]}…, the events "
                                 f"{frontier.size} and {frontier.root().hex()[:16]}… (run "
                                 "`claimledger verify`)")
        store.write(w, builder.drain())
        return frontier, last_position, builder.size - before

    def rotate_key(self, reason: str) -> dict[str, Any]:
        """A new signing key, endorsed by the old one; later checkpoints use it.

        The old private key is kept beside the new one as ``signing-<key id>.key`` (the
        ledger keeps every public key, so every old checkpoint and bundle still verifies).
        """
        self.actors.require(self.settings.actor_name, "admin", "rotate the signing key")
        led = self.ledger()
        keys = self.settings.key_directory
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
        witness.advance(self.settings.key_directory, self.ledger_id(), checkpoint["tree_size"],
                        checkpoint["root"])

    def verify(self, *, use_witness: bool = True, jobs: int | None = None) -> VerifyResult:
        """Check the whole ledger (ledger/verify.py). ``jobs``: processes checking ranges of
        it at once (parallel_verify.py); None picks one per CPU when the ledger holds more
        than two ranges, else 1; 1 checks in this process. The result is the same."""
        trusted: list[bytes] = []
        pub = self.settings.key_directory / signing.PUBLIC_NAME
        if pub.exists():
            trusted.append(signing.load_public_hex(pub.read_text(), str(pub)))
        seen = None
        if use_witness:
            try:
                lid: str | None = self.ledger_id()
            except UsageError:  # its first event is gone: any witness of this key directory
                lid = None
            seen = (witness.for_ledger(self.settings.key_directory, lid, self.location.url) if lid
                    else witness.read(self.settings.key_directory))
        from .parallel_verify import jobs_for, verify_parallel

        covered = self.tiles.covered()
        tiles = TileCheck(self.tiles.fetch, covered) if covered else None
        jobs = jobs_for(self) if jobs is None else jobs
        if jobs > 1:
            return verify_parallel(self, jobs=jobs, open_ledger=open_app, trusted_keys=trusted,
                                   witness=seen, tiles=tiles)
        digest, opener = self.payload_checks()
        return verify_rows(self.scan(), trusted_keys=trusted, witness=seen, digest=digest,
                           opener=opener, tiles=tiles)

    def payload_checks(self) -> tuple[Any, Any]:
        """(digest, opener) for verify's sealed payloads, or (None, None) without the master
        key (sealed payloads are then counted, not checked)."""
        keys = self.keystore
        if not keys.available():
            return None, None
        return keys.sealed_digest, keys.open_record

    def scan(self, start: int = 1, stop: int | None = None
             ) -> Iterator[tuple[int, Any, int, str, bytes]]:
        """The stored events from ``start`` to ``stop`` as verify reads them
        (store/scan.py)."""
        return self.events.scan(start, stop)


class BulkInsert:
    """The inserts of one :meth:`LedgerApp.bulk_insert` transaction, a batch of events at a
    time through the serialised append (one executemany on SQLite, one binary ``COPY`` on
    PostgreSQL: eventsourcing's recorders insert row by row or stall on batches of several
    thousand events)."""

    def __init__(self, app: LedgerApp, writer: WriterTransaction):
        self.app, self.writer = app, writer
        self._allowed: set[str] = set()
        self._moment = ""

    @property
    def inserted(self) -> int:
        return self.writer.inserted

    def moment(self) -> str:
        """The block's ``recorded_at``, assigned under the writers' lock (taken now)."""
        if not self._moment:
            self._moment = iso_utc(self.writer.moment(self.app.settings.explicit_now()))
        return self._moment

    def events(self, rows: Sequence[tuple[str, int, str, bytes]]) -> None:
        """(originator id as 32 hex digits, version, topic, state) rows, each event type
        checked against the actor's role once."""
        if not rows:
            return
        types = {r[2] for r in rows} - self._allowed
        if types:
            self.app.actors.check_events(self.app.settings.actor_name,
                                         (t.split(":", 1)[1] for t in types))
            self._allowed |= types
        self.writer.insert_events(rows)

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
        last = self.writer.last_position()
        return last if last == position + self.inserted else None

    def keys(self, family_keys: Sequence[tuple[str, bytes]]) -> None:
        self.writer.insert_keys(family_keys)

    def keep_alive(self) -> None:
        """One cheap query, so that a transaction waiting for its caller's next rows is not
        idle: PostgreSQL ends a session idle in a transaction for longer than its
        ``idle_in_transaction_session_timeout`` (eventsourcing sets 5 s)."""
        self.writer.last_position()


def cohort_tables() -> tuple[str, ...]:
    """The cohort view's tables, which the application role keeps up to date."""
    from .store.cohort_view import TRACKING_TABLE, VIEW_TABLES

    return (*VIEW_TABLES, TRACKING_TABLE)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def open_app(settings: Settings, *, must_exist: bool = True,
             app_role: str | None = None) -> LedgerApp:
    """Open the ledger the settings name; a missing SQLite file or PostgreSQL ledger is not
    silently created. ``app_role``: init's, checked before anything is created."""
    loc = locate(settings.db)
    if must_exist and loc.exists is False:
        raise UsageError(f"no ledger at {loc.url}: run `claimledger init` first")
    check_server(loc, need_ledger=must_exist, role=app_role)
    return LedgerApp(loc.existing() if must_exist else loc, settings)
