"""The family-keys table: every SQL statement on the wrapped data keys.

One row per family stream: ``(stream, wrapped)``, the family's data key wrapped under the
master key (crypto.py does the wrapping; nothing here sees a key in the clear). Creating
the table and deleting a key happen in the writers' transaction; on PostgreSQL a key is
deleted through ``claimledger_erase_key``, which refuses unless the transaction recorded
the family's ``Family.Erased`` event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ledger.envelope import stream_uuid

if TYPE_CHECKING:
    from .writer import WriterTransaction

KEYS_TABLE = "claimledger_family_keys"

#: Streams per ``IN`` query.
_CHUNK = 500


class KeysTable:
    """The wrapped keys on SQLite or PostgreSQL (``datastore``: the recorder's)."""

    def __init__(self, datastore: Any, sqlite: bool):
        self.datastore, self.sqlite = datastore, sqlite
        if sqlite:
            self.table = KEYS_TABLE
        else:
            self.table = f'"{getattr(datastore, "schema", "") or "public"}"."{KEYS_TABLE}"'

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    @staticmethod
    def _cell(row: Any, name: str, k: int) -> Any:
        return row[k] if isinstance(row, tuple) else row[name]

    # --- in the writer's transaction ------------------------------------------------------
    def create(self, writer: WriterTransaction) -> None:
        """The table, in the writer's transaction (init's, or import's)."""
        blob = "BLOB" if self.sqlite else "BYTEA"
        writer.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (stream TEXT PRIMARY KEY, "
                       f"wrapped {blob} NOT NULL)")

    def delete(self, stream: str, writer: WriterTransaction) -> None:
        """Delete the stream's key in the writer's transaction, the one that records its
        ``Family.Erased`` event."""
        if self.sqlite:
            writer.execute(f"DELETE FROM {self.table} WHERE stream = ?", (stream,))
            return
        schema = self.table.rsplit(".", 1)[0]
        fn = f"{schema}.claimledger_erase_key"
        if writer.execute("SELECT to_regprocedure(?)", (f"{fn}(text,uuid)",)).fetchone()[0]:
            writer.execute(f"SELECT {fn}(?, ?)", (stream, stream_uuid(stream)))
        else:  # a ledger set up before the function existed
            writer.execute(f"DELETE FROM {self.table} WHERE stream = ?", (stream,))

    # --- their own transactions -------------------------------------------------------------
    def rows(self) -> list[tuple[str, bytes]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT stream, wrapped FROM {self.table} ORDER BY stream")
            return [(self._cell(r, "stream", 0), bytes(self._cell(r, "wrapped", 1)))
                    for r in c.fetchall()]

    def insert(self, rows: list[tuple[str, bytes]]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(self._sql(f"INSERT INTO {self.table} (stream, wrapped) VALUES (?, ?)"),
                          rows)

    def lookup(self, stream: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql(f"SELECT wrapped FROM {self.table} WHERE stream = ?"), (stream,))
            row = c.fetchone()
        return None if row is None else bytes(self._cell(row, "wrapped", 0))

    def present(self, streams: list[str]) -> set[str]:
        """Those of ``streams`` the table holds a key for (a few queries in all)."""
        found: set[str] = set()
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(streams), _CHUNK):
                chunk = streams[i: i + _CHUNK]
                if self.sqlite:
                    c.execute(f"SELECT stream FROM {self.table} WHERE stream IN "
                              f"({','.join('?' * len(chunk))})", chunk)
                else:
                    c.execute(f"SELECT stream FROM {self.table} WHERE stream = ANY(%s)", (chunk,))
                found.update(self._cell(r, "stream", 0) for r in c.fetchall())
        return found
