"""Claim windows, told as a Lancashire council's month-end through the command line.

Four Chorley families were attached on 1 October 2012, each with an adult on JSA. Donna in
LA-2 started work on 14 January 2013 and Donna in LA-3 on 18 February: 26 weeks in work make
the employment result, reached in July (LA-2) and in August (LA-3). Donna in LA-1 found work
through the Work Programme (double funding: no result), and Donna in LA-4 only started on
11 March, so her result comes in September. The council runs its August window, sends the
return, spot-checks, reverses what failed, and the September return repays it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from claimledger.ledger.canonical import loads
from conftest import RawDB
from county import County
from ledger_story import reseal
from test_claim_stories_more import donna

AUGUST = ("2013-08-01", "2013-08-31")
SEPTEMBER = ("2013-09-01", "2013-09-30")


def worker(ref: str, started: str, programme: tuple[str, str, str | None] = (
        "esf_provision", "2012-03-05", "2012-08-31")) -> dict[str, list[dict[str, Any]]]:
    """Donna of ``ref`` leaves JSA for 30 hours a week on ``started`` and stays in work."""
    data = donna(ref, "jsa", programme)
    off = datetime.fromisoformat(started).date().toordinal() - 1
    for spell in data["employment"]:
        if spell["kind"] == "benefit_claim":
            spell["end_on"] = datetime.fromordinal(off).date().isoformat()
        elif spell["kind"] == "employment":
            spell["start_on"] = started
    return data


@pytest.fixture
def chorley(tmp_path: Path, run, db_url: str) -> County:
    c = County(tmp_path, run, db=db_url)
    c.init("Lancashire", now="2012-04-01T00:00:00Z")
    data: dict[str, list[dict[str, Any]]] = {}
    for fam in (worker("LA-1", "2013-01-14", ("work_programme", "2012-11-05", None)),
                worker("LA-2", "2013-01-14"), worker("LA-3", "2013-02-18"),
                worker("LA-4", "2013-03-11")):
        for kind, rows in fam.items():
            data.setdefault(kind, []).extend(rows)
    c.ingest(data, now="2013-09-02T09:00:00Z")
    return c


def claim_run(c: County, window: tuple[str, str], *args: str, now: str) -> dict[str, Any]:
    return c.cli("claim", "run", "--window", *window, *args, "--json", now=now)[1]


def checkpoints(c: County) -> int:
    return len(c.cli("checkpoint", "list", "--json")[1]["checkpoints"])


def schedule(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A return read back as a spreadsheet program would: summary, schedule, reversals."""
    wb = openpyxl.load_workbook(path)
    summary = {k: v for k, v in wb["Summary"].iter_rows(values_only=True)}
    tables = []
    for name in ("Schedule", "Reversals"):
        rows = list(wb[name].iter_rows(values_only=True))
        tables.append([dict(zip(rows[0], r, strict=True)) for r in rows[1:]])
    return summary, tables[0], tables[1]


