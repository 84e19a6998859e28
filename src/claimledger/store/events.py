"""Reads of one stream's events with their ledger positions (the events table's key)."""

from __future__ import annotations

import uuid
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
