"""The serialised append: every write to the ledger goes through one :class:`WriterTransaction`.

Invariants (what makes a ledger written by several processes at once still verify):

- A writer holds the *writers' lock* from :meth:`WriterTransaction.lock` until its
  transaction ends: on SQLite ``BEGIN IMMEDIATE`` on a connection of its own (SQLite's one
  write lock on the file), on PostgreSQL a transaction-scoped advisory lock that every
  claimledger writer takes (the application role may not ``LOCK TABLE``). One writer holds
  it at a time, so transactions commit in the order they took it.
- Whatever is monotonic in ledger order is read or assigned while the lock is held: the
  ledger's length (a checkpoint signs exactly the prefix it read), positions (assigned by
  the inserts), and transaction time. :meth:`WriterTransaction.moment` reads one clock, the
  database server's ``clock_timestamp()`` on PostgreSQL (application machines sharing a
  server may disagree by seconds) and the machine's clock on SQLite, and clamps it to one
  microsecond after the last event's ``recorded_at``: a clock that is behind never refuses
  a write and never makes ``recorded_at`` go backwards, and everything a transaction writes
  is strictly later than anything already in the ledger (so "as known at" a transaction's
  moment means exactly what it had read). An explicit time (``--now``, for loading history)
  is used as given and refused if it is earlier than the last event's.
- A writer that cannot get the lock within its wait (``CLAIMLEDGER_LOCK_WAIT`` seconds,
  default 30) gives up with :class:`~claimledger.errors.WriterBusyError` and writes nothing.
- Two writers that read the same stream head and both append to it: the second insert
  breaks the table's primary key and the whole transaction rolls back as a
  :class:`~claimledger.errors.ConflictError`.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import orjson

from ..errors import ClockError, ConfigError, ConflictError, WriterBusyError
from .location import APPEND_LOCK_KEY, Location

#: Rows per page when a writer reads the ledger back inside its own transaction.
PAGE = 5000
#: The events table's columns as eventsourcing's PostgreSQL recorder makes them (with its
#: default ``uuid`` originator ids), in COPY's binary format.
PG_COPY_TYPES = ("uuid", "int8", "text", "bytea")
DEFAULT_LOCK_WAIT = 30.0
ONE_MICROSECOND = timedelta(microseconds=1)


def lock_wait() -> float:
    """Seconds a writer waits for the writers' lock (``CLAIMLEDGER_LOCK_WAIT``)."""
    text = os.environ.get("CLAIMLEDGER_LOCK_WAIT")
    if not text:
        return DEFAULT_LOCK_WAIT
    try:
        wait = float(text)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= 86_400:
        raise ConfigError(f"CLAIMLEDGER_LOCK_WAIT: {text!r} is not a number of seconds "
                          "from 0 to 86400")
    return wait


