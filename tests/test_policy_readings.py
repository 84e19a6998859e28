"""Verdicts that match the documents, told as stories and checked through the CLI.

Each story is a family from a seed document's own words, then the verdict and the money.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from claimledger.evaluate.decide import decide
from claimledger.policy.evidence import (
    Attachment,
    EmploymentSpell,
    FamilyEvidence,
    Indicator,
    Member,
)
from claimledger.policy.library import find_policy
from claimledger.policy.model import Payment
from county import County, terms
from test_claim_stories_more import LANCASHIRE, family

REPO = Path(__file__).resolve().parents[1]
LANCASHIRE_FILE = f"policies/{LANCASHIRE}.toml"
#: the commit before the rates gained a basis: Lancashire's results rate picked by the claim's date
BEFORE_RATES_HAD_A_BASIS = "4f2c323"


def kelly(ref: str, attached_on: str, signed_off: str) -> dict[str, list[dict[str, Any]]]:
    """Lancashire 002: Kelly, on Employment and Support Allowance when her family is attached,
    signs off and starts work the next day, 30 hours a week, and keeps it; her son's school
    data is not in, so the family is claimable by continuous employment alone."""
    job = (date.fromisoformat(signed_off) + timedelta(days=1)).isoformat()
    data = family(
        ref, "Lancashire", LANCASHIRE, "2012-06-01",
        [("KELLY", "adult", "1984-02-02"), ("LEO", "child", "2004-05-05")],
        {"attached_on": attached_on, "lead_professional": "LP-PRESTON-02",
         "assessment_on": attached_on, "plan_on": attached_on},
        [("KELLY", "worklessness", "out_of_work_benefit", "2012-06-01", "identification"),
         ("LEO", "education", "attendance", "2012-06-01", "identification")])
    data["employment"] = [
        {"member_ref": f"{ref}-KELLY", "kind": "benefit_claim", "benefit": "esa",
         "start_on": "2010-05-10", "end_on": signed_off, "hours_per_week": None,
         "source": "DWP"},
        {"member_ref": f"{ref}-KELLY", "kind": "employment", "benefit": None, "start_on": job,
         "end_on": None, "hours_per_week": 30, "source": "HMRC / employer"}]
    return data


# --- item 5: Lancashire pays £4,000 per family, split by the year of attachment ---------------

def test_lancashire_results_are_paid_at_the_rate_of_the_year_of_attachment(
        tmp_path: Path, run) -> None:
    """Lancashire 002, 4.2: '£4,000 per family', attachment fee upfront and results in
    arrears, 80/20 for 2012/13 and 60/40 for 2013/14. LA-31 was attached on 31 March 2013 (the
    last day of 2012/13) and LA-41 on 1 April 2013 (the first of 2013/14); both are claimed in
    2013/14. LA-31 earns the 2012/13 results payment, £800 (with its £3,200 fee, £4,000), not
    2013/14's £1,600 (£4,800 in all); LA-41 earns £1,600. The amount and the date that picked
    the rate show in evaluate, claim submit, claim explain and the HTML report."""
    c = County(tmp_path, run)
    c.init("Lancashire", now="2012-04-01T00:00:00Z")
    c.ingest(kelly("LA-31", "2013-03-31", "2013-04-30"), now="2013-11-01T09:00:00Z")
    c.ingest(kelly("LA-41", "2013-04-01", "2013-04-30"), now="2013-11-01T09:05:00Z")

    for ref, amount in (("LA-31", "800"), ("LA-41", "1600")):
        d = c.evaluate(ref, "2013-10-31", now="2013-11-01T10:00:00Z")
        assert d["claimable"] and d["route"] == "employment"
        assert d["payment"]["amount"] == amount and d["payment"]["item"] == "results"
        assert d["payment"]["basis"] == "attachment_date"
        _, text, _ = c.cli("evaluate", ref, "--as-of", "2013-10-31", now="2013-11-01T10:00:00Z")
        assert f"amount: £{amount} (results, rate by the attachment date; 4.2" in text
        _, sub, _ = c.cli("claim", "submit", ref, "--on", "2013-10-31", "--json",
                          now="2013-11-01T11:00:00Z")
        assert sub["amount"] == amount
        _, ex, _ = c.cli("claim", "explain", f"{ref}/employment", "--json",
                         now="2013-11-02T09:00:00Z")
        assert ex["amount"] == amount and ex["replay_matches_recorded"]
        html = tmp_path / f"{ref}.html"
        _, text, _ = c.cli("claim", "explain", f"{ref}/employment", "--html", str(html),
                           now="2013-11-02T09:00:00Z")
        assert f"claimed on 2013-10-31, amount {amount}\n" in text
        assert f"amount: £{amount} (results, rate by the attachment date" in text
        page = html.read_text()
        assert f"£{amount} (results, rate by the attachment date" in page
        assert "Amount</th><td>n/a" not in page


def test_a_familys_payments_never_exceed_the_documents_total() -> None:
    """Were the results rate of a year larger than the total less that year's attachment fee
    (a typing slip, say £1,600 beside a £3,200 fee), the payment is capped at the £4,000
    total: £800, with a note naming the total. At exactly the total nothing is capped."""
    policy = find_policy(LANCASHIRE, REPO / "policies")
    D = date.fromisoformat
    ev = FamilyEvidence(
        family_ref="LA-9",
        members=(Member("K", "adult", D("1984-02-02")), Member("L", "child", D("2004-05-05"))),
        indicators=(Indicator("worklessness", "out_of_work_benefit", "K", D("2012-06-01"),
                              "identification", event_id="i1"),
                    Indicator("education", "attendance", "L", D("2012-06-01"),
                              "identification", event_id="i2")),
        attachment=Attachment(D("2012-10-01"), "LP", D("2012-10-01"), D("2012-10-01"), "a1"),
        employment=(EmploymentSpell("K", "benefit_claim", D("2010-01-01"), D("2013-04-30"),
                                    benefit="esa", event_id="b1"),
                    EmploymentSpell("K", "employment", D("2013-05-01"), None, hours_per_week=30,
                                    event_id="j1")))
    fair = decide(policy, ev, D("2013-10-31"))
    assert fair.payment is not None and fair.payment.amount == Decimal("800")
    assert "note" not in fair.to_dict()["payment"]
    slip = tuple(replace(p, amount=Decimal("1600")) if p.item == "results"
                 and p.start == D("2012-04-01") else p for p in policy.payments)
    capped = decide(replace(policy, payments=slip), ev, D("2013-10-31"))
    assert capped.payment is not None and capped.payment.amount == Decimal("800")
    assert capped.to_dict()["payment"]["note"].startswith(
        "capped by the family total of £4000 (4.2")
    assert isinstance(policy.payments[0], Payment)


def test_a_claim_made_under_the_old_lancashire_file_explains_as_it_was_made(
        tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compatibility: a claim replays with the policy bytes registered when it was made. LA-31
    (attached 2012/13) is claimed in 2013/14 under the file as it was before its rates gained a
    basis, which priced results by the claim's date (£1,600). The file is corrected (a new
    version, a new sha256); the old claim still explains identically, with its own sha256 and
    amount, and a new evaluation uses the corrected file (£800)."""
    old = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{BEFORE_RATES_HAD_A_BASIS}:{LANCASHIRE_FILE}"],
        capture_output=True, check=True).stdout
    root = tmp_path / "policies"
    (root / "lancashire").mkdir(parents=True)
    (root / LANCASHIRE_FILE.removeprefix("policies/")).write_bytes(old)
    monkeypatch.setenv("CLAIMLEDGER_POLICIES", str(root))
    c = County(tmp_path, run)
    c.init("Lancashire", now="2012-04-01T00:00:00Z")
    c.ingest(kelly("LA-31", "2013-03-31", "2013-04-30"), now="2013-11-01T09:00:00Z")
    _, sub, _ = c.cli("claim", "submit", "LA-31", "--on", "2013-10-31", "--json",
                      now="2013-11-01T11:00:00Z")
    assert sub["amount"] == "1600"
    _, before, _ = c.cli("claim", "explain", "LA-31/employment", "--json",
                         now="2013-11-02T09:00:00Z")

    (root / LANCASHIRE_FILE.removeprefix("policies/")).write_bytes(
        (REPO / LANCASHIRE_FILE).read_bytes())
    _, after, _ = c.cli("claim", "explain", "LA-31/employment", "--json",
                        now="2013-11-03T09:00:00Z")
    assert after["replay_matches_recorded"] and after["amount"] == "1600"
    assert after["policy_sha256"] == sub["policy_sha256"] == before["policy_sha256"]
    assert after["decision"] == before["decision"]
    now = c.evaluate("LA-31", "2013-10-31", now="2013-11-03T10:00:00Z")
    assert now["policy_sha256"] != sub["policy_sha256"]
    assert now["payment"]["amount"] == "800"


