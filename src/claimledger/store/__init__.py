"""Storage: where the ledger lives and every SQL statement that reaches it.

``location`` turns a URL into a backend (SQLite file or PostgreSQL server) and checks the
server before anything is opened; ``writer`` is the serialised append every writer goes
through (the writers' lock, the ledger clock, the inserts); ``scan`` reads the events table
in ledger order (verify, seal, export); ``events`` one stream's events with positions and
the claim events through their partial index; ``tiles`` the stored Merkle tiles; ``keys``
the wrapped family keys; ``ledger_view`` the filtered reads an ingest plans from;
``cohort_view`` the cohort report's tables; ``hardening`` PostgreSQL's append-only
triggers and grants; ``pg`` the PostgreSQL recorder eventsourcing loads for a server
ledger. This package may import ``claimledger.errors`` and ``claimledger.ledger`` (the
pure kernel), never the application, domain or use-case modules.
"""

from .location import (
    APP_NAME,
    APPEND_LOCK_KEY,
    DEFAULT_URL,
    Location,
    locate,
    resolve_url,
    sqlite_file,
)

__all__ = ["APPEND_LOCK_KEY", "APP_NAME", "DEFAULT_URL", "Location", "locate", "resolve_url",
           "sqlite_file"]
