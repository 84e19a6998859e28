"""`claimledger doctor`: what an admin runs after set-up and before each claim window.

Story: the council's admin sets up the ledger, loads a family and seals; doctor says healthy.
Then, one at a time, the things that go wrong on real servers: the master key copied with
the wrong mode, another ledger's master key, a retired signing key put back, the witness
lost, events left unsealed, no policies where the command looks, and on PostgreSQL the
append-only trigger dropped. Each is named, with exit 1, and doctor writes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from claimledger.application import open_app
from ledger_story import add_family, build

LATER = "2016-04-01T00:00:00Z"  # after the story's last event


def _doctor(run, settings) -> tuple[int, dict]:
    code, out, err = run("--db", settings.db, "--key-dir", str(settings.key_dir),
                         "--actor", "admin1", "doctor", "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


def _bad(report: dict) -> dict[str, str]:
    return {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}


def test_a_healthy_ledger(settings_for, run, backend: str) -> None:
    build(settings_for)
    s = settings_for(now=LATER)
    open_app(s).seal()
    code, report = _doctor(run, s)
    assert code == 0 and report["ok"], _bad(report)
    assert report["backend"] == backend and report["authority"] == "Worcestershire"
    names = [c["check"] for c in report["checks"]]
    assert names[:1] == ["ledger"] and "witness" in names and "policies" in names
    assert ("append-only" in names) == (backend == "postgres")
    assert {p["id"] for p in report["policies"]} >= {"worcestershire/stronger-families-2015-16"}


def _unsafe_mode(s) -> str:
    (s.key_dir / "master.key").chmod(0o644)
    return "master key file"


def _another_master_key(s) -> str:
    (s.key_dir / "master.key").write_text("11" * 32 + "\n")
    return "master key"


def _retired_signing_key(s) -> str:
    old = (s.key_dir / "signing.key").read_bytes()
    open_app(s).rotate_key("scheduled")
    (s.key_dir / "signing.key").write_bytes(old)
    return "signing key"


def _witness_lost(s) -> str:
    (s.key_dir / "witness.json").unlink()
    return "witness"


def _unsealed(s) -> str:
    add_family(open_app(s), "F-late")
    return "checkpoint"


PROBLEMS: dict[str, Callable[..., str]] = {
    "master key readable by others": _unsafe_mode,
    "another ledger's master key": _another_master_key,
    "a retired signing key": _retired_signing_key,
    "the witness lost": _witness_lost,
    "events after the last checkpoint": _unsealed,
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_each_problem_is_named(problem: str, settings_for, run) -> None:
    build(settings_for)
    s = settings_for(now=LATER)
    open_app(s).seal()
    check = PROBLEMS[problem](s)
    code, report = _doctor(run, s)
    assert code == 1 and not report["ok"]
    assert check in _bad(report), report["checks"]
    assert any(p.startswith(check + ":") for p in report["problems"])


def test_no_policies_where_the_command_looks(settings_for, run, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    build(settings_for)
    open_app(settings_for(now=LATER)).seal()
    (tmp_path / "empty").mkdir()
    monkeypatch.setitem(os.environ, "CLAIMLEDGER_POLICIES", str(tmp_path / "empty"))
    code, report = _doctor(run, settings_for(now=LATER))
    assert code == 1 and "no policies found under" in _bad(report)["policies"]


def test_no_ledger_at_all(tmp_path: Path, run) -> None:
    code, out, _ = run("--db", f"sqlite:///{tmp_path}/none.sqlite", "doctor")
    assert code == 1 and "no ledger at" in out
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_without_its_append_only_trigger(settings_for, run, backend: str,
                                                  db_url: str) -> None:
    build(settings_for)
    open_app(settings_for(now=LATER)).seal()
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute("DROP TRIGGER claimledger_append_only ON claimledger_events")
    code, report = _doctor(run, settings_for(now=LATER))
    assert code == 1
    assert "claimledger_append_only" in _bad(report)["append-only"]
