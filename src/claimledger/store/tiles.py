"""The Merkle tiles table: every SQL statement that reads or writes stored tiles.

One row per tile: ``(level, idx)``, its hashes (32 bytes each) and, at level 0, the ledger
position of each leaf (8 bytes each, little-endian) and the first of them, indexed, so the
leaf index of an event is one indexed read. The rightmost tile of a level is rewritten as
it grows; every other tile is written once, full. Writes happen only inside the writers'
transaction (``seal``); reads take their own read transaction.
"""

from __future__ import annotations

import sys
from array import array
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..ledger.tiles import WIDTH, Tile

if TYPE_CHECKING:
    from .writer import WriterTransaction

TILES_TABLE = "merkle_tiles"


def _positions(blob: bytes | None) -> array:  # type: ignore[type-arg]
    a = array("q")
    if blob:
        a.frombytes(bytes(blob))
        if sys.byteorder != "little":
            a.byteswap()
    return a


def _blob(positions: array) -> bytes:  # type: ignore[type-arg]
    if sys.byteorder != "little":
        positions = array("q", positions)
        positions.byteswap()
    return positions.tobytes()


class TileStore:
    """Stored tiles on SQLite or PostgreSQL (``datastore``: the recorder's)."""

    def __init__(self, datastore: Any, sqlite: bool):
        self.datastore, self.sqlite = datastore, sqlite
        if sqlite:
            self.table, self._mark = TILES_TABLE, "?"
        else:
            schema = getattr(datastore, "schema", "") or "public"
            self.table, self._mark = f'"{schema}"."{TILES_TABLE}"', "%s"

    # --- in the writer's transaction ------------------------------------------------------
    def create(self, writer: WriterTransaction) -> None:
        blob = "BLOB" if self.sqlite else "BYTEA"
        writer.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (level INTEGER NOT NULL, "
            f"idx BIGINT NOT NULL, hashes {blob} NOT NULL, first_position BIGINT, "
            f"positions {blob}, PRIMARY KEY (level, idx))")
        writer.execute(f"CREATE INDEX IF NOT EXISTS {TILES_TABLE}_first ON {self.table} "
                       "(first_position)")

    def exists(self, writer: WriterTransaction) -> bool:
        if self.sqlite:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            return writer.execute(sql, (TILES_TABLE,)).fetchone() is not None
        return writer.execute("SELECT to_regclass(?)", (self.table,)).fetchone()[0] is not None

    def ensure(self, writer: WriterTransaction, events_table: str) -> None:
        """Create the table for a ledger written before tiles were stored (the owner's
        role may; an application role granted only rows may not, and is told so). On
        PostgreSQL every role that may append events gets the tiles' rights too, as init
        grants them, so an application role set up before can still seal, verify and prove."""
        if self.exists(writer):
            return
        try:
            self.create(writer)
        except Exception as err:  # a role without CREATE on the schema
            raise ConfigError(f"{self.table}: cannot create the Merkle tiles table ({err}); "
                              "run `claimledger seal` once as the ledger's owner") from None
        if self.sqlite:
            return
        schema = self.table.split(".", 1)[0].strip('"')
        roles = writer.execute(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants WHERE "
            "table_schema = ? AND table_name = ? AND privilege_type = 'INSERT' AND "
            "grantee <> current_user", (schema, events_table)).fetchall()
        for (role,) in roles:
            quoted = '"' + str(role).replace('"', "") + '"'
            writer.execute(f"GRANT SELECT, INSERT, UPDATE ON {self.table} TO {quoted}")

    def edge(self, writer: WriterTransaction) -> list[Tile]:
        """The rightmost tile of each level, as this transaction sees them."""
        rows = writer.execute(
            f"SELECT t.level, t.idx, t.hashes, t.positions FROM {self.table} t JOIN "
            f"(SELECT level, MAX(idx) AS idx FROM {self.table} GROUP BY level) m "
            "ON t.level = m.level AND t.idx = m.idx ORDER BY t.level").fetchall()
        return [Tile(lv, ix, bytes(h), _positions(p)) for lv, ix, h, p in rows]

    def last_full_position(self, writer: WriterTransaction) -> int | None:
        """The position of the last leaf in the tiles when level 0's last tile is full."""
        row = writer.execute(f"SELECT positions FROM {self.table} WHERE level = 0 "
                             "ORDER BY idx DESC LIMIT 1").fetchone()
        return int(_positions(row[0])[-1]) if row else None

    def write(self, writer: WriterTransaction, tiles: list[Tile]) -> None:
        if not tiles:
            return
        m = self._mark
        sql = (f"INSERT INTO {self.table} (level, idx, hashes, first_position, positions) "
               f"VALUES ({', '.join([m] * 5)}) ON CONFLICT (level, idx) DO UPDATE SET "
               "hashes = excluded.hashes, first_position = excluded.first_position, "
               "positions = excluded.positions")
        rows = [(t.level, t.index, t.hashes,
                 int(t.positions[0]) if t.level == 0 else None,
                 _blob(t.positions) if t.level == 0 else None) for t in tiles]
        writer.lock()
        writer.cursor.executemany(sql, rows)

    # --- reads ------------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if not self.sqlite:
            sql = sql.replace("?", "%s")
        with self.datastore.transaction(commit=False) as c:
            if not self.sqlite:
                from psycopg.rows import tuple_row

                c.row_factory = tuple_row
            c.execute(sql, params)
            return [tuple(r) for r in c.fetchall()]

    def fetch(self, level: int, index: int) -> Tile | None:
        rows = self._query(f"SELECT hashes, positions FROM {self.table} WHERE level = ? "
                           "AND idx = ?", (level, index))
        if not rows:
            return None
        return Tile(level, index, bytes(rows[0][0]), _positions(rows[0][1]))

    def readable(self) -> bool:
        """Whether the table exists (a ledger written before tiles were stored has none)."""
        if self.sqlite:
            sql, args = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", \
                (TILES_TABLE,)
        else:
            sql, args = "SELECT 1 WHERE to_regclass(?) IS NOT NULL", (self.table,)
        return bool(self._query(sql, args))

    def covered(self) -> int:
        """Leaves the stored tiles hold (0 for none, or no table yet)."""
        if not self.readable():
            return 0
        rows = self._query(f"SELECT idx, hashes FROM {self.table} WHERE level = 0 "
                           "ORDER BY idx DESC LIMIT 1", ())
        if not rows:
            return 0
        return int(rows[0][0]) * WIDTH + len(bytes(rows[0][1])) // 32

    def leaf_index(self, position: int) -> int | None:
        """The leaf index of the event at ``position``, if the tiles hold it."""
        # Only level-0 tiles have a first position: the condition on it alone lets the
        # database walk its index backwards to one row (with ``level = 0`` too, SQLite chose
        # the primary key and read every level-0 tile: 65 MB a lookup at 30,000 families).
        rows = self._query(f"SELECT idx, positions FROM {self.table} WHERE first_position <= ? "
                           "ORDER BY first_position DESC LIMIT 1", (position,))
        if not rows:
            return None
        idx, positions = int(rows[0][0]), _positions(rows[0][1])
        lo, hi = 0, len(positions)
        while lo < hi:  # positions rise within a tile
            mid = (lo + hi) // 2
            if positions[mid] < position:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(positions) and positions[lo] == position:
            return idx * WIDTH + lo
        return None
