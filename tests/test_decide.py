"""The claim decision: eligibility, problems, judgement, essentials, double funding, route.

The Carter family is the running story, under the small fixture plan of
tests/fixtures/policies/engine/small-plan.toml. As first told it is claimable: Jay (11) had a
proven offence and was persistently absent, both at identification; he has not offended in the
last six months and missed 5% of the latest term; the lead worker judged on 15 March 2016 that
progress is made, sustained and support is reducing; the lead professional, assessment, plan
and the plan's alignment are all recorded. Each test changes one thing and reads the verdict.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from claimledger.evaluate.decide import decide, evaluate_outcomes, payment_for
from claimledger.policy.evidence import (
    Attachment,
    AttendanceTerm,
    Attestation,
    EmploymentSpell,
    FamilyEvidence,
    Incident,
    Indicator,
    Judgement,
    Member,
)
from claimledger.policy.load import load_policy_file

D = date.fromisoformat
POLICY = load_policy_file(Path(__file__).parent / "fixtures/policies/engine/small-plan.toml")
AS_OF = D("2016-03-31")

ATTACHMENT = Attachment(D("2015-06-01"), "LW1", D("2015-06-10"), D("2015-06-20"), "family/C#3")
JUDGED = Judgement(D("2016-03-15"), "LW1", "all", True, True, True, event_id="family/C#9")
CARTERS = FamilyEvidence(
    family_ref="C",
    members=(Member("MUM", "adult", D("1985-02-01"), "family/C#1"),
             Member("JAY", "child", D("2004-09-01"), "family/C#2")),
    indicators=(
        Indicator("crime_asb", "youth", "JAY", D("2015-05-01"), "identification",
                  event_id="family/C#4"),
        Indicator("education", "absence", "JAY", D("2015-05-01"), "identification",
                  event_id="family/C#5"),
    ),
    attachment=ATTACHMENT,
    incidents=(Incident("JAY", D("2015-03-01"), "proven_offence", event_id="family/C#6"),),
    attendance=(AttendanceTerm("JAY", D("2016-01-04"), D("2016-03-24"), 100, 5,
                               event_id="family/C#7"),),
    attestations=(Attestation(None, "plan_aligned", D("2015-06-25"), "TM1",
                              event_id="family/C#8"),),
    judgements=(JUDGED,),
)


def carters(**changes: Any) -> FamilyEvidence:
    return replace(CARTERS, **changes)


def plus(field: str, *records: Any) -> FamilyEvidence:
    return replace(CARTERS, **{field: getattr(CARTERS, field) + records})


def test_the_carters_are_claimable_by_progress() -> None:
    d = decide(POLICY, CARTERS, AS_OF)
    assert d.eligible and d.claimable and d.route == "progress"
    assert [(p.problem, p.stage, p.required, p.met) for p in d.problems] == [
        ("crime_asb", "identification", True, True),
        ("education", "identification", True, True)]
    assert d.reasons[0] == "every problem evidenced at identification/engagement is met " \
                           "(crime_asb, education)"
    assert "the lead worker's judgement confirms progress, sustained, intensity_reduced" \
        in d.reasons
    assert d.payment is not None and d.payment.amount == Decimal("800")
    for event in ("family/C#3", "family/C#4", "family/C#5", "family/C#7", "family/C#8",
                  "family/C#9"):
        assert event in d.evidence


def test_the_decision_is_the_json_contract_with_no_floats() -> None:
    data = decide(POLICY, CARTERS, AS_OF, known_at="2016-04-02T10:00:00Z").to_dict()
    for key in ("family_ref", "policy_id", "as_of", "known_at", "eligible", "problems", "route",
                "claimable", "reasons", "evidence"):
        assert key in data
    assert data["as_of"] == "2016-03-31" and data["known_at"] == "2016-04-02T10:00:00Z"
    problem = data["problems"][0]
    assert {"problem", "stage", "met", "outcomes"} <= set(problem)
    assert {"id", "met", "reason", "evidence"} <= set(problem["outcomes"][0])
    assert data["payment"] == {"item": "results", "amount": "800",
                               "section": "Payments: results fee 2015/16"}
    assert orjson.loads(orjson.dumps(data)) == data  # plain JSON types only
    assert isinstance(data["payment"]["amount"], str)


def test_one_problem_at_identification_is_not_eligible() -> None:
    """The absence was only found at the whole-family assessment (engagement)."""
    indicators = (CARTERS.indicators[0],
                  replace(CARTERS.indicators[1], stage="engagement"))
    d = decide(POLICY, carters(indicators=indicators), AS_OF)
    assert not d.eligible and not d.claimable and d.route is None
    assert "only 1 headline problem at identification (crime_asb) (needs 2)" in d.reasons
    assert [p.problem for p in d.problems] == ["crime_asb", "education"]


def test_an_indicator_recorded_after_the_review_date_does_not_count() -> None:
    late = replace(CARTERS.indicators[1], observed_on=D("2016-04-01"))
    d = decide(POLICY, carters(indicators=(CARTERS.indicators[0], late)), AS_OF)
    assert not d.eligible and [p.problem for p in d.problems] == ["crime_asb"]


def test_each_recorded_indicator_must_be_answered_by_a_met_outcome() -> None:
    """Jay also had ASB recorded, and an ASB incident in February: indicator asb is not
    answered, though youth offending is."""
    ev = plus("indicators", Indicator("crime_asb", "asb", "JAY", D("2015-05-01"),
                                      "identification"))
    ev = replace(ev, incidents=(*ev.incidents, Incident("JAY", D("2016-02-01"), "asb_incident")))
    d = decide(POLICY, ev, AS_OF)
    assert not d.claimable
    assert "crime_asb identified at identification is not met: indicator asb not answered: " \
           "outcome crime.2 not met" in d.reasons


def test_a_problem_found_at_engagement_must_be_met_too() -> None:
    """Mum disclosed domestic abuse at the assessment; no call-outs since, but the programme
    is not completed: every domestic abuse outcome is required."""
    ev = plus("indicators", Indicator("domestic_abuse", "disclosed", "MUM", D("2015-06-10"),
                                      "engagement"))
    d = decide(POLICY, ev, AS_OF)
    assert d.eligible and not d.claimable
    assert "domestic_abuse identified at engagement is not met: outcome da.2 not met (all " \
           "are required)" in d.reasons
    done = replace(ev, attestations=(
        *ev.attestations, Attestation("MUM", "da_programme_completed", D("2016-02-01"), "LW1")))
    assert decide(POLICY, done, AS_OF).route == "progress"


def test_any_outcome_problem_says_it_has_no_met_outcome() -> None:
    bad_term = replace(CARTERS.attendance[0], sessions_absent=10)
    d = decide(POLICY, carters(attendance=(bad_term,)), AS_OF)
    assert "education identified at identification has no met outcome" in d.reasons
    assert "threshold < 10%" in d.outcome("edu.1").reason  # type: ignore[union-attr]


def test_no_judgement_no_claim() -> None:
    d = decide(POLICY, carters(judgements=()), AS_OF)
    assert not d.claimable and "no lead-worker judgement recorded" in d.reasons
    later = replace(JUDGED, judged_on=D("2016-04-01"))
    assert "no lead-worker judgement recorded" in decide(POLICY, carters(judgements=(later,)),
                                                          AS_OF).reasons


def test_every_judgement_flag_must_be_yes() -> None:
    d = decide(POLICY, carters(judgements=(replace(JUDGED, intensity_reduced=False),)), AS_OF)
    assert "lead-worker judgement of 2016-03-15 (LW1) for all problems: intensity_reduced = no" \
        in d.reasons


def test_the_latest_judgement_covering_a_problem_decides_it() -> None:
    """A later judgement for crime alone overrides the 'all' judgement for crime only."""
    crime_no = Judgement(D("2016-03-20"), "LW2", "crime_asb", True, False, True)
    d = decide(POLICY, carters(judgements=(JUDGED, crime_no)), AS_OF)
    assert "lead-worker judgement of 2016-03-20 (LW2) for crime_asb: sustained = no" in d.reasons
    all_no = replace(JUDGED, sustained=False)
    crime_yes = replace(crime_no, sustained=True)
    education_yes = Judgement(D("2016-03-21"), "LW2", "education", True, True, True)
    assert decide(POLICY, carters(judgements=(all_no, crime_yes, education_yes)),
                  AS_OF).claimable
    assert not decide(POLICY, carters(judgements=(all_no, crime_yes)), AS_OF).claimable


def test_each_missing_essential_is_named() -> None:
    cases = {
        "essential missing: lead professional": replace(ATTACHMENT, lead_professional=" "),
        "essential missing: whole-family assessment": replace(ATTACHMENT,
                                                              assessment_on=D("2016-04-01")),
        "essential missing: family action plan": replace(ATTACHMENT, plan_on=None),
    }
    for reason, attachment in cases.items():
        d = decide(POLICY, carters(attachment=attachment), AS_OF)
        assert not d.claimable and reason in d.reasons
    d = decide(POLICY, carters(attestations=()), AS_OF)
    assert "essential missing: attestation 'plan_aligned'" in d.reasons


def test_no_attachment_no_claim() -> None:
    d = decide(POLICY, carters(attachment=None), AS_OF)
    assert not d.claimable
    assert d.reasons[0].startswith("no attachment recorded")


WORKLESS = Indicator("worklessness", "out_of_work", "MUM", D("2015-05-01"), "identification")
TRAINING = EmploymentSpell("MUM", "training", D("2015-07-01"), D("2015-12-01"), event_id="t")


def test_progress_to_work_counts_without_double_funding() -> None:
    ev = replace(plus("indicators", WORKLESS), employment=(TRAINING,))
    d = decide(POLICY, ev, AS_OF)
    assert d.route == "progress"
    assert d.outcome("work.2").met  # type: ignore[union-attr]


def test_an_esf_place_during_the_intervention_blocks_the_progress_to_work_result() -> None:
    esf = EmploymentSpell("MUM", "esf_provision", D("2015-05-01"), D("2015-06-01"), event_id="e")
    ev = replace(plus("indicators", WORKLESS), employment=(TRAINING, esf))
    d = decide(POLICY, ev, AS_OF)
    work2 = d.outcome("work.2")
    assert work2 is not None and not work2.met
    assert work2.reason.startswith("double funding: MUM on esf_provision 2015-05-01..2015-06-01 "
                                   "during the intervention (2015-06-01..2016-03-31), so outcome "
                                   "work.2 cannot count")
    assert "e" in work2.evidence
    assert not d.claimable
    ended_before = replace(esf, end_on=D("2015-05-31"))
    ev = replace(ev, employment=(TRAINING, ended_before))
    assert decide(POLICY, ev, AS_OF).outcome("work.2").met  # type: ignore[union-attr]


ESA = EmploymentSpell("MUM", "benefit_claim", D("2014-01-01"), D("2015-12-20"), benefit="esa",
                      event_id="esa")
JOB = EmploymentSpell("MUM", "employment", D("2015-12-21"), None, hours_per_week=20,
                      event_id="job")


def test_continuous_employment_is_a_route_of_its_own() -> None:
    """Jay's absence is still too high, but Mum left ESA for work 14 weeks ago."""
    bad_term = replace(CARTERS.attendance[0], sessions_absent=30)
    ev = carters(attendance=(bad_term,), employment=(ESA, JOB))
    d = decide(POLICY, ev, AS_OF)
    assert d.claimable and d.route == "employment"
    assert d.reasons[0].startswith("employment route met: continuous_employment: met: MUM")
    assert "progress route not met: education identified at identification has no met outcome" \
        in d.reasons
    assert "job" in d.evidence
    assert d.payment is not None and d.payment.item == "results"
    no_plan = decide(POLICY, replace(ev, attachment=replace(ATTACHMENT, plan_on=None)), AS_OF)
    assert not no_plan.claimable and "essential missing: family action plan" in no_plan.reasons


