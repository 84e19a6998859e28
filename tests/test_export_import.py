"""Export → import on the other backend → verify, with every hash unchanged.

Story: a council moves its ledger from the embedded SQLite file to its PostgreSQL server,
and later hands a copy back as SQLite to an auditor. Nothing may change on the way.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from claimledger.application import Settings, open_app
from conftest import _pg_admin_url, require_postgres
from ledger_story import build


def _hashes(app) -> list[tuple[int, bytes]]:
    return [(r.position, r.state) for r in app.rows()]


@pytest.fixture
def pg_db():
    require_postgres()
    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _pg_admin_url().rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_sqlite_to_postgres_to_sqlite_keeps_every_byte(tmp_path: Path, pg_db: str, run):
    keys = tmp_path / "keys"

    def settings(db: str) -> Settings:
        return Settings(db=db, key_dir=keys, now="2016-06-01T00:00:00Z", actor="admin1")

    def settings_for(now: str = "2016-01-01T09:00:00Z", actor: str = "admin1") -> Settings:
        return Settings(db=f"sqlite:///{tmp_path}/a.sqlite", key_dir=keys, now=now, actor=actor)

    build(settings_for)
    source = open_app(settings_for())
    original = _hashes(source)

    code, _, _ = run("--db", f"sqlite:///{tmp_path}/a.sqlite", "export", "--out",
                     str(tmp_path / "a.jsonl"))
    assert code == 0
    code, _, err = run("--db", pg_db, "--key-dir", str(keys), "import",
                       str(tmp_path / "a.jsonl"))
    assert code == 0, err
    on_pg = open_app(settings(pg_db))
    assert _hashes(on_pg) == original
    assert on_pg.verify().ok

    # The ledger keeps working on PostgreSQL: a new checkpoint continues the old frontier.
    assert on_pg.seal()["sealed"]
    assert open_app(settings(pg_db)).verify().ok

    run("--db", pg_db, "export", "--out", str(tmp_path / "b.jsonl"))
    back = f"sqlite:///{tmp_path}/b.sqlite"
    assert run("--db", back, "--key-dir", str(keys), "import", str(tmp_path / "b.jsonl"))[0] == 0
    on_sqlite = open_app(settings(back))
    assert _hashes(on_sqlite)[: len(original)] == original
    assert on_sqlite.verify().ok
    code, out, _ = run("--db", back, "--key-dir", str(keys), "verify")
    assert code == 0 and "intact" in out


def test_import_refuses_a_non_empty_ledger_and_a_bad_file(tmp_path: Path, run):
    db = f"sqlite:///{tmp_path}/a.sqlite"
    assert run("--db", db, "--key-dir", str(tmp_path / "k"), "init")[0] == 0
    run("--db", db, "export", "--out", str(tmp_path / "a.jsonl"))
    code, _, err = run("--db", db, "--key-dir", str(tmp_path / "k"), "import",
                       str(tmp_path / "a.jsonl"))
    assert code == 2 and "not empty" in err
    (tmp_path / "bad.jsonl").write_text('{"format": "something-else"}\n')
    code, _, err = run("--db", f"sqlite:///{tmp_path}/c.sqlite", "import",
                       str(tmp_path / "bad.jsonl"))
    assert code == 2 and "bad.jsonl:1: not a claimledger export" in err
