"""Operator mistakes get one line and the right exit code, and write nothing.

One table of what operators really do wrong: key files of the wrong form, the wrong key,
keys others can read, output folders that do not exist, numbers too long for any count,
clocks in the future or misspelt, roots mistyped, hostile policy files, and on PostgreSQL
an empty database, an unknown role or database, and an application role that was never
created. Each row is run as a real command on a SQLite file and on PostgreSQL and must give
exactly one line on stderr naming what was wrong, the row's exit code, no traceback, and
leave every table, row and file as it was.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from claimledger.application import open_app
from conftest import _pg_admin_url
from ledger_story import build

CLI = [sys.executable, "-c", "from claimledger.cli import main; main()"]
LATER = "2016-04-01T00:00:00Z"


@dataclass
class World:
    """The ledger under test, its key directory and a scratch folder."""

    db: str
    keys: Path
    tmp: Path
    backend: str


@dataclass(frozen=True)
class Mistake:
    args: tuple[str, ...]
    code: int
    says: str
    setup: Callable[[World], dict[str, str]] | None = None  # returns extra environment
    db: Callable[[World], str] | None = None  # another database URL than the ledger's


def _raw_master(w: World) -> dict[str, str]:
    (w.keys / "master.key").write_bytes(os.urandom(32))
    return {}


def _master_is_a_folder(w: World) -> dict[str, str]:
    (w.tmp / "keyfolder").mkdir()
    return {"CLAIMLEDGER_MASTER_KEY_FILE": str(w.tmp / "keyfolder")}


def _other_master(w: World) -> dict[str, str]:
    (w.keys / "master.key").write_text("ab" * 32 + "\n")
    return {}


def _open_master(w: World) -> dict[str, str]:
    (w.keys / "master.key").chmod(0o644)
    return {}


def _long_number(w: World) -> dict[str, str]:
    (w.tmp / "attendance.csv").write_text(
        "member_ref,term_start,term_end,sessions_possible,sessions_absent,unauthorised_absent,"
        "fixed_term_exclusions,permanent_exclusion,setting,source\n"
        f"F-1-C0,2015-09-01,2015-12-18,{'9' * 30},3,1,0,no,school,census\n")
    return {}


def _deep_policy(w: World) -> dict[str, str]:
    (w.tmp / "deep" / "x").mkdir(parents=True)
    (w.tmp / "deep" / "x" / "plan.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000)
    return {}


def _big_int_policy(w: World) -> dict[str, str]:
    (w.tmp / "big" / "x").mkdir(parents=True)
    (w.tmp / "big" / "x" / "plan.toml").write_text("x = " + "7" * 10_000)
    return {}


def _proof(w: World) -> dict[str, str]:
    out = subprocess.run([*CLI, "--db", w.db, "--key-dir", str(w.keys), "checkpoint", "prove",
                          "3", "--out", str(w.tmp / "proof.json")], capture_output=True,
                         text=True, env=_env(w, {}))
    assert out.returncode == 0, out.stderr
    return {}


def _empty_pg(w: World) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_pg_admin_url(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    w.tmp.joinpath("created-db").write_text(name)
    return _pg_admin_url().rsplit("/", 1)[0] + "/" + name


def _unknown_role(w: World) -> str:
    return w.db.replace("postgres@", "nobody_here@")


def _unknown_database(w: World) -> str:
    return _pg_admin_url().rsplit("/", 1)[0] + "/no_such_database_here"


MISTAKES: dict[str, Mistake] = {
    "master key of 32 raw bytes": Mistake(("evaluate", "F-1", "--as-of", "2016-03-31"), 2,
                                          "master key is not hex", _raw_master),
    "master key path is a folder": Mistake(("verify",), 2, "is a directory, expected the "
                                           "master key file", _master_is_a_folder),
    "another ledger's master key": Mistake(("verify",), 2, "wrong master key for this ledger",
                                           _other_master),
    "master key readable by others": Mistake(("verify",), 2, "must be mode 0600", _open_master),
    "export into a missing folder": Mistake(("export", "--out", "{tmp}/no/such/x.jsonl"), 2,
                                            "folder {tmp}/no/such does not exist"),
    "bundle into a missing folder": Mistake(("bundle", "F-1/progress", "--out",
                                             "{tmp}/no/b.zip"), 2, "folder {tmp}/no does not"),
    "explain --html into a missing folder": Mistake(
        ("claim", "explain", "F-1/progress", "--html", "{tmp}/no/x.html"), 2,
        "folder {tmp}/no does not exist"),
    "checkpoint prove into a missing folder": Mistake(
        ("checkpoint", "prove", "1", "--out", "{tmp}/no/p.json"), 2, "folder {tmp}/no does"),
    "a 30-digit attendance cell": Mistake(("ingest", "attendance", "{tmp}/attendance.csv"), 2,
                                          "attendance.csv:2 column sessions_possible: 30-digit "
                                          "number", _long_number),
    "--now in the future": Mistake(("--now", "2030-01-01", "seal"), 2,
                                   "is later than this machine's clock"),
    "--now misspelt": Mistake(("--now", "yesterday", "seal"), 2,
                              "--now: 'yesterday' is not an ISO date"),
    "a root that is not 64 hex digits": Mistake(
        ("checkpoint", "verify-consistency", "{tmp}/proof.json", "--size", "3", "--root",
         "00ff"), 2, "--root: '00ff' is not a Merkle root", _proof),
    "a policy nested 100,000 deep": Mistake(("policy", "check", "{tmp}/deep"), 2,
                                            "nested too deeply", _deep_policy),
    "a policy with a 10,000-digit number": Mistake(("policy", "check", "{tmp}/big"), 2,
                                                   "not a policy value", _big_int_policy),
    "no policies where it looks": Mistake(
        ("evaluate", "F-1", "--as-of", "2016-03-31"), 2, "no policies found under",
        lambda w: (w.tmp / "nothing").mkdir() or {"CLAIMLEDGER_POLICIES": str(w.tmp / "nothing")}),
}
PG_MISTAKES: dict[str, Mistake] = {
    "a PostgreSQL database with no ledger": Mistake(("verify",), 2, "no ledger at",
                                                    db=_empty_pg),
    "report on a database with no ledger": Mistake(("report", "cohort", "--as-of",
                                                    "2016-01-01"), 2, "no ledger at",
                                                   db=_empty_pg),
    "an unknown role": Mistake(("verify",), 2, 'role "nobody_here" does not exist',
                               db=_unknown_role),
    "an unknown database": Mistake(("verify",), 2, 'database "no_such_database_here" does not',
                                   db=_unknown_database),
    "init --app-role naming no role": Mistake(
        ("init", "--authority", "Lancs", "--app-role", "no_such_role"), 2,
        "--app-role no_such_role: no such role on the server", db=_empty_pg),
}


def _env(w: World, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLAIMLEDGER_NOW", "CLAIMLEDGER_POLICIES", "CLAIMLEDGER_DEBUG")}
    return {**env, "CLAIMLEDGER_ACTOR": "admin1", **extra}


def _snapshot(url: str, keys: Path, tmp: Path) -> Any:
    """Every table with its rows, and every file under the test's folder, by content."""
    files = sorted((str(p), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in tmp.rglob("*") if p.is_file() and not p.name.endswith(
                       ("-wal", "-shm")) and p.suffix != ".sqlite")
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return files, None
        with sqlite3.connect(path) as c:
            tables = [r[0] for r in c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return files, [(t, sorted(map(repr, c.execute(f'SELECT * FROM "{t}"'))))
                           for t in tables]
    try:
        conn = psycopg.connect(url)
    except psycopg.OperationalError:
        return files, None
    with conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        return files, [(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))))
                       for t in tables]


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_an_operator_mistake_is_one_line_and_writes_nothing(
        mistake: str, settings_for, db_url: str, tmp_path: Path, backend: str) -> None:
    _check(MISTAKES[mistake], settings_for, db_url, tmp_path, backend)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("mistake", list(PG_MISTAKES))
