"""Reads of one stream's events with their ledger positions (the events table's key)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any


class StreamReads:
    """``stream(uid)``: (position, state) of each of a stream's events, in version order,
    through the primary key (originator id, version): the cost of one stream, not the
    ledger."""

    def __init__(self, datastore: Any, events_table: str, sqlite: bool):
        self.datastore, self.sqlite = datastore, sqlite
        if sqlite:
            self.sql = (f"SELECT rowid, state FROM {events_table} WHERE originator_id = ? "
                        "ORDER BY originator_version")
        else:
            schema = getattr(datastore, "schema", "") or "public"
            self.sql = (f'SELECT notification_id, state FROM "{schema}"."{events_table}" '
                        "WHERE originator_id = %s ORDER BY originator_version")

    def stream(self, uid: uuid.UUID) -> list[tuple[int, bytes]]:
        with self.datastore.transaction(commit=False) as c:
            if not self.sqlite:
                from psycopg.rows import tuple_row

                c.row_factory = tuple_row
            c.execute(self.sql, (uid.hex if self.sqlite else uid,))
            return [(int(r[0]), bytes(r[1])) for r in c.fetchall()]


#: Every claim-side event (claims, their reviews and spot checks, samples, claim runs) is a
#: class of ``claimledger.domain.claim``, so its topic falls in this range; a partial index
#: over it lets the claims side read its events in ledger order at the cost of the claims,
#: not of the ledger. The database keeps the index in each event's own transaction, and a
#: reader checks each record it reads (``persistence.checked_record``), as every reader does.
CLAIM_TOPICS = ("claimledger.domain.claim:", "claimledger.domain.claim;")  # ";" follows ":"
CLAIM_INDEX = "claimledger_claim_events"


class ClaimEventReads:
    """The claim module's events by topic, through the partial index (:data:`CLAIM_TOPICS`).

    The index's own condition is repeated in each query, as both SQLite and PostgreSQL need
    to see it to use a partial index."""

    def __init__(self, datastore: Any, events_table: str, sqlite: bool):
        self.datastore, self.sqlite = datastore, sqlite
        lo, hi = CLAIM_TOPICS
        self.where = f"topic >= '{lo}' AND topic < '{hi}'"
        if sqlite:
            self.table, pos = events_table, "rowid"
        else:
            self.schema = getattr(datastore, "schema", "") or "public"
            self.table, pos = f'"{self.schema}"."{events_table}"', "notification_id"
        self.pos = pos
        self.index_sql = (f"CREATE INDEX IF NOT EXISTS {CLAIM_INDEX} ON {self.table} "
                          f"(topic{'' if sqlite else ', notification_id'}) WHERE {self.where}")

    def create(self, writer: Any) -> None:
        """The partial index, in the writer's transaction (init's, or a seal's on a ledger
        written before it existed: only a role that owns the table may create it, so it is
        looked for first)."""
        if self.sqlite:
            found = writer.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND "
                                   "name = ?", (CLAIM_INDEX,)).fetchone()
        else:
            found = writer.execute("SELECT 1 FROM pg_indexes WHERE indexname = ? AND "
                                   "schemaname = ?", (CLAIM_INDEX, self.schema)).fetchone()
        if found is None:
            writer.execute(self.index_sql)

    def read(self, topics: list[str], *, stop: int | None = None, page: int = 5000
             ) -> Iterator[tuple[int, str, bytes]]:
        """(position, topic, state) of each event of ``topics`` up to ``stop``, in order."""
        for t in topics:
            if not (CLAIM_TOPICS[0] <= t < CLAIM_TOPICS[1]):
                raise ValueError(f"{t}: not a claim-side topic")
        if self.sqlite:
            sql = (f"SELECT rowid, topic, state FROM {self.table} WHERE {self.where} AND "
                   f"topic IN ({','.join('?' * len(topics))}) AND rowid >= ? AND rowid <= ? "
                   "ORDER BY rowid LIMIT ?")
        else:
            sql = (f"SELECT notification_id, topic, state FROM {self.table} WHERE "
                   f"{self.where} AND topic = ANY(%s) AND notification_id >= %s AND "
                   "notification_id <= %s ORDER BY notification_id LIMIT %s")
        last = stop if stop is not None else 2**62
        nxt = 1
        while True:
            with self.datastore.transaction(commit=False) as c:
                if not self.sqlite:
                    from psycopg.rows import tuple_row

                    c.row_factory = tuple_row
                    c.execute(sql, (topics, nxt, last, page))
                else:
                    c.execute(sql, (*topics, nxt, last, page))
                rows = [(int(r[0]), str(r[1]), bytes(r[2])) for r in c.fetchall()]
            if not rows:
                return
            yield from rows
            nxt = rows[-1][0] + 1

    def plan(self, topics: list[str]) -> str:
        """The database's plan for :meth:`read` (a test checks the index is used)."""
        with self.datastore.transaction(commit=False) as c:
            if self.sqlite:
                c.execute(f"EXPLAIN QUERY PLAN SELECT rowid, topic, state FROM {self.table} "
                          f"WHERE {self.where} AND topic IN ({','.join('?' * len(topics))}) "
                          "AND rowid >= ? ORDER BY rowid", (*topics, 1))
                return "\n".join(str(tuple(r)) for r in c.fetchall())
            c.execute("SET LOCAL enable_seqscan = off")  # a small table: ask if it *can*
            c.execute(f"EXPLAIN SELECT notification_id FROM {self.table} WHERE {self.where} "
                      "AND topic = ANY(%s) ORDER BY notification_id", (topics,))
            return "\n".join(str(r[0] if isinstance(r, tuple) else next(iter(r.values())))
                             for r in c.fetchall())