def iso(moment: datetime) -> str:
    """The ledger's spelling of a moment: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class WriterTransaction(AbstractContextManager["WriterTransaction"]):
    """One writer's transaction on the events table and the family-keys table.

    ``with`` it; take the lock (:meth:`lock`, or implicitly by the first insert); insert;
    leaving the block commits, or rolls back if it raised. Reads made through it
    (:meth:`last_position`, :meth:`states_from`) see its own inserts."""

    def __init__(self, location: Location, datastore: Any, events_table: str,
                 keys_table: str, *, channel: str = "", wait: float | None = None):
        self.location = location
        self.sqlite = location.backend == "sqlite"
        self.wait = lock_wait() if wait is None else wait
        self._datastore = datastore
        self._channel = channel
        self._cm: Any = None
        self._conn: sqlite3.Connection | None = None
        self.cursor: Any = None
        self.locked = False
        self._after_commit: list[Callable[[], None]] = []
        if self.sqlite:
            self.schema = "main"
            self._events, self._keys, mark = events_table, keys_table, "?"
            self._pos = "rowid"
        else:
            self.schema = schema = getattr(datastore, "schema", "") or "public"
            self._events = f'"{schema}"."{events_table}"'
            self._keys, mark = f'"{schema}"."{keys_table}"', "%s"
            self._pos = "notification_id"
        self._mark = mark
        columns = f"{self._events} (originator_id, originator_version, topic, state)"
        self._insert_sql = (f"INSERT INTO {columns} VALUES (?, ?, ?, ?)" if self.sqlite
                            else f"COPY {columns} FROM STDIN (FORMAT BINARY)")
        self._placed_sql = (
            f"INSERT INTO {self._events} ({self._pos}, originator_id, originator_version, "
            f"topic, state) VALUES ({', '.join([mark] * 5)})")
        self._keys_sql = f"INSERT INTO {self._keys} (stream, wrapped) VALUES ({mark}, {mark})"
        self.inserted = 0

    # --- the transaction ------------------------------------------------------------------
    def __enter__(self) -> WriterTransaction:
        if self.sqlite:
            assert self.location.sqlite_path is not None
            # A connection of its own, in autocommit mode until the lock is taken: the
            # recorder's connections begin deferred transactions, which take the write lock
            # only at their first write, after the clock and the ledger's length were read.
            self._conn = sqlite3.connect(self.location.sqlite_path, timeout=self.wait,
                                         isolation_level=None, check_same_thread=False)
            self.cursor = self._conn.cursor()
        else:
            from psycopg.rows import tuple_row

            self._cm = self._datastore.transaction(commit=True)
            self.cursor = self._cm.__enter__()
            self.cursor.row_factory = tuple_row
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.sqlite:
            assert self._conn is not None
            try:
                if self.locked:
                    if e is None:
                        self._conn.execute("COMMIT")
                    else:
                        self._conn.execute("ROLLBACK")
            except sqlite3.IntegrityError as err:
                raise _conflict(err) from None
            except sqlite3.OperationalError as err:
                raise _busy_or(err, self.wait) from None
            finally:
                self._conn.close()
        else:
            if e is None and self.locked and self._channel:
                self.cursor.execute(f'NOTIFY "{self._channel}"')
            try:
                self._cm.__exit__(et, e, tb)
            except Exception as err:
                if e is not None:
                    raise
                raise _translate(err, self.wait) from None
        if e is None:
            for hook in self._after_commit:
                hook()

    def defer_wal_checkpoint(self) -> None:
        """SQLite: this transaction's commit leaves the write-ahead log for a later
        :func:`claimledger.store.scan.checkpoint_wal` (nothing on PostgreSQL)."""
        if self.sqlite:
            self.cursor.execute("PRAGMA wal_autocheckpoint = 0")  # this connection's setting

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(hook)

    def lock(self) -> None:
        """Take the writers' lock (once), waiting at most ``wait`` seconds."""
        if self.locked:
            return
        try:
            if self.sqlite:
                self.cursor.execute("BEGIN IMMEDIATE")
            else:
                self.cursor.execute(f"SET LOCAL lock_timeout = '{int(self.wait * 1000)}ms'")
                self.cursor.execute(f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})")
        except Exception as err:
            raise _translate(err, self.wait) from None
        self.locked = True

    # --- reads under the lock -------------------------------------------------------------
    def last_position(self) -> int:
        self.lock()
        self.cursor.execute(f"SELECT MAX({self._pos}) FROM {self._events}")
        row = self.cursor.fetchone()
        return int(row[0] or 0) if row else 0

    def last_recorded_at(self) -> str | None:
        """The last event's ``recorded_at`` (from its hashed envelope), None if empty."""
        self.lock()
        self.cursor.execute(
            f"SELECT state FROM {self._events} ORDER BY {self._pos} DESC LIMIT 1")
        row = self.cursor.fetchone()
        if not row:
            return None
        try:
            return str(orjson.loads(bytes(row[0]))["envelope"]["recorded_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ConfigError("the ledger's last event does not parse; run `claimledger "
                              "verify`") from None

    def clock(self) -> datetime:
        """One clock for every writer: the server's on PostgreSQL, the machine's on SQLite."""
        if self.sqlite:
            return datetime.now(UTC)
        self.cursor.execute("SELECT clock_timestamp()")
        return self.cursor.fetchone()[0].astimezone(UTC)

    def moment(self, requested: datetime | None = None) -> datetime:
        """This transaction's ``recorded_at``, assigned under the lock (see the module's
        invariants): ``requested`` (``--now``) as given if not before the last event, else
        the one clock, clamped after the last event."""
        self.lock()
        last = self.last_recorded_at()
        if requested is not None:
            if last is not None and iso(requested) < last:
                raise ClockError(f"--now {iso(requested)} is earlier than the ledger's last "
                                 f"recorded_at {last}; refusing to write")
            return requested.astimezone(UTC)
        now = self.clock()
        if last is not None and iso(now) <= last:
            now = parse_iso(last) + ONE_MICROSECOND
        return now

    def states_from(self, start: int) -> Iterator[tuple[int, bytes]]:
        """(position, stored state) of every event from ``start``, this transaction's own
        included, in ledger order."""
        self.lock()
        sql = (f"SELECT {self._pos}, state FROM {self._events} WHERE {self._pos} >= "
               f"{self._mark} ORDER BY {self._pos} LIMIT {PAGE}")
        nxt = start
        while True:
            self.cursor.execute(sql, (nxt,))
            page = self.cursor.fetchall()
            if not page:
                return
            for p, st in page:
                yield int(p), bytes(st)
            nxt = int(page[-1][0]) + 1

    # --- writes ---------------------------------------------------------------------------
    def insert_events(self, rows: Sequence[tuple[str, int, str, bytes]]) -> None:
        """(originator id as 32 hex digits, version, topic, state) rows, appended in order:
        one executemany on SQLite, one binary COPY on PostgreSQL."""
        if not rows:
            return
        self.lock()
        try:
            if self.sqlite:
                self.cursor.executemany(self._insert_sql, rows)
            else:
                with self.cursor.copy(self._insert_sql) as copy:
                    copy.set_types(PG_COPY_TYPES)
                    write = copy.write_row
                    for o, v, t, st in rows:
                        write((uuid.UUID(o), v, t, st))
        except Exception as err:
            raise _translate(err, self.wait) from None
        self.inserted += len(rows)

    def insert_placed(self, rows: Sequence[tuple[int, str, int, str, bytes]]) -> None:
        """Rows at given positions (an import keeps every position and byte)."""
        if not rows:
            return
        self.lock()
        try:
            if self.sqlite:
                self.cursor.executemany(self._placed_sql, [
                    (p, uuid.UUID(o).hex, v, t, s) for p, o, v, t, s in rows])
            else:
                self.cursor.executemany(self._placed_sql, [
                    (p, uuid.UUID(o), v, t, s) for p, o, v, t, s in rows])
        except Exception as err:
            raise _translate(err, self.wait) from None
        self.inserted += len(rows)

    def restart_positions(self) -> None:
        """After :meth:`insert_placed` on PostgreSQL: the next position follows the last."""
        if self.sqlite:
            return
        last = self.last_position()
        if last:
            table = self._events.replace('"', "")
            self.cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (table, last))

    def insert_keys(self, rows: Sequence[tuple[str, bytes]]) -> None:
        if not rows:
            return
        self.lock()
        try:
            self.cursor.executemany(self._keys_sql, list(rows))
        except Exception as err:
            raise _translate(err, self.wait) from None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """One statement under the lock (``?`` placeholders on both backends; with no
        parameters the text is sent as it is, ``%`` and ``?`` included)."""
        self.lock()
        try:
            if params is None:
                self.cursor.execute(sql)
            elif self.sqlite:
                self.cursor.execute(sql, params)
            else:
                self.cursor.execute(sql.replace("?", "%s"), params)
        except Exception as err:
            raise _translate(err, self.wait) from None
        return self.cursor


def _conflict(err: BaseException) -> ConflictError:
    text = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    return ConflictError(f"another writer appended to the same stream or created the same "
                         f"family first ({text}); nothing was written, retry the command")


def _busy_or(err: BaseException, wait: float) -> BaseException:
    text = str(err)
    if "locked" in text or "busy" in text:
        return WriterBusyError(
            f"another writer holds the ledger (waited {wait:g} s for the writers' lock; "
            "set CLAIMLEDGER_LOCK_WAIT to wait longer); nothing was written, retry the command")
    return err


def _translate(err: BaseException, wait: float) -> BaseException:
    """A database error as the claimledger error it means (others pass unchanged)."""
    if isinstance(err, sqlite3.IntegrityError):
        return _conflict(err)
    if isinstance(err, sqlite3.OperationalError):
        return _busy_or(err, wait)
    if not isinstance(err, sqlite3.Error):
        try:
            from psycopg import errors as pg
        except ImportError:  # pragma: no cover - psycopg is a dependency
            return err
        if isinstance(err, pg.UniqueViolation):
            return _conflict(err)
        if isinstance(err, pg.LockNotAvailable):
            return _busy_or(RuntimeError("locked"), wait)
    return err
