"""Roles, and append-only enforced by PostgreSQL itself.

Story: a council runs one ledger for several people. Dana loads data matches, Pat records
judgements, Alex audits claims, Robin administers. Each may do their own job only, and the
database refuses to let the application rewrite history even if the application is wrong.
"""

from __future__ import annotations

import gc
import uuid
from pathlib import Path

import psycopg
import pytest

from claimledger.ledger.envelope import stream_uuid
from county import County
from test_claim_stories import worcestershire_family

ACTORS = """
[actors]
dana = ["data"]
pat = ["practitioner"]
alex = ["auditor"]
robin = ["admin"]
"""


@pytest.fixture
def county(tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> County:
    (tmp_path / "actors.toml").write_text(ACTORS)
    monkeypatch.setenv("CLAIMLEDGER_ACTORS", str(tmp_path / "actors.toml"))
    c = County(tmp_path, run)
    c.cli("init", "--authority", "Worcestershire", now="2015-01-01T00:00:00Z", actor="robin")
    return c


def test_each_role_does_its_own_job_and_is_refused_the_others(county: County):
    fam = worcestershire_family("W-1", 5)
    judgements = fam.pop("judgements")
    attestations = fam.pop("attestations")
    for kind in ("families", "members", "indicators", "attachments", "attendance",
                 "incidents"):
        county.cli("ingest", kind, str(county.write(kind, fam[kind])), actor="dana",
                   now="2016-03-20T10:00:00Z")
    # Data officers do not record practitioners' judgements.
    path = county.write("judgements", judgements)
    code, _, err = county.cli("ingest", "judgements", str(path), actor="dana", ok=False,
                              now="2016-03-20T10:00:00Z")
    assert code == 2 and "needs the practitioner role" in err
    county.cli("ingest", "judgements", str(path), actor="pat", now="2016-03-20T10:00:00Z")
    county.cli("ingest", "attestations", str(county.write("attestations", attestations)),
               actor="pat", now="2016-03-20T10:00:00Z")
    # Practitioners do not submit or validate claims; auditors do.
    code, _, err = county.cli("claim", "submit", "W-1", "--on", "2016-03-31", actor="pat",
                              ok=False, now="2016-04-01T09:00:00Z")
    assert code == 2 and "needs the auditor role" in err
    county.cli("claim", "submit", "W-1", "--on", "2016-03-31", actor="alex",
               now="2016-04-01T09:00:00Z")
    code, _, err = county.cli("claim", "validate", "W-1/progress", actor="dana", ok=False,
                              now="2016-04-02T09:00:00Z")
    assert code == 2 and "needs the auditor role" in err
    county.cli("claim", "validate", "W-1/progress", actor="alex", now="2016-04-02T09:00:00Z")
    # Only an admin exports the ledger; an unknown actor may do nothing.
    code, _, err = county.cli("export", "--out", str(county.tmp / "x.jsonl"), actor="alex",
                              ok=False)
    assert code == 2 and "needs the admin role" in err
    county.cli("export", "--out", str(county.tmp / "x.jsonl"), actor="robin")
    code, _, err = county.cli("seal", actor="mallory", ok=False)
    assert code == 2 and "'mallory' is not in" in err
    # Every event names its actor.
    _, explained, _ = county.cli("claim", "explain", "W-1/progress", "--json", actor="alex")
    assert [h["actor"] for h in explained["history"]] == ["alex", "alex"]


def test_a_refused_command_writes_nothing(county: County):
    fam = worcestershire_family("W-2", 5)
    # The commands run in this process: let the last one's connection close (and SQLite
    # checkpoint its WAL into the file) now, not while the refused command runs.
    gc.collect()
    before = (county.tmp / "ledger.sqlite").read_bytes()
    code, _, _ = county.cli("ingest", "families", str(county.write("families", fam["families"])),
                            actor="pat", ok=False)
    assert code == 2
    assert (county.tmp / "ledger.sqlite").read_bytes() == before


def test_postgres_refuses_update_and_delete_of_events(tmp_path: Path, run):
    from conftest import _pg_admin_url, require_postgres

    require_postgres()
    name = "t_" + uuid.uuid4().hex[:12]
    role = "app_" + uuid.uuid4().hex[:8]
    admin = _pg_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
    db = admin.rsplit("/", 1)[0] + "/" + name
    app_url = db.replace("postgres@", f"{role}@")
    try:
        c = County(tmp_path, run, db=db)
        c.cli("init", "--authority", "Worcestershire", "--app-role", role,
              now="2015-01-01T00:00:00Z", actor="robin")
        # The application role appends and reads…
        app = County(tmp_path, run, db=app_url)
        app.ingest({"families": worcestershire_family("W-3", 5)["families"]},
                   now="2016-01-01T00:00:00Z")
        code, out, _ = app.cli("verify")
        assert code == 0 and "intact" in out
        code, out, _ = app.cli("report", "cohort", "--as-of", "2016-01-01", "--json")
        assert code == 0 and out["families"]["identified"] == 1
        # …but may not rewrite: the grant refuses it.
        with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE claimledger_events SET state = state")
        # And the owner is refused by the trigger, short of a superuser disabling triggers.
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE owner_{role} LOGIN")
            conn.execute(f"ALTER TABLE claimledger_events OWNER TO owner_{role}")
        owner_url = db.replace("postgres@", f"owner_{role}@")
        with psycopg.connect(owner_url) as conn, pytest.raises(psycopg.errors.RaiseException,
                                                              match="append-only"):
            conn.execute("DELETE FROM claimledger_events")
        with psycopg.connect(owner_url) as conn, pytest.raises(psycopg.errors.RaiseException,
                                                              match="append-only"):
            conn.execute("UPDATE claimledger_events SET topic = topic")
        # A family's data key goes only by recorded erasure: the role may not delete it…
        with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM claimledger_family_keys")
        # …nor have the erasure function delete it with no Family.Erased event on record…
        with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.RaiseException,
                                                            match=r"no Family\.Erased event"):
            conn.execute("SELECT claimledger_erase_key('family/W-3', %s)",
                         (stream_uuid("family/W-3"),))
        # …but `erase` records the erasure and destroys the key in one transaction.
        app.cli("erase", "W-3", "--reason", "retention period ended", now="2016-02-01")
        with psycopg.connect(app_url) as conn:
            assert conn.execute("SELECT count(*) FROM claimledger_family_keys").fetchone()[0] == 0
        code, out, _ = app.cli("verify")
        assert code == 0 and "erased: family/W-3" in out
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"DROP ROLE IF EXISTS owner_{role}")
