"""The claims side reads its events through an index, at the cost of the claims.

A county whose ledger holds mostly family events lists its claims, draws spot-check samples
and replays a claim without reading the family events: the claim module's events are under
a partial index the database keeps in each event's own transaction.
"""

from __future__ import annotations

from pathlib import Path

from claimledger.application import open_app
from claimledger.audit.claims import claim_ids
from claimledger.store.events import CLAIM_INDEX
from conftest import RawDB
from county import County
from test_merkle_tiles import claimed


def county_with_claims(tmp_path: Path, run, db_url: str) -> County:
    c = claimed(tmp_path, run, db_url)
    c.cli("claim", "submit", "W-7", "--on", "2016-03-31", now="2016-04-02T09:01:00Z")
    return c


def test_the_claims_read_uses_the_index(tmp_path: Path, db_url: str, run, settings_for):
    c = county_with_claims(tmp_path, run, db_url)
    app = open_app(settings_for())
    plan = app.claim_events.plan(["claimledger.domain.claim:Claim.Submitted"])
    assert CLAIM_INDEX in plan, plan
    assert claim_ids(app) == ["W-5/progress", "W-7/progress"]
    _, listed, _ = c.cli("claim", "list", "--json")
    assert [x["claim_id"] for x in listed["claims"]] == ["W-5/progress", "W-7/progress"]


def test_a_ledger_written_before_the_index_lists_the_same_and_gets_it_from_seal(
        tmp_path: Path, db_url: str, run, settings_for):
    c = county_with_claims(tmp_path, run, db_url)
    _, before, _ = c.cli("claim", "list", "--json")
    RawDB(c.db).execute(f"DROP INDEX {CLAIM_INDEX}")
    app = open_app(settings_for())
    assert CLAIM_INDEX not in app.claim_events.plan(["claimledger.domain.claim:Claim.Submitted"])
    _, listed, _ = c.cli("claim", "list", "--json")
    assert listed == before
    c.cli("seal", now="2016-04-03T09:00:00Z", actor="admin1")
    app = open_app(settings_for())
    assert CLAIM_INDEX in app.claim_events.plan(["claimledger.domain.claim:Claim.Submitted"])
    _, listed, _ = c.cli("claim", "list", "--json")
    assert listed == before