def test_a_window_is_listed_dry_then_claimed_in_one_run_and_a_rerun_claims_nothing(
        chorley: County, raw: RawDB, tmp_path: Path):
    before = raw.rows()
    dry = claim_run(chorley, AUGUST, now="2013-09-03T09:00:00Z")
    assert raw.rows() == before  # a dry run writes nothing
    assert dry["dry_run"] and dry["submitted"] == [] and dry["run_id"] is None
    listed = {c["claim_id"]: c for c in dry["claimable"]}
    assert sorted(listed) == ["LA-2/employment", "LA-3/employment"]
    assert listed["LA-2/employment"]["reached"] == "before_window"  # July: carried forward
    assert listed["LA-3/employment"]["reached"] == "in_window"
    assert {c["amount"] for c in dry["claimable"]} == {"800"}
    near = {n["family_ref"]: n["reasons"] for n in dry["near_misses"]}
    assert sorted(near) == ["LA-1", "LA-4"]
    assert any("double funding" in r for r in near["LA-1"])
    assert dry["totals"] == {"employment": "1600", "total": "1600"}

    cps = checkpoints(chorley)
    out = tmp_path / "august.xlsx"
    sub = claim_run(chorley, AUGUST, "--submit", "--return", str(out), "--audit-rate", "50%",
                    "--seed", "2013", now="2013-09-03T10:00:00Z")
    assert sub["submitted"] == sorted(listed) and sub["run_id"] == "CR-0001"
    assert checkpoints(chorley) == cps + 1  # exactly one checkpoint over the whole run
    added = [loads(r[4])["envelope"]["type"] for r in raw.rows()[len(before):]]
    assert sorted(added) == ["Claim.Submitted", "Claim.Submitted", "ClaimRun.Recorded",
                             "Ledger.Checkpointed", "PolicyVersion.Registered"]
    assert len(sub["audit"]["chosen"]) == 1 and sub["audit"]["population"] == sub["submitted"]

    summary, rows, reversals = schedule(out)
    assert summary["authority"] == "Lancashire" and summary["claim run"] == "CR-0001"
    assert summary["window from"] == datetime(2013, 8, 1)
    assert [r["claim_id"] for r in rows] == sub["submitted"]
    assert all(isinstance(r["payment"], int | float) for r in rows)
    assert all(r["claimed_on"] == datetime(2013, 8, 31) for r in rows)
    assert sum(r["payment"] for r in rows) == summary["total claimed"] == 1600
    assert summary["payments: results"] == 1600 and summary["families: employment"] == 2
    assert sorted(r["internal_audit"] for r in rows) == ["not sampled", "sampled"]
    assert reversals == [] and summary["total to repay"] == 0
    claimed = chorley.cli("claim", "list", "--json")[1]["claims"]
    assert sorted(c["claim_id"] for c in claimed) == sub["submitted"]

    # Running the window again claims nothing new and writes nothing.
    after = raw.rows()
    again = claim_run(chorley, AUGUST, "--submit", now="2013-09-03T11:00:00Z")
    assert again["submitted"] == [] and again["claimable"] == [] and again["run_id"] is None
    assert again["families"]["already_claimed"] == 2 and raw.rows() == after

    _, verified, _ = chorley.cli("claim", "run-verify", "CR-0001", "--json")
    assert verified["ok"] and verified["totals"]["total"] == "1600"
    assert verified["rederived_chosen"] == sub["audit"]["chosen"]


def test_a_failed_spot_check_is_reversed_and_the_next_return_repays_it(
        chorley: County, tmp_path: Path):
    claim_run(chorley, AUGUST, "--submit", now="2013-09-03T10:00:00Z")
    chorley.cli("spotcheck", "sample", "--rate", "100%", "--seed", "1", now="2013-09-10T09:00:00Z",
                actor="dclg-checker")
    # A failed check without --reverse says how to reverse the claim.
    code, out, _ = chorley.cli("spotcheck", "record", "LA-2/employment", "--result", "failed",
                               "--reason", "payslips not on file", now="2013-09-10T10:00:00Z",
                               actor="dclg-checker")
    assert "claimledger claim reverse LA-2/employment --reason CODE" in out
    _, status, _ = chorley.cli("claim", "list", "--json")
    assert {c["claim_id"]: c["status"] for c in status["claims"]}["LA-2/employment"] == \
        "submitted"
    # With --reverse the check and the reversal are recorded together.
    _, rec, _ = chorley.cli("spotcheck", "record", "LA-3/employment", "--result", "failed",
                            "--reason", "employer letter undated", "--reverse",
                            "evidence_missing", "--json", now="2013-09-10T11:00:00Z",
                            actor="dclg-checker")
    assert rec["reversed"]["status"] == "reversed"
    code, _, err = chorley.cli("claim", "reverse", "LA-3/employment", "--reason", "other",
                               ok=False, now="2013-09-10T12:00:00Z")
    assert code == 2 and err.count("\n") == 1 and "is reversed" in err
    code, _, err = chorley.cli("claim", "reverse", "LA-2/employment", "--reason", "lost",
                               ok=False, now="2013-09-10T12:00:00Z")
    assert code == 2 and "evidence_missing" in err

    sept = tmp_path / "september.json"
    r = claim_run(chorley, SEPTEMBER, "--submit", "--return", str(sept),
                  now="2013-10-01T09:00:00Z")
    assert r["submitted"] == ["LA-4/employment"]
    ret = json.loads(sept.read_text())
    assert [x["claim_id"] for x in ret["reversals"]] == ["LA-3/employment"]
    assert ret["reversals"][0]["reason"] == "evidence_missing"
    assert ret["summary"]["total_claimed"] == "800"
    assert ret["summary"]["total_to_repay"] == "800" and ret["summary"]["net"] == "0"
    # The reversal is repaid once: August's return, written again, does not list it.
    aug = tmp_path / "august.csv"
    chorley.cli("claim", "return", "--window", *AUGUST, "--out", str(aug))
    text = aug.read_text()
    assert "reversals to repay,0" in text
    assert "LA-3/employment,LA-3,employment,2013-08-31,results,800,reversed," in text

    _, report, _ = chorley.cli("report", "claims", "--window", "2013-08-01", "2013-09-30",
                               "--json")
    assert report["by_state"] == {"reversed": 1, "submitted": 2}
    assert report["by_route"]["employment"] == {"claims": 3, "amount": "2400",
                                                "standing_amount": "1600"}
    assert [x["claim_id"] for x in report["reversals"]] == ["LA-3/employment"]
    assert report["spot_checks"] == {"checked": 2, "upheld": 0, "failed": 2,
                                     "failed_share": "1.0000"}


