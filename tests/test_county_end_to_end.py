"""A synthetic county ingests, verifies and evaluates, on SQLite and PostgreSQL.

Every family of a small generated county is loaded through the CLI's ingest, the ledger
verifies, and each family evaluated on its review date reaches the verdict its scenario was
built for.
"""

from __future__ import annotations

from pathlib import Path

from claimledger.synth import KINDS, generate
from county import County


def test_a_synthetic_county_end_to_end(tmp_path: Path, run, db_url: str):
    made = generate(tmp_path / "county", families=24, seed=7)
    c = County(tmp_path, run, db=db_url)
    c.init(made["authority"])
    for kind in KINDS:
        _, r, _ = c.cli("ingest", kind, str(tmp_path / "county" / f"{kind}.csv"), "--json",
                        now="2021-01-01T00:00:00Z", actor="data1")
        assert r["rows"] == made["files"][f"{kind}.csv"]
        assert r["appended"] == r["rows"]
    # Loading the same files again appends nothing.
    _, again, _ = c.cli("ingest", "attendance", str(tmp_path / "county" / "attendance.csv"),
                        "--json", now="2021-01-02T00:00:00Z", actor="data1")
    assert again["appended"] == 0 and again["skipped_duplicates"] == again["rows"]

    code, report, _ = c.cli("verify", "--json", now="2021-01-03T00:00:00Z")
    assert code == 0 and report["ok"] and report["streams"] == 24 + 1

    mismatches = []
    for fam in made["family_scenarios"]:
        d = c.evaluate(fam["family_ref"], fam["review_on"], now="2021-01-03T00:00:00Z")
        want = fam["expect"].get("route")
        got = d["route"]
        if (want in (None, "none") and got is not None) or (want not in (None, "none")
                                                            and got != want):
            mismatches.append((fam["family_ref"], fam["scenario"], want, got, d["reasons"]))
    assert not mismatches
    assert {f["scenario"] for f in made["family_scenarios"]} >= {"progress", "employment"}
