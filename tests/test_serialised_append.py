"""The serialised append: the writers' lock, one clock, and a clear answer for a waiting writer.

Stories: an admin seals while another writer holds the ledger for longer than the admin will
wait; an application machine whose clock is behind the ledger's last event writes; a
PostgreSQL ledger takes its time from the server, not from the machine that writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from claimledger.application import Settings, open_app
from claimledger.ledger.canonical import loads
from ledger_story import add_family, build

CLI = [sys.executable, "-c", "from claimledger.cli import main; main()"]


def _last_recorded_at(app) -> str:
    return [loads(r.state)["envelope"]["recorded_at"] for r in app.rows()][-1]


def test_a_writer_that_cannot_get_the_lock_says_so_and_writes_nothing(settings_for,
                                                                     db_url: str) -> None:
    build(settings_for)
    app = open_app(settings_for())
    before = [r.state for r in app.rows()]
    env = {**os.environ, "CLAIMLEDGER_DB": db_url,
           "CLAIMLEDGER_KEY_DIR": str(settings_for().key_dir), "CLAIMLEDGER_LOCK_WAIT": "1"}
    env.pop("CLAIMLEDGER_NOW", None)
    with app.new_writer() as held:
        held.lock()  # another writer, in the middle of a long file
        t0 = time.monotonic()
        p = subprocess.run([*CLI, "seal"], env=env, capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - t0
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "another writer holds the ledger" in err and "CLAIMLEDGER_LOCK_WAIT" in err
    assert "nothing was written" in err
    assert waited >= 1.0
    assert [r.state for r in open_app(settings_for()).rows()] == before


def test_a_bad_lock_wait_is_refused_before_anything_is_written(settings_for, db_url: str):
    build(settings_for)
    env = {**os.environ, "CLAIMLEDGER_DB": db_url,
           "CLAIMLEDGER_KEY_DIR": str(settings_for().key_dir), "CLAIMLEDGER_LOCK_WAIT": "soon"}
    p = subprocess.run([*CLI, "seal"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == ("claimledger: CLAIMLEDGER_LOCK_WAIT: 'soon' is not a number of "
                                "seconds from 0 to 86400")


def test_a_clock_behind_the_ledger_neither_refuses_nor_goes_backwards(settings_for) -> None:
    """The last event came from a machine whose clock runs two minutes ahead."""
    build(settings_for)
    ahead = datetime.now(UTC) + timedelta(minutes=2)
    app = open_app(settings_for())
    with app.writing(at=ahead):  # as that machine's writer assigned it
        add_family(app, "F-ahead")
    last = _last_recorded_at(app)
    app = open_app(Settings(db=settings_for().db, key_dir=settings_for().key_dir,
                            actor="admin1"))  # this machine's clock: behind the ledger's
    add_family(app, "F-behind")
    first_new = [loads(r.state)["envelope"] for r in app.rows()][-4]
    assert first_new["stream"] == "family/F-behind"
    assert first_new["recorded_at"] > last
    moment = datetime.fromisoformat(first_new["recorded_at"].replace("Z", "+00:00"))
    assert moment - datetime.fromisoformat(last.replace("Z", "+00:00")) == timedelta(
        microseconds=1)
    assert app.seal()["sealed"]
    assert app.verify().ok


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgresql_takes_the_time_from_the_server(backend: str, settings_for,
                                                   db_url: str) -> None:
    """(SQLite has one machine: its clock is the one clock.)"""
    build(settings_for)

    def server_now() -> str:
        with psycopg.connect(db_url) as c:
            t = c.execute("SELECT clock_timestamp()").fetchone()[0]
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    app = open_app(Settings(db=db_url, key_dir=settings_for().key_dir, actor="admin1"))
    before = server_now()
    add_family(app, "F-server")
    after = server_now()
    assert before <= _last_recorded_at(app) <= after


def test_commands_with_the_same_now_still_chain(settings_for, tmp_path: Path) -> None:
    """Loading history: several commands at one given --now are all accepted."""
    build(settings_for)
    for ref in ("H-1", "H-2"):
        add_family(open_app(settings_for(now="2016-03-01T09:00:00Z")), ref)
    assert open_app(settings_for(now="2016-03-01T09:00:00Z")).verify().ok