def test_double_funding_also_blocks_the_employment_route() -> None:
    """Lancashire: continuous employment counts only for an adult not on ESF or the Work
    Programme, 'to avoid double-payment'."""
    bad_term = replace(CARTERS.attendance[0], sessions_absent=30)
    esf = EmploymentSpell("MUM", "esf_provision", D("2015-09-01"), None, event_id="esf")
    d = decide(POLICY, carters(attendance=(bad_term,), employment=(ESA, JOB, esf)), AS_OF)
    assert not d.claimable and d.route is None
    assert any(r.startswith("employment route not met: double funding: MUM on esf_provision")
               for r in d.reasons)


def test_a_review_outside_the_plan_period_is_not_claimable() -> None:
    later = replace(JUDGED, judged_on=D("2017-03-15"))
    term = replace(CARTERS.attendance[0], term_start=D("2017-01-04"), term_end=D("2017-03-24"))
    ev = carters(judgements=(later,), attendance=(term,))
    assert decide(POLICY, ev, D("2017-03-31")).claimable
    d = decide(POLICY, ev, D("2017-04-01"))
    assert not d.claimable
    assert "policy engine/small-plan is not in force on 2017-04-01 (effective " \
           "2015-04-01..2017-03-31)" in d.reasons


def test_the_results_payment_follows_its_dated_rate() -> None:
    def rate(route: str, day: str) -> tuple[str, Decimal] | None:
        p = payment_for(POLICY, route, D(day))
        return None if p is None else (p.item, p.amount)

    assert rate("progress", "2016-03-31") == ("results", Decimal("800"))
    assert rate("progress", "2016-04-01") == ("results", Decimal("700.50"))
    assert rate("employment", "2016-04-01") == ("results", Decimal("700.50"))
    assert payment_for(POLICY, "progress", D("2015-03-31")) is None
    assert payment_for(POLICY, None, D("2016-03-31")) is None


def test_every_outcome_can_be_read_even_for_problems_the_family_lacks() -> None:
    results = evaluate_outcomes(POLICY, CARTERS, AS_OF)
    assert set(results) == {o.id for o in POLICY.outcomes}
    assert results["da.1"].met and not results["da.2"].met
