"""Ingest's reads of the events table: filtered, batched, and in one snapshot.

The SQL an ingest needs to plan a file (each touched stream's head, some topics' events per
stream or in one pass) lives here with the rest of the storage seam; the importer plans from
what it returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..application import LedgerApp

#: Ids per query.
_IN_CHUNK = 500
#: Rows a scan reads per query.
_PAGE = 5_000
#: SQLite's memory map for a snapshot's connection: the pages it maps count in the process's
#: resident memory, so it is bounded (a re-ingest reads a family's every event of its kind,
#: and a map of the whole file held a gigabyte of it resident). Measured on the county's
#: files at 30,000 families: 64 MiB peaked at 302-305 MB, 16 MiB at 214-215 MB, with
#: ingest times within the machine's ±30% of each other (55-73 s against 41-59 s).
MMAP_BYTES = 16 << 20


class LedgerView:
    """Filtered reads of the events table, on SQLite or PostgreSQL, inside :meth:`snapshot`.

    Each read is a few queries however many families it is asked for (ids go in chunks of
    ``_IN_CHUNK``): the head (last event) of each stream, the events of some topics of each
    stream through the key, or of every stream in ledger order. All the reads of one
    snapshot see the ledger as of one moment, so a head and the events read with it agree;
    another writer's later append to the same stream then collides with this file's next
    version (a ConflictError at insert) rather than going unseen.
    """

    def __init__(self, app: LedgerApp):
        rec: Any = app.recorder
        self.datastore = rec.datastore
        self.sqlite = app.location.backend == "sqlite"
        if self.sqlite:
            self.table = rec.events_table_name
            self.position = "rowid"
        else:
            self.table = f'"{rec.datastore.schema or "public"}"."{rec.events_table_name}"'
            self.position = "notification_id"
        self._cursor: Any = None

    @contextmanager
    def snapshot(self) -> Iterator[LedgerView]:
        """One read transaction (SQLite's is a snapshot; PostgreSQL's is made one)."""
        with self.datastore.transaction(commit=False) as c:
            if self.sqlite:
                # Reading pages through a memory map rather than copying each one: a scan of
                # a county's events takes a quarter of the time (this connection only).
                c.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            else:
                from psycopg.rows import tuple_row

                c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                c.row_factory = tuple_row  # the recorder's cursors make a dict per row
            self._cursor = c
            try:
                yield self
            finally:
                self._cursor = None

    def keep_alive(self) -> None:
        """On PostgreSQL, one cheap query: a snapshot its reader keeps open between reads
        must not sit idle in its transaction longer than the server's
        ``idle_in_transaction_session_timeout`` (eventsourcing sets 5 s)."""
        if not self.sqlite:
            self._rows("SELECT 1", [])

    def key(self, uid: uuid.UUID) -> Any:
        """How the backend returns an originator id: hex text on SQLite, a UUID on PostgreSQL."""
        return uid.hex if self.sqlite else uid

    def _in(self, column: str, values: list[Any]) -> tuple[str, list[Any]]:
        if self.sqlite:
            return f"{column} IN ({','.join('?' * len(values))})", values
        return f"{column} = ANY(%s)", [values]

    def _rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        c = self._cursor
        assert c is not None, "read inside snapshot()"
        c.execute(sql, params)
        return c.fetchall()  # type: ignore[no-any-return]

    def heads(self, ids: list[uuid.UUID]) -> dict[Any, tuple[int, bytes]]:
        """Stream key -> (version, state) of its last event (streams with none left out)."""
        out: dict[Any, tuple[int, bytes]] = {}
        table = self.table
        for i in range(0, len(ids), _IN_CHUNK):
            where, params = self._in("originator_id", [self.key(u) for u in ids[i: i + _IN_CHUNK]])
            # The MAX per stream comes from the primary key's index alone; only the head rows
            # themselves are then read.
            sql = (f"SELECT e.originator_id, e.originator_version, e.state FROM {table} e "
                   f"JOIN (SELECT originator_id AS o, MAX(originator_version) AS v "
                   f"FROM {table} WHERE {where} GROUP BY originator_id) m "
                   "ON e.originator_id = m.o AND e.originator_version = m.v")
            for oid, version, state in self._rows(sql, params):
                out[oid] = (version, bytes(state))
        return out

    def events(
        self, ids: list[uuid.UUID], topics: list[str]
    ) -> dict[Any, list[tuple[int, str, bytes]]]:
        """Stream key -> its events of ``topics`` as (version, topic, state), in version order."""
        out: dict[Any, list[tuple[int, str, bytes]]] = {}
        topic_where, topic_params = self._in("topic", topics)
        for i in range(0, len(ids), _IN_CHUNK):
            where, params = self._in("originator_id", [self.key(u) for u in ids[i: i + _IN_CHUNK]])
            sql = (f"SELECT originator_id, originator_version, topic, state FROM {self.table} "
                   f"WHERE {where} AND {topic_where} ORDER BY originator_id, originator_version")
            for oid, version, topic, state in self._rows(sql, params + topic_params):
                out.setdefault(oid, []).append((version, topic, bytes(state)))
        return out

    def scan(self, topics: list[str], after: int = 0) -> Iterator[tuple[Any, int, str, bytes]]:
        """(stream key, version, topic, state) of every event of ``topics`` after ledger
        position ``after``, in ledger order, a page of a few thousand at a time."""
        where, params = self._in("topic", topics)
        mark = "?" if self.sqlite else "%s"
        sql = (f"SELECT {self.position}, originator_id, originator_version, topic, state "
               f"FROM {self.table} WHERE {where} AND {self.position} > {mark} "
               f"ORDER BY {self.position} LIMIT {_PAGE}")
        while page := self._rows(sql, [*params, after]):
            for _, o, v, t, s in page:
                yield o, v, t, bytes(s)
            after = page[-1][0]

    def last_position(self) -> int:
        """The ledger position of the last event in this snapshot (0 when empty)."""
        rows = self._rows(f"SELECT MAX({self.position}) FROM {self.table}", [])
        return int(rows[0][0] or 0)
