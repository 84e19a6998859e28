"""The nine measure kinds: each met and not met, at the boundaries the documents draw.

Each test is a small family story and the verdict a policy's measure gives it. Windows are
half-open, (as_of - N months, as_of], so a day exactly N months back is outside.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimledger.errors import EvaluationError
from claimledger.policy.dates import days_covered, months_before
from claimledger.policy.evidence import (
    Attachment,
    AttendanceTerm,
    Attestation,
    CareStatus,
    EmploymentSpell,
    FamilyEvidence,
    Incident,
    Member,
    Score,
)
from claimledger.policy.measures import KINDS, MeasureResult, evaluate_measure
from claimledger.policy.model import (
    AllOf,
    AnyOf,
    AtLeast,
    Dated,
    DatedValue,
    EmploymentRule,
    Leaf,
)

D = date.fromisoformat
ATTACHED = D("2015-06-01")


def leaf(kind: str, **params: Any) -> Leaf:
    return Leaf(kind, tuple(params.items()))


def family(**records: Any) -> FamilyEvidence:
    records.setdefault("attachment", Attachment(ATTACHED, "LW1", ATTACHED, ATTACHED, "att#1"))
    return FamilyEvidence(family_ref="F1", **records)


def run(measure: Leaf | AllOf | AnyOf, ev: FamilyEvidence, as_of: str) -> MeasureResult:
    return evaluate_measure(measure, ev, D(as_of))


def test_every_documented_kind_is_registered() -> None:
    assert set(KINDS) == {"attendance", "exclusions", "incident_reduction", "no_incidents",
                          "continuous_employment", "progress_to_work", "score_change",
                          "status_step_down", "attestation"}


# --- attendance --------------------------------------------------------------------------------

BEN = Member("BEN", "child", D("2005-08-19"))


def terms(ref: str, *absent: int, possible: int = 100, setting: str = "school",
          unauthorised: int | None = None) -> tuple[AttendanceTerm, ...]:
    """Consecutive terms ending 2015-07-20, 2015-12-18, 2016-03-24 (then onwards)."""
    ends = ["2015-07-20", "2015-12-18", "2016-03-24", "2016-07-20"]
    starts = ["2015-04-13", "2015-09-03", "2016-01-04", "2016-04-11"]
    return tuple(AttendanceTerm(ref, D(starts[i]), D(ends[i]), possible, a,
                                unauthorised_absent=a if unauthorised is None else unauthorised,
                                setting=setting, event_id=f"term#{i}")
                 for i, a in enumerate(absent))


def test_absence_of_12_percent_passes_a_threshold_below_15() -> None:
    ev = family(members=(BEN,), attendance=terms("BEN", 12, 12, 12))
    r = run(leaf("attendance", terms=3, absence_below_pct=15), ev, "2016-03-31")
    assert r.met
    assert "BEN absence 12.00% (36/300 sessions) over 2015-04-13..2016-03-24" in r.reason
    assert "threshold < 15%" in r.reason
    assert r.evidence == ("term#0", "term#1", "term#2")


def test_absence_of_exactly_15_percent_is_not_below_15() -> None:
    ev = family(members=(BEN,), attendance=terms("BEN", 15, 15, 15))
    assert not run(leaf("attendance", terms=3, absence_below_pct=15), ev, "2016-03-31").met


def test_attendance_of_exactly_90_percent_is_at_least_90() -> None:
    ev = family(members=(BEN,), attendance=terms("BEN", 10, 10, 10))
    r = run(leaf("attendance", terms=3, attendance_at_least_pct=90), ev, "2016-03-31")
    assert r.met and "attendance 90.00% (270/300 sessions)" in r.reason
    ev = family(members=(BEN,), attendance=terms("BEN", 10, 10, 11))
    assert not run(leaf("attendance", terms=3, attendance_at_least_pct=90), ev,
                   "2016-03-31").met


def test_a_dated_threshold_switches_on_exactly_its_from_date() -> None:
    """Worcestershire: 15% absence, 10% for PbR claims from April 2016; a child at 12%."""
    threshold = Dated((DatedValue(D("2015-04-01"), 15), DatedValue(D("2016-04-01"), 10)),
                      "absence_below_pct")
    measure = leaf("attendance", terms=3, absence_below_pct=threshold)
    ev = family(members=(BEN,), attendance=terms("BEN", 12, 12, 12))
    before = run(measure, ev, "2016-03-31")
    on = run(measure, ev, "2016-04-01")
    assert before.met and "absence_below_pct = 15 in force from 2015-04-01" in before.reason
    assert not on.met and "absence_below_pct = 10 in force from 2016-04-01" in on.reason
    with pytest.raises(EvaluationError, match="absence_below_pct: no value in force"):
        run(measure, ev, "2015-03-31")


def test_too_few_terms_on_record_fail_rather_than_pass() -> None:
    ev = family(members=(BEN,), attendance=terms("BEN", 0, 0))
    r = run(leaf("attendance", terms=3, absence_below_pct=15), ev, "2016-03-31")
    assert not r.met and "BEN has 2 term(s) recorded ending by 2016-03-31 (needs 3)" in r.reason


def test_only_the_latest_terms_ending_by_the_review_count() -> None:
    """A bad first term drops out once a fourth term has ended; a term ending later is unseen."""
    ev = family(members=(BEN,), attendance=terms("BEN", 50, 5, 5, 5))
    measure = leaf("attendance", terms=3, absence_below_pct=15)
    assert not run(measure, ev, "2016-07-19").met
    assert run(measure, ev, "2016-07-20").met


def test_one_child_failing_fails_the_family_and_is_named_first() -> None:
    amy = Member("AMY", "child", D("2007-01-01"))
    ev = family(members=(BEN, amy), attendance=terms("BEN", 5, 5, 5) + terms("AMY", 20, 20, 20))
    r = run(leaf("attendance", terms=3, absence_below_pct=15), ev, "2016-03-31")
    assert not r.met and r.reason.index("AMY") < r.reason.index("BEN")


def test_only_school_age_children_are_measured() -> None:
    toddler = Member("TOT", "child", D("2012-01-01"))
    ev = family(members=(BEN, toddler), attendance=terms("BEN", 5, 5, 5))
    assert run(leaf("attendance", terms=3, absence_below_pct=15), ev, "2016-03-31").met
    r = run(leaf("attendance", terms=3, absence_below_pct=15),
            family(members=(toddler,)), "2016-03-31")
    assert not r.met and "no school-age child" in r.reason


def test_a_term_out_of_any_allowed_setting_fails() -> None:
    ev = family(members=(BEN,), attendance=terms("BEN", 0, 0, 0, setting="none"))
    r = run(leaf("attendance", terms=3, absence_below_pct=15,
                 settings=("school", "pru", "alternative")), ev, "2016-03-31")
    assert not r.met and "setting 'none'" in r.reason


def test_unauthorised_only_counts_unauthorised_sessions() -> None:
    ev = family(members=(BEN,), attendance=terms("BEN", 20, 20, 20, unauthorised=4))
    measure = leaf("attendance", terms=3, absence_below_pct=15, unauthorised_only=True)
    r = run(measure, ev, "2016-03-31")
    assert r.met and "unauthorised absence 4.00% (12/300 sessions)" in r.reason


def test_attendance_improvement_is_measured_against_the_terms_before_attachment() -> None:
    """Southwark 2.6: attendance up by at least 40 points from engagement over 3 terms."""
    before = (AttendanceTerm("BEN", D("2014-04-14"), D("2014-07-18"), 100, 70),
              AttendanceTerm("BEN", D("2014-09-03"), D("2014-12-19"), 100, 70),
              AttendanceTerm("BEN", D("2015-01-05"), D("2015-03-27"), 100, 70))
    after = terms("BEN", 30, 30, 30)
    measure = leaf("attendance", terms=3, attendance_improvement_points=40)
    r = run(measure, family(members=(BEN,), attendance=before + after), "2016-03-31")
    assert r.met and "30.00% over 2014-04-14..2015-03-27 -> 70.00%" in r.reason
    after = terms("BEN", 30, 30, 31)
    assert not run(measure, family(members=(BEN,), attendance=before + after), "2016-03-31").met


# --- exclusions --------------------------------------------------------------------------------


def excluded(*fixed: int, permanent_in: int | None = None) -> tuple[AttendanceTerm, ...]:
    rows = terms("BEN", 0, 0, 0)
    return tuple(AttendanceTerm(t.member_ref, t.term_start, t.term_end, 100, 0,
                                fixed_term_exclusions=f, permanent_exclusion=i == permanent_in)
                 for i, (t, f) in enumerate(zip(rows, fixed, strict=True)))


def test_two_fixed_term_exclusions_are_fewer_than_three_but_three_are_not() -> None:
    measure = leaf("exclusions", terms=3, fixed_term_below=3)
    r = run(measure, family(members=(BEN,), attendance=excluded(1, 0, 1)), "2016-03-31")
    assert r.met and "2 fixed-term exclusion(s) (needs fewer than 3)" in r.reason
    r = run(measure, family(members=(BEN,), attendance=excluded(1, 1, 1)), "2016-03-31")
    assert not r.met and "3 fixed-term exclusion(s)" in r.reason


def test_a_permanent_exclusion_fails_unless_the_policy_tests_fixed_term_only() -> None:
    ev = family(members=(BEN,), attendance=excluded(0, 0, 0, permanent_in=1))
    r = run(leaf("exclusions", terms=3), ev, "2016-03-31")
    assert not r.met and "permanently excluded in term 2015-09-03..2015-12-18" in r.reason
    assert run(leaf("exclusions", terms=3, fixed_term_below=3, no_permanent=False), ev,
               "2016-03-31").met


# --- incident_reduction ------------------------------------------------------------------------

LIAM = Member("LIAM", "child", D("2000-05-01"))  # 15 on the review date: a young person
DAD = Member("DAD", "adult", D("1975-01-01"))


def offences(ref: str, *days: str, kind: str = "proven_offence",
             serious: bool = False) -> tuple[Incident, ...]:
    return tuple(Incident(ref, D(d), kind, serious, event_id=f"{ref}-{kind}-{d}") for d in days)


REDUCE_A_THIRD = dict(kinds=("proven_offence",), per="young_person", reduction_pct=33,
                      window_months=6, baseline_months=12, no_serious=True)
BASELINE3 = ("2014-08-01", "2014-12-01", "2015-05-01")  # in (2014-06-01, 2015-06-01]


def test_three_offences_down_to_two_is_a_third_fewer() -> None:
    ev = family(members=(LIAM,), incidents=offences("LIAM", *BASELINE3, "2016-01-10",
                                                    "2016-02-10"))
    r = run(leaf("incident_reduction", **REDUCE_A_THIRD), ev, "2016-03-31")
    assert r.met
    assert "proven_offence in 2015-10-01..2016-03-31 vs baseline 2014-06-02..2015-06-01" \
        in r.reason
    assert "LIAM: 3 -> 2, down 33.33% (needs at least 33%)" in r.reason
    assert "no serious incident" in r.reason
    assert len(r.evidence) == 5


def test_four_down_to_three_is_only_a_quarter() -> None:
    ev = family(members=(LIAM,), incidents=offences("LIAM", "2014-07-01", *BASELINE3,
                                                    "2015-11-01", "2016-01-10", "2016-02-10"))
    r = run(leaf("incident_reduction", **REDUCE_A_THIRD), ev, "2016-03-31")
    assert not r.met and "LIAM: 4 -> 3, down 25.00%" in r.reason


def test_a_decimal_percentage_is_compared_exactly() -> None:
    """33.33...% fewer passes 33.3 but not 33.34."""
    ev = family(members=(LIAM,), incidents=offences("LIAM", *BASELINE3, "2016-01-10",
                                                    "2016-02-10"))
    from decimal import Decimal
    ok = dict(REDUCE_A_THIRD, reduction_pct=Decimal("33.3"))
    too_much = dict(REDUCE_A_THIRD, reduction_pct=Decimal("33.34"))
    assert run(leaf("incident_reduction", **ok), ev, "2016-03-31").met
    assert not run(leaf("incident_reduction", **too_much), ev, "2016-03-31").met


def test_a_serious_offence_in_the_window_fails_however_few() -> None:
    ev = family(members=(LIAM,), incidents=offences("LIAM", *BASELINE3)
                + offences("LIAM", "2016-03-01", serious=True))
    r = run(leaf("incident_reduction", **REDUCE_A_THIRD), ev, "2016-03-31")
    assert not r.met and "serious proven_offence by LIAM on 2016-03-01" in r.reason


def test_the_window_excludes_the_day_exactly_n_months_back() -> None:
    """Six months before 2016-03-31 is 2015-09-30: an offence that day is outside the window."""
    measure = leaf("incident_reduction", **dict(REDUCE_A_THIRD, reduction_pct=100))
    outside = family(members=(LIAM,), incidents=offences("LIAM", *BASELINE3, "2015-09-30"))
    inside = family(members=(LIAM,), incidents=offences("LIAM", *BASELINE3, "2015-10-01"))
    assert run(measure, outside, "2016-03-31").met
    assert not run(measure, inside, "2016-03-31").met


def test_a_young_person_who_starts_offending_is_not_a_reduction() -> None:
    sis = Member("SIS", "child", D("2002-01-01"))
    ev = family(members=(LIAM, sis), incidents=offences("LIAM", *BASELINE3)
                + offences("SIS", "2016-02-01"))
    r = run(leaf("incident_reduction", **REDUCE_A_THIRD), ev, "2016-03-31")
    assert not r.met and "SIS: 0 -> 1, an increase" in r.reason


def test_without_baseline_incidents_there_is_nothing_to_reduce() -> None:
    ev = family(members=(LIAM,), incidents=offences("DAD", *BASELINE3))
    r = run(leaf("incident_reduction", **REDUCE_A_THIRD), ev, "2016-03-31")
    assert not r.met and "nothing to reduce" in r.reason


def test_per_adult_counts_only_the_adults_and_family_counts_everyone() -> None:
    incidents = offences("DAD", "2015-01-01", "2015-02-01") + offences("LIAM", "2016-01-01")
    ev = family(members=(LIAM, DAD), incidents=incidents)
    per_adult = dict(REDUCE_A_THIRD, per="adult", reduction_pct=100)
    per_family = dict(REDUCE_A_THIRD, per="family", reduction_pct=50)
    r = run(leaf("incident_reduction", **per_adult), ev, "2016-03-31")
    assert r.met and "DAD: 2 -> 0" in r.reason
    r = run(leaf("incident_reduction", **per_family), ev, "2016-03-31")
    assert r.met and "family: 2 -> 1, down 50.00%" in r.reason


# --- no_incidents --------------------------------------------------------------------------------


def test_no_domestic_callouts_in_the_last_six_months() -> None:
    measure = leaf("no_incidents", kinds=("domestic_callout",), months=6, per="family")
    clean = family(members=(DAD,), incidents=offences("DAD", "2015-09-30",
                                                      kind="domestic_callout"))
    r = run(measure, clean, "2016-03-31")
    assert r.met
    assert r.reason == "no_incidents: no domestic_callout by the family in 2015-10-01..2016-03-31"
    callout = family(members=(DAD,), incidents=offences("DAD", "2015-10-01",
                                                        kind="domestic_callout"))
    r = run(measure, callout, "2016-03-31")
    assert not r.met and "domestic_callout by DAD on 2015-10-01" in r.reason
    assert r.evidence == ("DAD-domestic_callout-2015-10-01",)


def test_no_incidents_per_young_person_ignores_the_adults() -> None:
    ev = family(members=(LIAM, DAD), incidents=offences("DAD", "2016-01-01"))
    measure = leaf("no_incidents", kinds=("proven_offence",), months=6, per="young_person")
    assert run(measure, ev, "2016-03-31").met
    assert not run(leaf("no_incidents", kinds=("proven_offence",), months=6), ev,
                   "2016-03-31").met


# --- continuous_employment ---------------------------------------------------------------------

WORCS_RULES = (EmploymentRule("jsa", 26, 30), EmploymentRule("*", 14))


def on_benefit(benefit: str) -> EmploymentSpell:
    return EmploymentSpell("DAD", "benefit_claim", D("2014-01-01"), D("2015-08-31"),
                           benefit=benefit, event_id="claim")


def job(start: str, end: str | None = None, hours: int | None = 30) -> EmploymentSpell:
    return EmploymentSpell("DAD", "employment", D(start), D(end) if end else None,
                           hours_per_week=hours, event_id=f"job-{start}")


def test_jsa_claimant_in_work_26_of_the_last_30_weeks() -> None:
    """The 30 weeks to 2016-03-31 run from 2015-09-04; 182 days of work are 26 whole weeks,
    181 days only 25."""
    measure = leaf("continuous_employment", rules=WORCS_RULES)
    ev = family(members=(DAD,), employment=(on_benefit("jsa"), job("2015-09-04", "2015-12-31"),
                                            job("2016-01-01", "2016-03-03")))
    r = run(measure, ev, "2016-03-31")
    assert r.met and "26 whole week(s) in work in the 30 weeks 2015-09-04..2016-03-31 " \
                     "(needs 26)" in r.reason
    short = family(members=(DAD,), employment=(on_benefit("jsa"), job("2015-09-04", "2016-03-02")))
    r = run(measure, short, "2016-03-31")
    assert not r.met and "25 whole week(s)" in r.reason


def test_other_benefits_need_14_consecutive_weeks_up_to_the_last_week() -> None:
    """From 2015-12-25 to 2016-03-31 is 98 days, exactly 14 weeks; a day later is 13."""
    measure = leaf("continuous_employment", rules=WORCS_RULES)
    fourteen = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-12-25")))
    r = run(measure, fourteen, "2016-03-31")
    assert r.met and "in continuous work 2015-12-25..2016-03-31, 14 whole week(s) (needs 14)" \
        in r.reason
    thirteen = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-12-26")))
    assert not run(measure, thirteen, "2016-03-31").met


def test_touching_jobs_make_one_run_but_a_gap_breaks_it() -> None:
    measure = leaf("continuous_employment", rules=(EmploymentRule("*", 14),))
    touching = family(members=(DAD,), employment=(on_benefit("esa"),
                                                  job("2015-12-01", "2016-01-31"),
                                                  job("2016-02-01")))
    assert run(measure, touching, "2016-03-31").met
    gap = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-12-01", "2016-01-30"),
                                             job("2016-02-01")))
    r = run(measure, gap, "2016-03-31")
    assert not r.met and "2016-02-01..2016-03-31, 8 whole week(s)" in r.reason


def test_a_run_that_ended_before_the_last_week_does_not_count() -> None:
    measure = leaf("continuous_employment", rules=(EmploymentRule("*", 14),))
    ev = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-09-01", "2016-03-24")))
    r = run(measure, ev, "2016-03-31")
    assert not r.met and "not in work in the week 2016-03-25..2016-03-31" in r.reason


def test_only_a_member_on_out_of_work_benefit_at_attachment_can_move_into_work() -> None:
    measure = leaf("continuous_employment", rules=WORCS_RULES)
    ev = family(members=(DAD,), employment=(job("2015-01-01"),))
    r = run(measure, ev, "2016-03-31")
    assert not r.met and "no member had an open out-of-work benefit claim on the attachment " \
                         "date 2015-06-01" in r.reason


def test_jobs_below_the_minimum_hours_do_not_count() -> None:
    measure = leaf("continuous_employment", rules=(EmploymentRule("*", 26),),
                   min_hours_per_week=16)
    ev = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-06-15", hours=15)))
    assert not run(measure, ev, "2016-03-31").met
    ev = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-06-15", hours=16)))
    assert run(measure, ev, "2016-03-31").met


def claim(benefit: str, end: str | None, start: str = "2014-01-01") -> EmploymentSpell:
    return EmploymentSpell("DAD", "benefit_claim", D(start), D(end) if end else None,
                           benefit=benefit, event_id=f"claim-{benefit}-{start}")


def test_off_benefits_counts_only_work_after_the_claim_ended() -> None:
    """'Moves off out-of-work benefits': work while the claim is open is not counted. Dad works
    from 2015-12-25; signed off on 2015-12-24 he has 14 weeks by 2016-03-31, signed off a day
    later only 13; with the claim still open, none (today's default counts all 14)."""
    measure = leaf("continuous_employment", rules=WORCS_RULES, off_benefits=True)
    off = family(members=(DAD,), employment=(claim("esa", "2015-12-24"), job("2015-12-25")))
    r = run(measure, off, "2016-03-31")
    assert r.met and "in continuous work and off out-of-work benefits 2015-12-25..2016-03-31, " \
                     "14 whole week(s) (needs 14)" in r.reason
    late = family(members=(DAD,), employment=(claim("esa", "2015-12-25"), job("2015-12-25")))
    r = run(measure, late, "2016-03-31")
    assert not r.met and "2015-12-26..2016-03-31, 13 whole week(s)" in r.reason
    still = family(members=(DAD,), employment=(claim("esa", None), job("2015-12-25")))
    assert not run(measure, still, "2016-03-31").met
    assert run(leaf("continuous_employment", rules=WORCS_RULES), still, "2016-03-31").met


def test_off_benefits_within_weeks_counts_days_off_benefit() -> None:
    """JSA 26 of the last 30 weeks (from 2015-09-04): a claim open to 2015-09-10 takes a week."""
    measure = leaf("continuous_employment", rules=WORCS_RULES, off_benefits=True)
    ev = family(members=(DAD,), employment=(claim("jsa", "2015-09-03"), job("2015-09-04")))
    assert run(measure, ev, "2016-03-03").met  # 182 days off benefit in work: 26 weeks
    ev = family(members=(DAD,), employment=(claim("jsa", "2015-09-10"), job("2015-09-04")))
    r = run(measure, ev, "2016-03-03")
    assert not r.met and "25 whole week(s) in work and off out-of-work benefits" in r.reason


def test_in_work_benefits_may_stay_open() -> None:
    """Universal Credit with the earnings element may continue in work (Southwark 4.2); an open
    ESA claim beside it may not."""
    rules = (EmploymentRule("uc", 26),)
    measure = leaf("continuous_employment", rules=rules, off_benefits=True,
                   in_work_benefits=("uc",))
    uc = family(members=(DAD,), employment=(claim("uc", None), job("2015-09-03")))
    r = run(measure, uc, "2016-03-02")
    assert r.met and "(may stay on uc)" in r.reason and "26 whole week(s)" in r.reason
    assert not run(measure, uc, "2016-03-01").met
    both = family(members=(DAD,), employment=(claim("uc", None), claim("esa", None, "2015-01-01"),
                                              job("2015-09-03")))
    assert not run(measure, both, "2016-03-02").met


def test_moved_within_months_dates_the_move_into_work() -> None:
    """'Moved ... into continuous employment in the last 6 months': 6 months before 2016-03-31
    is 2015-09-30, outside the window; a run begun on 2015-10-01 is inside it."""
    measure = leaf("continuous_employment", rules=(EmploymentRule("*", 13),),
                   moved_within_months=6)
    inside = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-10-01")))
    r = run(measure, inside, "2016-03-31")
    assert r.met and "moved into work on 2015-10-01, within 2015-10-01..2016-03-31" in r.reason
    outside = family(members=(DAD,), employment=(on_benefit("esa"), job("2015-09-30")))
    r = run(measure, outside, "2016-03-31")
    assert not r.met and "moved into work on 2015-09-30, before 2015-10-01..2016-03-31" \
        in r.reason
    assert run(leaf("continuous_employment", rules=(EmploymentRule("*", 13),)), outside,
               "2016-03-31").met


def test_moved_within_months_gives_way_to_a_longer_look_back_of_the_rule() -> None:
    """A JSA rule of 26 in the last 30 weeks looks back further than 6 months: a move in the
    30 weeks counts (else 26 weeks, about 6 months, could hardly ever be met)."""
    measure = leaf("continuous_employment", rules=WORCS_RULES, moved_within_months=6)
    ev = family(members=(DAD,), employment=(on_benefit("jsa"), job("2015-09-04")))
    r = run(measure, ev, "2016-03-31")
    assert r.met and "moved into work on 2015-09-04, within 2015-09-04..2016-03-31" in r.reason


def test_a_none_rule_takes_a_member_on_no_benefit_and_not_in_work_at_attachment() -> None:
    """Warwickshire HP4.1e: a NEET young person on no benefit, an apprenticeship for 13 weeks.
    Without a 'none' rule (today's default) such a member is never considered."""
    kid = Member("JAY", "child", D("1999-01-01"))
    apprenticeship = EmploymentSpell("JAY", "employment", D("2016-01-01"), None,
                                     hours_per_week=30, event_id="app")
    rules = (EmploymentRule("jsa", 26), EmploymentRule("*", 13), EmploymentRule("none", 13))
    ev = family(members=(kid,), employment=(apprenticeship,))
    r = run(leaf("continuous_employment", rules=rules), ev, "2016-03-31")
    assert r.met and "JAY (no out-of-work benefit claim and not in work on 2015-06-01)" \
        in r.reason
    assert not run(leaf("continuous_employment", rules=rules), ev, "2016-03-30").met
    assert not run(leaf("continuous_employment", rules=rules[:2]), ev, "2016-03-31").met
    working = EmploymentSpell("JAY", "employment", D("2015-05-01"), None, hours_per_week=30,
                              event_id="old-job")
    ev = family(members=(kid,), employment=(working,))
    assert not run(leaf("continuous_employment", rules=rules), ev, "2016-03-31").met


# --- progress_to_work ----------------------------------------------------------------------------


def spell(kind: str, start: str, end: str | None = None) -> EmploymentSpell:
    return EmploymentSpell("DAD", kind, D(start), D(end) if end else None, event_id=kind)


def test_thirteen_weeks_attended_or_completed_is_progress_to_work() -> None:
    measure = leaf("progress_to_work", kinds=("training", "volunteering"), weeks=13)
    ev = family(members=(DAD,), employment=(spell("volunteering", "2016-01-01"),))
    r = run(measure, ev, "2016-03-31")
    assert r.met and "13 whole week(s) attended (needs 13 or completion)" in r.reason
    ev = family(members=(DAD,), employment=(spell("volunteering", "2016-01-02"),))
    assert not run(measure, ev, "2016-03-31").met
    course = family(members=(DAD,), employment=(spell("training", "2016-01-04", "2016-01-29"),))
    r = run(measure, course, "2016-03-31")
    assert r.met and "completed 2016-01-29" in r.reason
    strict = leaf("progress_to_work", kinds=("training",), weeks=13, completed_counts=False)
    assert not run(strict, course, "2016-03-31").met


def test_progress_to_work_must_start_after_attachment() -> None:
    measure = leaf("progress_to_work", kinds=("training",), weeks=1)
    ev = family(members=(DAD,), employment=(spell("training", "2015-05-01", "2015-09-01"),))
    r = run(measure, ev, "2016-03-31")
    assert not r.met and "no training started between attachment on 2015-06-01" in r.reason


def test_started_within_months_dates_the_volunteering_or_attachment() -> None:
    """'Volunteered for the Work Programme or attached to the ESF provision in the last 6
    months': 6 months before 2016-03-31 is 2015-09-30, outside the window; a spell begun on
    2015-10-01 counts. Without the parameter (today's default) any start since attachment does."""
    measure = leaf("progress_to_work", kinds=("esf_provision",), weeks=1,
                   started_within_months=6)
    inside = family(members=(DAD,), employment=(spell("esf_provision", "2015-10-01", None),))
    assert run(measure, inside, "2016-03-31").met
    outside = family(members=(DAD,), employment=(spell("esf_provision", "2015-09-30", None),))
    r = run(measure, outside, "2016-03-31")
    assert not r.met and "no esf_provision started in the last 6 months and since attachment " \
                         "(2015-10-01..2016-03-31) (the latest started on 2015-09-30)" in r.reason
    plain = leaf("progress_to_work", kinds=("esf_provision",), weeks=1)
    assert run(plain, outside, "2016-03-31").met


# --- score_change --------------------------------------------------------------------------------


def scores(instrument: str, *pairs: tuple[str, int], ref: str = "MUM") -> tuple[Score, ...]:
    return tuple(Score(ref, instrument, D(d), s, event_id=f"{instrument}-{d}") for d, s in pairs)


def test_outcomes_star_up_two_taking_the_score_above_five() -> None:
    """Southwark: 'an increase ... by at least 2 points (taking the score above 5)'."""
    measure = leaf("score_change", instrument="outcomes_star", min_improvement=2, to_above=5)
    ev = family(scores=scores("outcomes_star", ("2015-06-10", 3), ("2016-03-01", 6)))
    r = run(measure, ev, "2016-03-31")
    assert r.met and "MUM outcomes_star 3 (2015-06-10) -> 6 (2016-03-01): up 3" in r.reason
    assert r.evidence == ("outcomes_star-2015-06-10", "outcomes_star-2016-03-01")
    exactly_five = family(scores=scores("outcomes_star", ("2015-06-10", 3), ("2016-03-01", 5)))
    r = run(measure, exactly_five, "2016-03-31")
    assert not r.met and "ending above 5: no" in r.reason


def test_a_decrease_where_lower_is_better() -> None:
    measure = leaf("score_change", instrument="dash", min_improvement=1, direction="decrease")
    ev = family(scores=scores("dash", ("2015-06-10", 14), ("2016-03-01", 13)))
    assert run(measure, ev, "2016-03-31").met
    worse = family(scores=scores("dash", ("2015-06-10", 14), ("2016-03-01", 15)))
    assert not run(measure, worse, "2016-03-31").met


def test_held_months_needs_the_improvement_to_have_held_without_re_escalation() -> None:
    """Worcestershire 3.2, 'No re-escalation for at least 6 months': down from 3 to 2 on
    2015-09-30 has held through 2015-10-01..2016-03-31; a re-escalation to 3 in December and a
    new fall in January restarts the clock. Without held_months (today's default) both pass."""
    measure = leaf("score_change", instrument="eha", min_improvement=1, direction="decrease",
                   held_months=6)
    held = scores("eha", ("2015-06-10", 3), ("2015-09-30", 2), ("2016-02-01", 1))
    r = run(measure, family(scores=held), "2016-03-31")
    assert r.met and "improved since 2015-09-30 with no re-escalation, held throughout " \
                     "2015-10-01..2016-03-31" in r.reason
    late = scores("eha", ("2015-06-10", 3), ("2015-10-01", 2))
    assert not run(measure, family(scores=late), "2016-03-31").met
    back = held[:2] + scores("eha", ("2015-12-01", 3), ("2016-01-10", 2))
    r = run(measure, family(scores=back), "2016-03-31")
    assert not r.met and "improved since 2016-01-10" in r.reason
    plain = leaf("score_change", instrument="eha", min_improvement=1, direction="decrease")
    assert run(plain, family(scores=back), "2016-03-31").met
    assert run(plain, family(scores=late), "2016-03-31").met


def test_the_baseline_is_the_first_score_from_attachment_else_the_latest_before() -> None:
    measure = leaf("score_change", instrument="sdq", min_improvement=3, direction="decrease",
                   from_above=18)
    early = scores("sdq", ("2015-01-01", 25), ("2015-05-20", 20), ("2016-02-01", 17))
    r = run(measure, family(scores=early), "2016-03-31")
    assert r.met and "20 (2015-05-20) -> 17" in r.reason
    later = early + scores("sdq", ("2015-06-05", 19))
    r = run(measure, family(scores=later), "2016-03-31")
    assert not r.met and "19 (2015-06-05) -> 17" in r.reason and "starting above 18: yes" \
        in r.reason


def test_one_score_is_nothing_to_compare_and_later_scores_are_unseen() -> None:
    measure = leaf("score_change", instrument="wemwbs", min_improvement=1)
    ev = family(scores=scores("wemwbs", ("2015-06-10", 40), ("2016-04-01", 50)))
    r = run(measure, ev, "2016-03-31")
    assert not r.met and "one wemwbs score (40 on 2015-06-10), nothing to compare" in r.reason


# --- status_step_down ----------------------------------------------------------------------------


def status(code: str, start: str, end: str | None = None) -> CareStatus:
    return CareStatus("BEN", code, D(start), D(end) if end else None,
                      event_id=f"{code}-{start}")


STEP_DOWN = leaf("status_step_down", months=6)


def test_child_protection_stepped_down_to_child_in_need_and_held_six_months() -> None:
    ev = family(members=(BEN,), care_status=(status("cp", "2015-03-01", "2015-09-15"),
                                             status("cin", "2015-09-16")))
    r = run(STEP_DOWN, ev, "2016-03-31")
    assert r.met and "BEN cp on attachment 2015-06-01 -> cin on 2016-03-31" in r.reason


def test_a_step_down_inside_the_six_months_is_not_yet_sustained() -> None:
    ev = family(members=(BEN,), care_status=(status("cp", "2015-03-01", "2016-01-31"),
                                             status("cin", "2016-02-01")))
    r = run(STEP_DOWN, ev, "2016-03-31")
    assert not r.met and "not yet stepped down for 6 months" in r.reason


def test_re_escalation_within_the_window_fails() -> None:
    ev = family(members=(BEN,), care_status=(status("cp", "2015-03-01", "2015-09-15"),
                                             status("early_help", "2015-09-16", "2016-01-31"),
                                             status("cin", "2016-02-01")))
    r = run(STEP_DOWN, ev, "2016-03-31")
    assert not r.met and "re-escalated to cin on 2016-02-01" in r.reason


def test_no_statutory_status_at_attachment_means_nothing_to_step_down_from() -> None:
    ev = family(members=(BEN,), care_status=(status("early_help", "2015-03-01", "2015-08-01"),))
    r = run(STEP_DOWN, ev, "2016-03-31")
    assert not r.met and "no child had a status of lac/cp/cin open on the attachment date" \
        in r.reason


# --- attestation ---------------------------------------------------------------------------------


def attested(outcome: str, on: str) -> Attestation:
    return Attestation(None, outcome, D(on), "LW1", "case notes", event_id=f"{outcome}-{on}")


def test_an_attestation_on_or_before_the_review_date() -> None:
    measure = leaf("attestation", outcome="mental_health_improved")
    r = run(measure, family(attestations=(attested("mental_health_improved", "2016-03-31"),)),
            "2016-03-31")
    assert r.met and "by LW1 on 2016-03-31 (mental_health_improved-2016-03-31)" in r.reason
    # The free-text evidence reference stays in the attestation event (it is personal data
    # that erasure must remove); the decision, which outlives erasure, names the event.
    assert "case notes" not in r.reason
    later = family(attestations=(attested("mental_health_improved", "2016-04-01"),))
    assert not run(measure, later, "2016-03-31").met


def test_an_attestation_must_be_recent_when_the_policy_says_so() -> None:
    measure = leaf("attestation", outcome="seriousness_reduced", within_months=6)
    old = family(attestations=(attested("seriousness_reduced", "2015-09-30"),))
    r = run(measure, old, "2016-03-31")
    assert not r.met and "the latest, on 2015-09-30, is too old" in r.reason
    fresh = family(attestations=(attested("seriousness_reduced", "2015-10-01"),))
    assert run(measure, fresh, "2016-03-31").met


# --- combinations --------------------------------------------------------------------------------


def test_any_of_is_met_by_one_branch_and_keeps_only_that_branch_evidence() -> None:
    measure = AnyOf((leaf("attestation", outcome="a"), leaf("attestation", outcome="b")))
    ev = family(attestations=(attested("b", "2016-01-01"),))
    r = run(measure, ev, "2016-03-31")
    assert r.met and r.reason.startswith("any of (1 of 2 met): [not met] attestation: no")
    assert r.evidence == ("b-2016-01-01",)


def test_all_of_needs_every_branch() -> None:
    measure = AllOf((leaf("attestation", outcome="a"), leaf("attestation", outcome="b")))
    ev = family(attestations=(attested("b", "2016-01-01"),))
    r = run(measure, ev, "2016-03-31")
    assert not r.met and r.reason.startswith("all of (1 of 2 met)")
    ev = family(attestations=(attested("a", "2016-01-01"), attested("b", "2016-01-01")))
    assert run(measure, ev, "2016-03-31").met


def test_at_least_n_of_counts_the_met_branches() -> None:
    """Southwark 4.7, 'Completion of 3 out of the 6 interim outcomes': three met is enough, two
    is not; the explanation and the evidence name the met ones."""
    six = AtLeast(3, tuple(leaf("attestation", outcome=c) for c in "abcdef"))
    three = family(attestations=tuple(attested(c, "2016-01-01") for c in "bdf"))
    r = run(six, three, "2016-03-31")
    assert r.met and r.reason.startswith("at least 3 of (3 of 6 met): [not met] attestation: no")
    assert r.evidence == ("b-2016-01-01", "d-2016-01-01", "f-2016-01-01")
    two = family(attestations=tuple(attested(c, "2016-01-01") for c in "bd"))
    r = run(six, two, "2016-03-31")
    assert not r.met and r.reason.startswith("at least 3 of (2 of 6 met)")


def test_measures_that_need_a_start_of_intervention_fail_without_an_attachment() -> None:
    bare = FamilyEvidence(family_ref="F1", members=(LIAM,),
                          incidents=offences("LIAM", *BASELINE3))
    for measure in (leaf("incident_reduction", **REDUCE_A_THIRD),
                    leaf("continuous_employment", rules=WORCS_RULES),
                    leaf("progress_to_work", kinds=("training",), weeks=1),
                    leaf("score_change", instrument="x", min_improvement=1), STEP_DOWN):
        r = run(measure, bare, "2016-03-31")
        assert not r.met and "no attachment recorded" in r.reason


# --- calendar arithmetic -------------------------------------------------------------------------

DAYS = st.dates(min_value=date(2010, 1, 1), max_value=date(2020, 12, 31))


def test_months_back_clamp_to_the_end_of_a_shorter_month() -> None:
    assert months_before(D("2016-08-31"), 6) == D("2016-02-29")
    assert months_before(D("2016-03-31"), 6) == D("2015-09-30")
    assert months_before(D("2016-01-15"), 13) == D("2014-12-15")


@given(DAYS, st.integers(min_value=0, max_value=60))
def test_months_back_then_forward_never_passes_the_start(day: date, months: int) -> None:
    back = months_before(day, months)
    assert back <= day
    assert (day.year * 12 + day.month) - (back.year * 12 + back.month) == months


@given(st.lists(st.tuples(DAYS, st.integers(min_value=0, max_value=400)), max_size=6), DAYS,
       st.integers(min_value=0, max_value=400))
def test_days_covered_counts_each_day_once(spells: list[tuple[date, int]], start: date,
                                           length: int) -> None:
    ranges = [(s, s + timedelta(days=n)) for s, n in spells]
    end = start + timedelta(days=length)
    brute = sum(1 for i in range(length + 1)
                if any(s <= start + timedelta(days=i) <= e for s, e in ranges))
    assert days_covered(ranges, start, end) == brute