# --- one results claim per family, whichever route shows it ---------------------------------

def _claimed_by_employment_then_progress(c: County) -> tuple[int, Any, str]:
    """Kelly (on ESA at her family's attachment on 1 October 2012) signs off on 30 April 2013
    and works on; Leo's school data is not yet in, so on 31 October 2013 the family is claimed
    by the employment route. A week later the census arrives: Leo had no unauthorised absence
    in the last three terms, so every criterion the family was identified with is met too, and
    a claim by the progress route is asked for."""
    c.init("Lancashire", now="2012-04-01T00:00:00Z")
    c.ingest(kelly("LA-7", "2012-10-01", "2013-04-30"), now="2013-11-01T09:00:00Z")
    _, first, _ = c.cli("claim", "submit", "LA-7", "--on", "2013-10-31", "--json",
                        now="2013-11-01T10:00:00Z")
    assert first["claim_id"] == "LA-7/employment" and first["amount"] == "800"
    c.ingest({"attendance": terms("LA-7-LEO", 4, (2012,))}, now="2013-11-08T09:00:00Z")
    assert c.evaluate("LA-7", "2013-10-31", now="2013-11-08T10:00:00Z")["route"] == "progress"
    return c.cli("claim", "submit", "LA-7", "--on", "2013-10-31", "--json",
                 now="2013-11-08T11:00:00Z", ok=False)


