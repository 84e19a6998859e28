"""More claims told as stories from the Outcomes Plans, through the CLI.

Southwark's plan makes problems found at engagement count as much as those found at
identification, and lists four essentials; Worcestershire pays on continuous employment alone;
Lancashire refuses the employment result to an adult on the Work Programme (double funding).
Each story loads the data matches when the council learned them, then asks what an auditor
would ask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from county import County

SOUTHWARK = "southwark/outcomes-plan-2018-2020"
WORCESTERSHIRE = "worcestershire/stronger-families-2015-16"
LANCASHIRE = "lancashire/working-together-with-families-phase1"


def family(ref: str, authority: str, policy: str, identified_on: str,
           members: list[tuple[str, str, str]], attachment: dict[str, Any] | None,
           indicators: list[tuple[str, str, str, str, str]]) -> dict[str, list[dict[str, Any]]]:
    """The registration, members (suffix, role, birth date), attachment and indicators
    (member suffix, problem, indicator id, observed on, stage) of one family."""
    data: dict[str, list[dict[str, Any]]] = {
        "families": [{"family_ref": ref, "authority": authority, "policy_id": policy,
                      "identified_on": identified_on}],
        "members": [{"family_ref": ref, "member_ref": f"{ref}-{m}", "role": role,
                     "birth_date": born} for m, role, born in members],
        "indicators": [{"family_ref": ref, "member_ref": f"{ref}-{m}", "problem": problem,
                        "indicator": ind, "observed_on": on, "stage": stage,
                        "source": "case file"} for m, problem, ind, on, stage in indicators],
    }
    if attachment is not None:
        data["attachments"] = [{"family_ref": ref, **attachment}]
    return data


def problem(decision: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in decision["problems"] if p["problem"] == name)


def outcome(decision: dict[str, Any], outcome_id: str) -> dict[str, Any]:
    return next(o for p in decision["problems"] for o in p["outcomes"] if o["id"] == outcome_id)


# --- Southwark: problems found at engagement must be met too ---------------------------------
def adeyemi(ref: str) -> dict[str, list[dict[str, Any]]]:
    """Southwark 001, Introduction: 'the family must meet all of the outcome measures'.

    Identified in May 2018 on education A (Tunde persistently absent) and crime_asb A (his
    father Kola's February 2018 offence); at engagement in June 2018 the lead professional
    finds a domestic incident call out (domestic_abuse D) and Kola's alcohol problem (health C).
    By July 2019 Tunde attends 96% over three terms and no adult has offended since.
    """
    data = family(
        ref, "Southwark", SOUTHWARK, "2018-05-08",
        [("A1", "adult", "1986-02-11"), ("A2", "adult", "1983-09-30"),
         ("C1", "child", "2007-11-02")],
        {"attached_on": "2018-06-04", "lead_professional": "LP-Okafor",
         "assessment_on": "2018-06-18", "plan_on": "2018-07-02"},
        [("C1", "education", "A", "2018-05-08", "identification"),
         ("A2", "crime_asb", "A", "2018-05-08", "identification"),
         ("A1", "domestic_abuse", "D", "2018-06-20", "engagement"),
         ("A2", "health", "C", "2018-06-20", "engagement")])
    data["attendance"] = [
        {"member_ref": f"{ref}-C1", "term_start": s, "term_end": e, "sessions_possible": n,
         "sessions_absent": a, "unauthorised_absent": 0, "fixed_term_exclusions": 0,
         "permanent_exclusion": "no", "setting": "school", "source": "school census"}
        for s, e, n, a in (("2018-09-03", "2018-12-19", 140, 5),
                           ("2019-01-07", "2019-04-05", 120, 4),
                           ("2019-04-23", "2019-07-23", 120, 6))]
    data["incidents"] = [
        {"member_ref": f"{ref}-A2", "occurred_on": "2018-02-14", "kind": "proven_offence",
         "serious": "no", "source": "PNC"},
        {"member_ref": f"{ref}-A1", "occurred_on": "2018-05-27", "kind": "domestic_callout",
         "serious": "no", "source": "Met Police"}]
    data["attestations"] = [
        {"family_ref": ref, "member_ref": None, "outcome": "family_plan_aligned_with_outcomes_plan",
         "attested_on": "2018-07-02", "practitioner": "LP-Okafor",
         "evidence": "Mosaic family plan review"}]
    return data


@pytest.fixture
def southwark(tmp_path: Path, run) -> County:
    c = County(tmp_path, run)
    c.init("Southwark", now="2018-01-01T00:00:00Z")
    return c


def test_southwark_engagement_problems_block_the_claim_until_they_are_met(southwark: County):
    southwark.ingest(adeyemi("SW-1"), now="2019-08-01T09:00:00Z")

    july = southwark.evaluate("SW-1", "2019-07-31", now="2019-08-01T10:00:00Z")
    assert july["eligible"] and not july["claimable"] and july["route"] is None
    assert problem(july, "education")["met"] and problem(july, "crime_asb")["met"]
    assert problem(july, "domestic_abuse")["stage"] == "engagement"
    assert not problem(july, "domestic_abuse")["met"] and not problem(july, "health")["met"]
    assert any("domestic_abuse" in r for r in july["reasons"])
    assert any("health" in r for r in july["reasons"])
    code, _, err = southwark.cli("claim", "submit", "SW-1", "--on", "2019-07-31", ok=False,
                                 now="2019-08-01T11:00:00Z")
    assert code == 2 and "not claimable" in err and "domestic_abuse" in err

    # Mrs Adeyemi completes the Freedom Programme (5.3) and Kola his alcohol treatment (6.3).
    southwark.ingest({"attestations": [
        {"family_ref": "SW-1", "member_ref": "SW-1-A1",
         "outcome": "victim_programme_or_direct_work_completed", "attested_on": "2019-08-15",
         "practitioner": "DV-Advocate-Reid", "evidence": "Freedom Programme certificate"},
        {"family_ref": "SW-1", "member_ref": "SW-1-A2",
         "outcome": "substance_treatment_programme_completed", "attested_on": "2019-09-02",
         "practitioner": "Substance-Misuse-Worker-Patel",
         "evidence": "Treatment Outcomes Profile at discharge"}]}, now="2019-09-10T09:00:00Z")

    # The attestations are dated after July, so the July answer stands; by September all four
    # problems are met and the family is claimable by the progress route.
    assert not southwark.evaluate("SW-1", "2019-07-31", now="2019-09-10T10:00:00Z")["claimable"]
    sept = southwark.evaluate("SW-1", "2019-09-30", now="2019-10-01T09:00:00Z")
    assert sept["claimable"] and sept["route"] == "progress"
    assert all(p["met"] for p in sept["problems"])
    assert outcome(sept, "5.3")["met"] and outcome(sept, "6.3")["met"]
    _, sub, _ = southwark.cli("claim", "submit", "SW-1", "--on", "2019-09-30", "--json",
                              now="2019-10-01T09:30:00Z")
    assert sub["claim_id"] == "SW-1/progress" and sub["policy_id"] == SOUTHWARK


# --- Southwark: the four essentials ---------------------------------------------------------
def mensah(ref: str, attachment: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Southwark 001, Introduction, essentials 1-4.

    Kwame has a January 2018 conviction (crime_asb A) and a community protection notice
    (crime_asb B); the family is not registered with a GP (health H). Kwame has not offended
    since; one noise report in April 2019; the key worker confirms the reduced risk (1.3) and
    the health visitor the GP registration (6.5); the team manager signs off that the plan is
    aligned with the Outcomes Plan.
    """
    data = family(
        ref, "Southwark", SOUTHWARK, "2018-05-21",
        [("A1", "adult", "1988-04-02"), ("A2", "adult", "1990-01-15"),
         ("C1", "child", "2012-09-09")],
        attachment,
        [("A1", "crime_asb", "A", "2018-05-21", "identification"),
         ("A1", "crime_asb", "B", "2018-05-21", "identification"),
         ("A2", "health", "H", "2018-05-21", "identification")])
    data["incidents"] = [
        {"member_ref": f"{ref}-A1", "occurred_on": on, "kind": kind, "serious": "no",
         "source": "Southwark ASB unit"}
        for on, kind in (("2018-01-19", "proven_offence"), ("2018-03-22", "asb_intervention"),
                         ("2019-04-12", "asb_incident"))]
    data["attestations"] = [
        {"family_ref": ref, "member_ref": f"{ref}-A2",
         "outcome": "health_service_engagement_improved", "attested_on": "2019-02-11",
         "practitioner": "Health-Visitor-Lowe",
         "evidence": "GP registration confirmed"},
        {"family_ref": ref, "member_ref": None, "outcome": "family_plan_aligned_with_outcomes_plan",
         "attested_on": "2018-07-09", "practitioner": "Team-Manager-Shah",
         "evidence": "Mosaic plan sign-off"},
        {"family_ref": ref, "member_ref": f"{ref}-A1", "outcome": "offending_referral_risk_reduced",
         "attested_on": "2019-05-20", "practitioner": "LP-Hughes",
         "evidence": "Key worker statement after probation review"}]
    return data


def test_southwark_missing_essentials_are_named_and_a_late_assessment_record_cures_one(
    southwark: County,
):
    no_assessment = {"attached_on": "2018-06-11", "lead_professional": "LP-Hughes",
                     "assessment_on": None, "plan_on": "2018-07-09"}
    no_plan = {"attached_on": "2018-06-11", "lead_professional": "LP-Hughes",
               "assessment_on": "2018-06-25", "plan_on": None}
    southwark.ingest(mensah("SM-1", no_assessment), now="2019-07-01T09:00:00Z")
    southwark.ingest(mensah("SM-2", no_plan), now="2019-07-01T09:05:00Z")

    for ref, essential in (("SM-1", "whole-family assessment"), ("SM-2", "action plan")):
        d = southwark.evaluate(ref, "2019-06-28", now="2019-07-01T10:00:00Z")
        assert d["eligible"] and not d["claimable"], ref
        assert all(p["met"] for p in d["problems"]), ref  # the outcomes are not the problem
        assert any(essential in r for r in d["reasons"]), (ref, d["reasons"])
        code, _, err = southwark.cli("claim", "submit", ref, "--on", "2019-06-28", ok=False,
                                     now="2019-07-01T11:00:00Z")
        assert code == 2 and essential in err

    # The assessment had been done on 25 June 2018 and is re-supplied: the corrected
    # attachment record names it, and SM-1 becomes claimable; SM-2 still has no plan.
    southwark.ingest({"attachments": [{"family_ref": "SM-1", **no_assessment,
                                       "assessment_on": "2018-06-25"}]},
                     now="2019-07-02T09:00:00Z")
    cured = southwark.evaluate("SM-1", "2019-06-28", now="2019-07-02T10:00:00Z")
    assert cured["claimable"] and cured["route"] == "progress"
    assert any("superseded" in n for n in cured["selection_notes"])
    before = southwark.evaluate("SM-1", "2019-06-28", known_at="2019-07-01T12:00:00Z",
                                now="2019-07-02T10:00:00Z")
    assert not before["claimable"]
    assert not southwark.evaluate("SM-2", "2019-06-28", now="2019-07-02T10:00:00Z")["claimable"]


# --- Worcestershire: the employment route -----------------------------------------------------
def test_worcestershire_jsa_claimant_in_work_26_of_30_weeks_is_claimed_by_employment(
    tmp_path: Path, run,
):
    """Worcestershire 000, theme 4 row 1: 'JSA claimants 26 of last 30 weeks in employment'.

    Dean was on Jobseeker's Allowance when the family was attached in June 2015; his son Ryan
    was persistently absent. Dean took a warehouse job on 3 December 2015, was laid off on
    13 January 2016 and started again on 28 January. At the end of May 2016 he has fewer than
    26 weeks in work within the last 30; by 30 June 2016 he has 28 (never 26 in a row), and the
    family is claimed by continuous employment alone: no progress judgement, and Ryan's
    attendance not yet evidenced.
    """
    c = County(tmp_path, run)
    c.init("Worcestershire")
    data = family(
        "WE-1", "Worcestershire", WORCESTERSHIRE, "2015-05-12",
        [("DEAN", "adult", "1984-05-23"), ("RYAN", "child", "2006-09-12")],
        {"attached_on": "2015-06-01", "lead_professional": "LW-10",
         "assessment_on": "2015-06-16", "plan_on": "2015-06-30"},
        [("DEAN", "worklessness", "out_of_work_benefit", "2015-05-12", "identification"),
         ("RYAN", "education", "absence", "2015-05-12", "identification")])
    data["employment"] = [
        {"member_ref": "WE-1-DEAN", "kind": kind, "benefit": benefit, "start_on": start,
         "end_on": end, "hours_per_week": hours, "source": "DWP"}
        for kind, benefit, start, end, hours in (
            ("benefit_claim", "jsa", "2015-01-12", "2015-12-02", None),
            ("employment", None, "2015-12-03", "2016-01-13", 37),
            ("employment", None, "2016-01-28", None, 30))]
    c.ingest(data, now="2016-07-04T09:00:00Z")

    may = c.evaluate("WE-1", "2016-05-31", now="2016-07-04T10:00:00Z")
    assert may["eligible"] and not may["claimable"] and may["route"] is None
    assert not outcome(may, "4.1")["met"]

    june = c.evaluate("WE-1", "2016-06-30", now="2016-07-04T10:00:00Z")
    assert june["claimable"] and june["route"] == "employment"
    assert outcome(june, "4.1")["met"]
    assert not problem(june, "education")["met"]  # the employment route does not need it
    _, sub, _ = c.cli("claim", "submit", "WE-1", "--on", "2016-06-30", "--json",
                      now="2016-07-05T09:00:00Z")
    assert sub["claim_id"] == "WE-1/employment" and sub["route"] == "employment"
    _, explained, _ = c.cli("claim", "explain", "WE-1/employment", "--json",
                            now="2016-07-06T09:00:00Z")
    assert explained["replay_matches_recorded"] and explained["decision"]["route"] == "employment"


# --- Lancashire: double funding ---------------------------------------------------------------
def donna(ref: str, benefit: str, programme: tuple[str, str, str | None],
          ) -> dict[str, list[dict[str, Any]]]:
    """Lancashire 002, 3.3 bullets 4 and 5: a Chorley family attached on 1 October 2012.

    Donna, on an out-of-work benefit, finds work on 14 January 2013 and holds it, 30 hours a
    week, to the review on 30 August 2013; her son Kai's school data is not in. ``programme``
    is her DWP programme spell (kind, start, end).
    """
    data = family(
        ref, "Lancashire", LANCASHIRE, "2012-08-01",
        [("DONNA", "adult", "1982-04-03"), ("KAI", "child", "2003-10-19")],
        {"attached_on": "2012-10-01", "lead_professional": "LP-CHORLEY-05",
         "assessment_on": "2012-10-12", "plan_on": "2012-10-26"},
        [("DONNA", "worklessness", "out_of_work_benefit", "2012-08-01", "identification"),
         ("KAI", "education", "attendance", "2012-07-20", "identification")])
    kind, start, end = programme
    data["employment"] = [
        {"member_ref": f"{ref}-DONNA", "kind": "benefit_claim", "benefit": benefit,
         "start_on": "2010-05-10", "end_on": "2013-01-13", "hours_per_week": None,
         "source": "DWP"},
        {"member_ref": f"{ref}-DONNA", "kind": kind, "benefit": None, "start_on": start,
         "end_on": end, "hours_per_week": None, "source": "DWP provider"},
        {"member_ref": f"{ref}-DONNA", "kind": "employment", "benefit": None,
         "start_on": "2013-01-14", "end_on": None, "hours_per_week": 30,
         "source": "HMRC / employer"}]
    return data


def test_lancashire_work_programme_during_the_intervention_bars_the_employment_result(
    tmp_path: Path, run,
):
    """The result is for an adult who 'is not on the ESF Provision or Work Programme to avoid
    double-payment' (the policy lists that exclusion against outcome 3.3.4 through
    progress_to_work_outcomes). Donna in LA-1 volunteered for the Work Programme on 4 March 2013,
    inside the 6 months to the review, and stays on it in work: the employment result is
    excluded, with the reason, though her Work Programme place counts as progress to work
    (3.3.5, 'in the last 6 months'). Donna in LA-2 left the
    ESF provision a month before attachment: no double funding, the employment result counts.
    """
    c = County(tmp_path, run)
    c.init("Lancashire", now="2012-04-01T00:00:00Z")
    c.ingest(donna("LA-1", "esa", ("work_programme", "2013-03-04", None)),
             now="2013-09-02T09:00:00Z")
    c.ingest(donna("LA-2", "jsa", ("esf_provision", "2012-03-05", "2012-08-31")),
             now="2013-09-02T09:05:00Z")

    barred = c.evaluate("LA-1", "2013-08-30", now="2013-09-02T10:00:00Z")
    assert barred["eligible"] and not barred["claimable"] and barred["route"] is None
    employment = outcome(barred, "3.3.4")
    assert not employment["met"] and "double funding" in employment["reason"]
    assert outcome(barred, "3.3.5")["met"]
    assert any("double funding" in r and "work_programme" in r for r in barred["reasons"])
    code, _, err = c.cli("claim", "submit", "LA-1", "--on", "2013-08-30", ok=False,
                         now="2013-09-02T11:00:00Z")
    assert code == 2 and "double funding" in err

    counts = c.evaluate("LA-2", "2013-08-30", now="2013-09-02T10:00:00Z")
    assert counts["claimable"] and counts["route"] == "employment"
    assert outcome(counts, "3.3.4")["met"] and not outcome(counts, "3.3.5")["met"]
    _, sub, _ = c.cli("claim", "submit", "LA-2", "--on", "2013-08-30", "--json",
                      now="2013-09-02T11:05:00Z")
    assert sub["claim_id"] == "LA-2/employment"
