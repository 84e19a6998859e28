"""PostgreSQL specifics: writers serialised without needing UPDATE rights on the events.

eventsourcing orders notification ids by taking ``LOCK TABLE … IN EXCLUSIVE MODE`` for each
insert, and PostgreSQL grants that lock only to roles that may UPDATE, DELETE or TRUNCATE the
table. The ledger's application role may only SELECT and INSERT, so this recorder serialises
writers with a transaction-scoped advisory lock instead: every claimledger writer takes the
same lock, which orders commits exactly as the table lock did.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL

from .location import APPEND_LOCK_KEY


class AppendOnlyRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lock_table_statements = [
            self.lock_table_statements[0],  # SET LOCAL lock_timeout
            SQL("SELECT pg_advisory_xact_lock({0})").format(APPEND_LOCK_KEY),
        ]