def test_lancashire_pays_one_results_claim_however_many_routes_the_family_meets(
        tmp_path: Path, run) -> None:
    """Lancashire 002, 4.2: '£4,000 per family', one 'Results-based payment (arrears)', and 3.3
    offers progress to work only 'if they do not enter work'. A family claimed by the
    employment route is not claimed again by the progress route: the second submission is
    refused (exit 2, as a second claim by one route is), names the standing claim and writes
    nothing."""
    c = County(tmp_path, run)
    code, out, err = _claimed_by_employment_then_progress(c)
    assert code == 2 and out == ""
    assert "already has an employment claim (LA-7/employment, submitted)" in err
    assert "pays one results claim per family" in err
    _, listed, _ = c.cli("claim", "list", "--json", now="2013-11-08T12:00:00Z")
    assert [r["claim_id"] for r in listed["claims"]] == ["LA-7/employment"]


def test_a_policy_without_one_results_claim_claims_each_route_once(
        tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other way: a file that does not set one_results_claim (the meaning of files written
    before the key) allows one claim per family and route, so the same family's progress claim
    is recorded beside its employment claim."""
    root = tmp_path / "policies"
    (root / "lancashire").mkdir(parents=True)
    text = (REPO / LANCASHIRE_FILE).read_text()
    assert "\none_results_claim = true\n" in text
    (root / LANCASHIRE_FILE.removeprefix("policies/")).write_text(
        text.replace("\none_results_claim = true\n", "\n"))
    monkeypatch.setenv("CLAIMLEDGER_POLICIES", str(root))
    c = County(tmp_path, run)
    code, second, err = _claimed_by_employment_then_progress(c)
    assert code == 0, err
    assert second["claim_id"] == "LA-7/progress"


# --- docs/policy-readings.md stays true to the policies and the cases ---------------------------

def test_the_readings_document_has_a_row_for_every_outcome_and_names_only_real_cases() -> None:
    """Every outcome of every policy has a row (its id in backticks under its policy's file),
    and every case the document cites exists under tests/cases/."""
    from claimledger.policy.library import load_policies

    text = (REPO / "docs" / "policy-readings.md").read_text()
    for policy in load_policies(REPO / "policies"):
        start = text.index(f"`policies/{policy.id}.toml`")
        end = text.find("\n## ", start)
        section = text[start:end if end > 0 else None]
        for o in policy.outcomes:
            assert f"| `{o.id}` (answers " in section, f"{policy.id} {o.id} has no row"
        assert "| `[claim]` |" in section
    import re
    cited = set(re.findall(r"`([a-z]+/[a-z0-9-]+)`", text))
    cases = {f"{p.parent.name}/{p.stem}" for p in (REPO / "tests" / "cases").glob("*/*.toml")}
    policies = {f"{p.parent.name}/{p.stem}" for p in (REPO / "policies").glob("*/*.toml")}
    missing = sorted(c for c in cited - policies if c not in cases)
    assert not missing, f"cited but not a case: {missing}"


def test_every_rule_of_every_policy_has_a_met_and_a_not_met_story_case() -> None:
    """Eligibility, each outcome, the claim rule and the employment route of every policy: at
    least one case under tests/cases/ expects it met and one expects it not met."""
    from claimledger.policy.cases import coverage, load_case
    from claimledger.policy.library import load_policies

    cases = [load_case(f) for f in sorted((REPO / "tests" / "cases").glob("*/*.toml"))]
    missing = [f"{policy.id} {rule}: " + ("no met case" if not met else "no not-met case")
               for policy in load_policies(REPO / "policies")
               for rule, (met, not_met) in coverage(policy, cases).items()
               if not met or not not_met]
    assert not missing, "\n".join(missing)


def test_part_2_of_the_readings_document_is_the_table_of_the_policies_and_cases() -> None:
    """Part 2 is printed from the policies and cases as they stand, so it never names a case
    that does not test the rule, nor misses a policy change."""
    from conftest import load_script

    table = load_script("policy_readings_table")
    text = (REPO / "docs" / "policy-readings.md").read_text(encoding="utf-8")
    assert text[text.index(table.PART2):] == table.part2(), \
        "docs/policy-readings.md Part 2 is stale: run scripts/policy_readings_table.py --write"
