"""Shared fixtures: every ledger test runs on a real SQLite file and a real PostgreSQL server.

PostgreSQL comes from ``CLAIMLEDGER_TEST_PG_URL`` (``scripts/pg-start`` prints it). Without
it the PostgreSQL half is skipped locally, but under CI (``CI=true``) a missing server is an
error: the multi-user path must be tested for real.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from claimledger.application import LedgerApp, Settings, open_app
from claimledger.cli import main
from claimledger.ledger.envelope import GENESIS, record_state, seal, stream_uuid

PG_URL = os.environ.get("CLAIMLEDGER_TEST_PG_URL")


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """A module of scripts/ (``name`` without ``.py``), imported as the tests import a
    library, and registered under its name so the scripts' own imports of it resolve."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _pg_admin_url() -> str:
    assert PG_URL
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def require_postgres() -> None:
    """The one place a PostgreSQL test gives way without a server: it skips on a developer's
    machine, and fails under CI=true, where `.ci/run` starts one and the tests must run."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CLAIMLEDGER_TEST_PG_URL is not set in CI: PostgreSQL tests must run")
        pytest.skip("no PostgreSQL server (set CLAIMLEDGER_TEST_PG_URL; see scripts/pg-start)")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_postgres()
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger location on the chosen backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.sqlite"
        return
    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = _pg_admin_url().rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings_for(db_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on this test's ledger; ``now`` and ``actor`` may vary per command."""

    def make(now: str = "2016-01-01T09:00:00Z", actor: str = "admin1", **kw: Any) -> Settings:
        return Settings(db=kw.get("db", db_url), key_dir=kw.get("key_dir", tmp_path / "keys"),
                        now=now, actor=actor)

    return make


@pytest.fixture
def new_ledger(settings_for: Callable[..., Settings]) -> Callable[..., LedgerApp]:
    def make(now: str = "2016-01-01T09:00:00Z", authority: str = "Worcestershire") -> LedgerApp:
        app = open_app(settings_for(now=now), must_exist=False)
        app.init(authority)
        return app

    return make


class RawDB:
    """Direct SQL on the events table, to play the part of someone tampering with it."""

    def __init__(self, url: str):
        self.url = url
        self.sqlite = url.startswith("sqlite")
        # eventsourcing names the table per backend.
        self.table = "stored_events" if self.sqlite else "claimledger_events"

    def _conn(self) -> Any:
        if self.sqlite:
            return sqlite3.connect(self.url.removeprefix("sqlite:///"))
        return psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"))

    @property
    def pos(self) -> str:
        return "rowid" if self.sqlite else "notification_id"

    def _p(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def rows(self) -> list[tuple[int, Any, int, str, bytes]]:
        with self._conn() as c:
            cur = c.execute(
                f"SELECT {self.pos}, originator_id, originator_version, topic, state "
                f"FROM {self.table} ORDER BY {self.pos}"
            )
            return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in cur.fetchall()]

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as c:
            return [tuple(r) for r in c.execute(self._p(sql), params).fetchall()]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        conn = self._conn()
        try:
            if not self.sqlite:
                # The events table refuses UPDATE and DELETE by trigger; only a superuser
                # can step around it, and a tamperer with superuser access is who we play.
                conn.execute("SET session_replication_role = replica")
            conn.execute(self._p(sql), params)
            conn.commit()
        finally:
            conn.close()

    def set_state(self, position: int, state: bytes) -> None:
        self.execute(f"UPDATE {self.table} SET state = ? WHERE {self.pos} = ?", (state, position))

    def delete(self, position: int) -> None:
        self.execute(f"DELETE FROM {self.table} WHERE {self.pos} = ?", (position,))

    def delete_from(self, position: int) -> None:
        self.execute(f"DELETE FROM {self.table} WHERE {self.pos} >= ?", (position,))

    def move(self, position: int, new_position: int) -> None:
        self.execute(f"UPDATE {self.table} SET {self.pos} = ? WHERE {self.pos} = ?",
                     (new_position, position))

    def insert(self, position: int, originator_id: Any, version: int, topic: str,
               state: bytes) -> None:
        self.execute(
            f"INSERT INTO {self.table} ({self.pos}, originator_id, originator_version, topic, "
            "state) VALUES (?, ?, ?, ?, ?)", (position, originator_id, version, topic, state))

    def forge(self, position: int, stream: str, version: int, type_: str,
              payload: dict[str, Any], *, recorded_at: str, salt: bytes,
              prev_hash: str = GENESIS) -> None:
        """Slip in a well-formed, correctly sealed event (in the clear) that the ledger never
        recorded: what a careful forger with write access to the table can do."""
        forged = seal(stream=stream, version=version, type_=type_, recorded_at=recorded_at,
                      actor="mallory", prev_hash=prev_hash, salt=salt, payload=payload)
        oid = stream_uuid(stream)
        self.insert(position, oid.hex if self.sqlite else oid, version,
                    f"claimledger.domain.family:{type_}", record_state(forged))


@pytest.fixture
def raw(db_url: str) -> RawDB:
    return RawDB(db_url)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