def test_a_postgresql_mistake_is_one_line_and_writes_nothing(
        mistake: str, settings_for, db_url: str, tmp_path: Path, backend: str) -> None:
    _check(PG_MISTAKES[mistake], settings_for, db_url, tmp_path, backend)


def _check(m: Mistake, settings_for, db_url: str, tmp_path: Path, backend: str) -> None:
    build(settings_for)
    s = settings_for(now=LATER)
    open_app(s).seal()
    w = World(db_url, s.key_dir, tmp_path / "scratch", backend)
    w.tmp.mkdir()
    extra = m.setup(w) if m.setup else {}
    url = m.db(w) if m.db else db_url
    args = [a.replace("{tmp}", str(w.tmp)) for a in m.args]
    before = _snapshot(url, w.keys, tmp_path)
    try:
        p = subprocess.run([*CLI, "--db", url, "--key-dir", str(w.keys), *args],
                           capture_output=True, text=True, env=_env(w, extra), timeout=120,
                           cwd=w.tmp)
        after = _snapshot(url, w.keys, tmp_path)
    finally:
        created = w.tmp / "created-db"
        if created.exists():
            with psycopg.connect(_pg_admin_url(), autocommit=True) as c:
                c.execute(f"DROP DATABASE IF EXISTS {created.read_text()} WITH (FORCE)")
    err = p.stderr
    assert p.returncode == m.code, (p.returncode, err, p.stdout)
    assert err.count("\n") == 1 and err.startswith("claimledger: "), err
    assert "Traceback" not in err
    assert m.says.replace("{tmp}", str(w.tmp)) in err, err
    assert after == before, "something was written"