def test_a_recorded_run_re_derives_and_a_changed_ledger_does_not(chorley: County, raw: RawDB):
    claim_run(chorley, AUGUST, "--submit", "--audit-rate", "0.5", "--seed", "7",
              now="2013-09-03T10:00:00Z")
    assert chorley.cli("claim", "run-verify", "CR-0001")[0] == 0
    rows = raw.rows()
    pos, state = next((r[0], r[4]) for r in rows
                      if loads(r[4])["envelope"]["stream"] == "claim/LA-3/employment")
    raw.set_state(pos, reseal(state, amount="8000"))
    code, _, err = chorley.cli("claim", "run-verify", "CR-0001", ok=False)
    assert code == 1 and "payment totals" in err and "8800" in err
    raw.set_state(pos, state)
    run_pos, run_state = next((r[0], r[4]) for r in rows
                              if loads(r[4])["envelope"]["type"] == "ClaimRun.Recorded")
    audit = loads(run_state)["payload"]["audit"]
    other = [c for c in audit["population"] if c not in audit["chosen"]]
    raw.set_state(run_pos, reseal(run_state, audit={**audit, "chosen": other}))
    code, _, err = chorley.cli("claim", "run-verify", "CR-0001", ok=False)
    assert code == 1 and "seed 7" in err
    raw.set_state(run_pos, run_state)
    raw.delete(pos)
    code, _, err = chorley.cli("claim", "run-verify", "CR-0001", ok=False)
    assert code == 1 and "not in the ledger: LA-3/employment" in err


def test_a_return_with_a_bad_extension_is_refused_before_anything_is_written(
        chorley: County, raw: RawDB, tmp_path: Path):
    before = raw.rows()
    code, _, err = chorley.cli("claim", "run", "--window", *AUGUST, "--submit", "--return",
                               str(tmp_path / "august.txt"), ok=False,
                               now="2013-09-03T10:00:00Z")
    assert code == 2 and ".xlsx" in err and err.count("\n") == 1
    assert raw.rows() == before and not (tmp_path / "august.txt").exists()
    code, _, err = chorley.cli("claim", "run", "--window", "2013-08-31", "2013-08-01",
                               ok=False)
    assert code == 2 and "before" in err
    code, _, err = chorley.cli("claim", "run", "--window", *AUGUST, "--audit-rate", "10%",
                               ok=False)
    assert code == 2 and "--seed" in err
    assert raw.rows() == before
