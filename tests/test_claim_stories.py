"""Claims told as stories from the Outcomes Plans, end to end through the CLI.

Each story loads data matches with the transaction time at which the council learned them,
then asks the ledger what an auditor would ask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from county import County, terms

POLICY = "worcestershire/stronger-families-2015-16"


def worcestershire_family(ref: str, absent_pct: int) -> dict[str, list[dict[str, Any]]]:
    """A family with two problems at identification: a child persistently absent and ASB.

    Worcestershire 000, theme 2 row 2: each child under 15% absence over the last three
    terms (10% for claims from April 2016); theme 1 row 3: ASB down by about two thirds
    with no escalation in sanctions (attested by the lead worker).
    """
    child = f"{ref}-C1"
    return {
        "families": [{"family_ref": ref, "authority": "Worcestershire", "policy_id": POLICY,
                      "identified_on": "2015-05-01"}],
        "members": [
            {"family_ref": ref, "member_ref": f"{ref}-A1", "role": "adult",
             "birth_date": "1982-02-02"},
            {"family_ref": ref, "member_ref": child, "role": "child", "birth_date": "2005-03-01"},
        ],
        "indicators": [
            {"family_ref": ref, "member_ref": child, "problem": "education",
             "indicator": "absence", "observed_on": "2015-05-01", "stage": "identification",
             "source": "school census"},
            {"family_ref": ref, "member_ref": f"{ref}-A1", "problem": "crime_asb",
             "indicator": "asb", "observed_on": "2015-05-01", "stage": "identification",
             "source": "police"},
        ],
        "attachments": [{"family_ref": ref, "attached_on": "2015-06-01",
                         "lead_professional": "LW-7", "assessment_on": "2015-06-10",
                         "plan_on": "2015-06-20"}],
        "attendance": terms(child, absent_pct, (2014, 2015)),
        "incidents": [
            {"member_ref": f"{ref}-A1", "occurred_on": d, "kind": "asb_incident",
             "serious": "no", "source": "police"}
            for d in ("2015-01-10", "2015-02-11", "2015-03-12", "2015-04-13", "2015-05-14",
                      "2015-05-20", "2016-01-15")
        ],
        "attestations": [{"family_ref": ref, "member_ref": None,
                          "outcome": "asb_sanctions_not_escalated", "attested_on": "2016-03-10",
                          "practitioner": "LW-7", "evidence": "housing provider letter HP-22"}],
        "judgements": [{"family_ref": ref, "judged_on": "2016-03-15", "practitioner": "LW-7",
                        "problem": "all", "progress": "yes", "sustained": "yes",
                        "intensity_reduced": "yes", "note": "support stepped down"}],
    }


@pytest.fixture
def county(tmp_path: Path, run) -> County:
    c = County(tmp_path, run)
    c.init("Worcestershire")
    return c


def test_twelve_percent_absence_is_claimable_before_april_2016_and_not_after(county: County):
    county.ingest(worcestershire_family("W-1", 12), now="2016-03-20T10:00:00Z")

    before = county.evaluate("W-1", "2016-03-31")
    assert before["eligible"] and before["claimable"] and before["route"] == "progress"
    education = next(p for p in before["problems"] if p["problem"] == "education")
    assert education["met"] and education["stage"] == "identification"

    after = county.evaluate("W-1", "2016-04-01")
    assert after["eligible"] and not after["claimable"] and after["route"] is None
    education = next(p for p in after["problems"] if p["problem"] == "education")
    assert not education["met"]
    failing = [o for o in education["outcomes"] if not o["met"]]
    assert any("12" in o["reason"] and "10" in o["reason"] for o in failing)

    # The claim dated 31 March goes in; a second claim for the same route is refused.
    _, sub, _ = county.cli("claim", "submit", "W-1", "--on", "2016-03-31", "--json",
                           now="2016-04-05T09:00:00Z")
    assert sub["claim_id"] == "W-1/progress" and sub["policy_id"] == POLICY
    assert sub["checkpoint"]["sealed"]
    code, _, err = county.cli("claim", "submit", "W-1", "--on", "2016-03-31", ok=False,
                              now="2016-04-05T09:01:00Z")
    assert code == 2 and "already has a progress claim" in err


def test_a_claim_dated_after_april_2016_is_refused_with_the_reason(county: County):
    county.ingest(worcestershire_family("W-2", 12), now="2016-03-20T10:00:00Z")
    code, _, err = county.cli("claim", "submit", "W-2", "--on", "2016-04-01", ok=False,
                              now="2016-04-05T09:00:00Z")
    assert code == 2
    assert "not claimable on 2016-04-01" in err and "education" in err


def test_missing_judgement_blocks_the_progress_claim(county: County):
    data = worcestershire_family("W-3", 5)
    data["judgements"] = []
    county.ingest(data, now="2016-03-20T10:00:00Z")
    d = county.evaluate("W-3", "2016-03-31")
    assert d["eligible"] and not d["claimable"]
    assert all(p["met"] for p in d["problems"])
    assert any("judgement" in r for r in d["reasons"])


def test_one_problem_only_is_not_eligible(county: County):
    data = worcestershire_family("W-4", 5)
    data["indicators"] = data["indicators"][:1]
    county.ingest(data, now="2016-03-20T10:00:00Z")
    d = county.evaluate("W-4", "2016-03-31")
    assert not d["eligible"] and not d["claimable"]
    assert any("1" in r and "2" in r for r in d["reasons"])


def test_late_attendance_changes_evaluate_known_at_but_not_the_claim_explanation(
    county: County,
):
    """The school census for spring 2016 arrives after the claim was made.

    The ledger first knew a good spring term (5% absence); a corrected return from the school
    in May shows 40%. Evaluating as known before the correction still says claimable; as
    known today it does not. The claim, explained, replays exactly what was known when it
    was submitted, and says what changed since.
    """
    county.ingest(worcestershire_family("W-5", 5), now="2016-03-28T10:00:00Z")
    county.cli("claim", "submit", "W-5", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    late = [t for t in terms("W-5-C1", 40, (2015,)) if t["term_start"] == "2016-01-04"]
    county.ingest({"attendance": late}, now="2016-05-10T09:00:00Z")

    then = county.evaluate("W-5", "2016-03-31", known_at="2016-04-02T09:00:00Z",
                           now="2016-06-01T00:00:00Z")
    today = county.evaluate("W-5", "2016-03-31", now="2016-06-01T00:00:00Z")
    assert then["claimable"] and not today["claimable"]
    assert any("superseded" in n for n in today["selection_notes"])

    _, explained, _ = county.cli("claim", "explain", "W-5/progress", "--json",
                                 now="2016-06-01T00:00:00Z")
    assert explained["replay_matches_recorded"]
    assert explained["decision"]["claimable"]
    assert any("claimable: True at submission, False today" in c
               for c in explained["changed_since"])


def test_claim_explain_uses_the_registered_policy_bytes_after_policies_change(
    county: County, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    county.ingest(worcestershire_family("W-6", 12), now="2016-03-20T10:00:00Z")
    county.cli("claim", "submit", "W-6", "--on", "2016-03-31", now="2016-04-05T09:00:00Z")
    # Someone edits the policy on disk afterwards: the threshold becomes 5%.
    src = Path(__file__).resolve().parents[1] / "policies"
    edited = tmp_path / "policies"
    for f in src.rglob("*.toml"):
        (edited / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        text = f.read_text()
        if f.name == "stronger-families-2015-16.toml":
            text = text.replace("value = 15,", "value = 5,")
        (edited / f.relative_to(src)).write_text(text)
    monkeypatch.setenv("CLAIMLEDGER_POLICIES", str(edited))
    assert not county.evaluate("W-6", "2016-03-31")["claimable"]
    _, explained, _ = county.cli("claim", "explain", "W-6/progress", "--json")
    assert explained["replay_matches_recorded"] and explained["decision"]["claimable"]


def test_claim_lifecycle_validate_reject_and_list(county: County):
    county.ingest(worcestershire_family("W-7", 5), now="2016-03-20T10:00:00Z")
    county.ingest(worcestershire_family("W-8", 5), now="2016-03-21T10:00:00Z")
    county.cli("claim", "submit", "W-7", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    county.cli("claim", "submit", "W-8", "--on", "2016-03-31", now="2016-04-02T09:05:00Z")
    _, v, _ = county.cli("claim", "validate", "W-7/progress", "--note", "evidence complete",
                         "--json", now="2016-04-10T09:00:00Z", actor="auditor-jo")
    assert v["status"] == "validated" and v["by"] == "auditor-jo"
    county.cli("claim", "reject", "W-8/progress", "--reason", "judgement not signed",
               now="2016-04-10T09:10:00Z")
    code, _, err = county.cli("claim", "validate", "W-8/progress", ok=False,
                              now="2016-04-10T09:20:00Z")
    assert code == 2 and "is rejected" in err
    _, listed, _ = county.cli("claim", "list", "--json")
    assert [(c["claim_id"], c["status"]) for c in listed["claims"]] == [
        ("W-7/progress", "validated"), ("W-8/progress", "rejected")]
    code, out, _ = county.cli("verify")
    assert code == 0 and "intact" in out
