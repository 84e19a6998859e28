"""Personal data protected at rest, erasable, and the trail still verifiable.

Story: the Worcestershire family W-1 is worked with, claimed for and validated. Years later
its retention period ends; the data protection officer lists it for review and the admin
erases it. The auditors' trail (envelopes, digests, checkpoints, the claim's decision)
survives; the family's personal data does not.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from county import County
from test_claim_stories import worcestershire_family

SECRETS = (b"CONFIDENTIAL-NOTE-QX7", b"EVIDENCE-LETTER-ZK9", b"1982-02-02")


def family_with_secrets(ref: str) -> dict:
    fam = worcestershire_family(ref, 5)
    fam["judgements"][0]["note"] = SECRETS[0].decode()
    fam["attestations"][0]["evidence"] = SECRETS[1].decode()
    return fam


@pytest.fixture
def county(tmp_path: Path, run, db_url: str) -> County:
    c = County(tmp_path, run, db=db_url)
    c.init("Worcestershire")
    c.ingest(family_with_secrets("W-1"), now="2016-03-20T10:00:00Z")
    c.cli("claim", "submit", "W-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("claim", "validate", "W-1/progress", now="2016-04-03T09:00:00Z")
    return c


def stored_bytes(db_url: str) -> bytes:
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT state FROM claimledger_events").fetchall()
        keys = conn.execute("SELECT wrapped FROM claimledger_family_keys").fetchall()
    return b"\n".join(bytes(r[0]) for r in rows + keys)


def logical(db_url: str) -> list[tuple]:
    """Every stored event and wrapped key, for "nothing was written" comparisons."""
    if db_url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            return (conn.execute("SELECT rowid, * FROM stored_events ORDER BY rowid").fetchall()
                    + conn.execute("SELECT * FROM claimledger_family_keys").fetchall())
        finally:
            conn.close()
    with psycopg.connect(db_url) as conn:
        return (conn.execute("SELECT * FROM claimledger_events ORDER BY notification_id")
                .fetchall() + conn.execute("SELECT * FROM claimledger_family_keys").fetchall())


def test_no_plaintext_of_a_payload_in_the_database(county: County, db_url: str):
    raw = stored_bytes(db_url)
    assert len(raw) > 1000
    for secret in SECRETS:
        assert secret not in raw, secret
    # The same data is readable through the ledger with the master key.
    d = county.evaluate("W-1", "2016-03-31")
    assert d["claimable"]
    _, explained, _ = county.cli("claim", "explain", "W-1/progress", "--json")
    assert explained["replay_matches_recorded"]


def test_erase_leaves_a_verifiable_trail_and_no_data(county: County):
    _, due, _ = county.cli("retention", "list", "--older-than", "6", "--json",
                           now="2022-06-01T00:00:00Z")
    assert [f["family_ref"] for f in due["families"]] == ["W-1"]
    _, none_due, _ = county.cli("retention", "list", "--older-than", "7", "--json",
                                now="2022-06-01T00:00:00Z")
    assert none_due["families"] == []

    bundle = county.tmp / "W-1.zip"
    county.cli("bundle", "W-1/progress", "--out", str(bundle), now="2022-06-01T12:00:00Z")

    code, out, _ = county.cli("erase", "W-1", "--reason", "retention period ended", "--json",
                              now="2022-06-02T00:00:00Z", actor="admin1")
    assert code == 0 and out["event"].startswith("family/W-1#")

    code, report, _ = county.cli("verify", "--json", now="2022-06-03T00:00:00Z")
    assert code == 0 and report["ok"]
    assert report["erased"] == ["family/W-1"]

    code, _, err = county.cli("evaluate", "W-1", "--as-of", "2016-03-31", ok=False,
                              now="2022-06-03T00:00:00Z")
    assert code == 1 and "erased" in err and "retention period ended" in err

    _, explained, _ = county.cli("claim", "explain", "W-1/progress", "--json",
                                 now="2022-06-03T00:00:00Z")
    assert explained["decision"]["claimable"] and explained["route"] == "progress"
    assert explained["replay_matches_recorded"] is None and "erased" in explained["erased"]

    # The bundle made before the erasure carries its own payloads and still verifies offline.
    code, out, err = county.cli("verify-bundle", str(bundle), "--pubkey",
                                str(county.keys / "signing.pub"), ok=False)
    assert code == 0, err

    code, _, err = county.cli("erase", "W-1", "--reason", "again", ok=False,
                              now="2022-06-04T00:00:00Z")
    assert code == 2 and "already erased" in err


def test_a_wrong_master_key_fails_clearly_and_writes_nothing(
    county: County, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    other = tmp_path / "other-master.key"
    other.write_text(os.urandom(32).hex() + "\n")
    other.chmod(0o600)
    monkeypatch.setenv("CLAIMLEDGER_MASTER_KEY_FILE", str(other))
    before = logical(db_url)
    path = county.write("incidents", [{"member_ref": "W-1-A1", "occurred_on": "2016-05-01",
                                       "kind": "asb_incident", "serious": "no",
                                       "source": "police"}])
    code, _, err = county.cli("ingest", "incidents", str(path), ok=False,
                              now="2016-06-01T00:00:00Z")
    assert code == 2 and "wrong master key" in err
    code, _, err = county.cli("evaluate", "W-1", "--as-of", "2016-03-31", ok=False)
    assert code == 2 and "wrong master key" in err
    assert logical(db_url) == before


def test_a_master_key_readable_by_others_is_refused(county: County):
    (county.keys / "master.key").chmod(0o644)
    code, _, err = county.cli("evaluate", "W-1", "--as-of", "2016-03-31", ok=False)
    assert code == 2 and "mode 0600" in err


def test_the_master_key_is_checked_against_the_ledgers_first_event_alone(
    county: County, db_url: str, monkeypatch: pytest.MonkeyPatch,
):
    """The ledger stream gains a checkpoint per claim; a command opening a family's data
    must not replay it to learn the master key's id, which only the first event records
    (and no later event changes)."""
    from claimledger.application import LedgerApp, Settings, open_app

    app = open_app(Settings(db=db_url, key_dir=county.keys, actor="admin1"))
    assert app.master_key_id() == app.ledger().master_key_id

    def no_replay(self: LedgerApp) -> None:
        raise AssertionError("the ledger stream was replayed")

    monkeypatch.setattr(LedgerApp, "ledger", no_replay)
    fresh = open_app(Settings(db=db_url, key_dir=county.keys, actor="admin1"))
    assert fresh.keystore.available()
    assert fresh.stream_records("family/W-1")[0][1]["payload"]["family_ref"] == "W-1"
