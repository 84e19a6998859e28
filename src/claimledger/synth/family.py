"""Turning one planned synthetic family into data-match rows.

:mod:`claimledger.synth.plan` says what a family's evidence must pass or fail; this module
dates the family's story (identification, attachment, assessment, plan, review) and writes
rows that do exactly that: a school census for every child in school across the programme,
police incidents with a baseline before attachment, benefit and work spells, care statuses,
instrument scores, attestations and lead-worker judgements. Every draw comes from the
family's own ``random.Random``; nothing reads a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ..policy.dates import months_before
from ..policy.model import Policy
from .plan import Atom, Needs, ProblemPlan, rules_of, structural

Row = list[str]

#: Instrument scales (lowest, highest): where a policy names an instrument the generator must
#: produce plausible scores on it. Unknown instruments fall back to 0..10.
SCALES: dict[str, tuple[int, int]] = {
    "outcomes_star": (1, 10),
    "wemwbs": (14, 70),
    "sdq": (0, 40),
    "dash": (0, 27),
    "dass": (0, 63),
    "parenting_scale": (1, 7),
    "barnardos_dv_matrix": (1, 4),
    "eha_impact": (0, 3),
    "dwp_five_stages_rag": (1, 3),
}
CHILD_INSTRUMENTS = frozenset({"sdq"})
GENERIC_BENEFITS = ("jsa", "esa", "is", "uc")
SOURCES = {
    "crime_asb": "police",
    "education": "school_census",
    "children_need_help": "social_care",
    "worklessness": "dwp",
    "domestic_abuse": "police",
    "health": "health",
}
DAY = timedelta(days=1)


def add_months(day: date, months: int) -> date:
    return months_before(day, -months)


def days(n: int) -> timedelta:
    return timedelta(days=n)


@dataclass(frozen=True, slots=True)
class Term:
    start: date
    end: date
    academic_year: int  # the calendar year its September falls in
    possible: int  # sessions (two a school day)

    @property
    def cells(self) -> tuple[str, str, str]:
        """term_start, term_end, sessions_possible as written in the census file."""
        return self.start.isoformat(), self.end.isoformat(), str(self.possible)


def _weekday_on_or_after(day: date, weekday: int) -> date:
    return day + days((weekday - day.weekday()) % 7)


def _weekday_on_or_before(day: date, weekday: int) -> date:
    return day - days((day.weekday() - weekday) % 7)


def _weekdays(start: date, end: date) -> int:
    total = (end - start).days + 1
    full, rest = divmod(total, 7)
    count = full * 5
    for i in range(rest):
        if (start + days(full * 7 + i)).weekday() < 5:
            count += 1
    return count


def school_terms(first_year: int, last_year: int) -> list[Term]:
    """Three terms per academic year (autumn Sep-Dec, spring Jan-Mar, summer Apr-Jul).

    Sessions possible: two a weekday, less a half-term week and one training day.
    """
    terms: list[Term] = []
    for y in range(first_year, last_year + 1):
        spans = (
            (_weekday_on_or_after(date(y, 9, 2), 0), _weekday_on_or_before(date(y, 12, 20), 4)),
            (_weekday_on_or_after(date(y + 1, 1, 4), 0),
             _weekday_on_or_before(date(y + 1, 3, 31), 4)),
            (_weekday_on_or_after(date(y + 1, 4, 14), 0),
             _weekday_on_or_before(date(y + 1, 7, 22), 4)),
        )
        for start, end in spans:
            terms.append(Term(start, end, y, 2 * (_weekdays(start, end) - 6)))
    return terms


@dataclass
class County:
    """What every family shares: the policy, the programme period, the school calendar."""

    policy: Policy
    start: date
    end: date
    terms: list[Term]
    lead_workers: tuple[str, ...]
    noise_kinds: tuple[str, ...]
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.term_cells = {t.start: t.cells for t in self.terms}

    def add(self, kind: str, row: list[Any]) -> None:
        self.rows[kind].append([_cell(v) for v in row])


def _cell(v: Any) -> str:
    if type(v) is str:
        return v
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


@dataclass
class Member:
    ref: str
    role: str
    birth: date

    def age_on(self, day: date) -> int:
        years = day.year - self.birth.year
        if (day.month, day.day) < (self.birth.month, self.birth.day):
            years -= 1
        return years


class Unplaceable(Exception):
    """This plan cannot fit in the programme period; the caller redraws it."""


@dataclass
class Timeline:
    identified: date
    attached: date
    assessment: date
    plan: date
    review: date
    job_start: date
    progress_start: date
    care_step: date
    care_step2: date


def _int(value: Any) -> int:
    return int(Decimal(value))


def _permille(value: Any) -> int:
    return int(Decimal(value) * 10)


class FamilyBuilder:
    """Writes one family's rows into the county's tables."""

    def __init__(self, county: County, ref: str, rng: random.Random,
                 problems: list[ProblemPlan], needs: Needs, judgement: str):
        self.c = county
        self.ref = ref
        self.rng = rng
        self.problems = problems
        self.needs = needs
        self.judgement = judgement  # final | interim | none
        self.subject: dict[str, str] = {}  # evidence kind -> member ref it was written for
        self.lead = rng.choice(county.lead_workers)

    # ---------------------------------------------------------------- dates

    def timeline(self, identified: date) -> Timeline:
        """The family's dates; raises Unplaceable when the review would pass the programme end."""
        r = self.rng
        attached = identified + days(r.randint(7, 56))
        assessment = attached + days(r.randint(5, 28))
        plan = assessment + days(r.randint(3, 21))
        job_start = attached + days(r.randint(21, 70))
        progress_start = attached + days(r.randint(14, 56))
        care_step = attached + days(r.randint(40, 120))
        care_step2 = care_step + days(r.randint(60, 120))
        n = self.needs
        floors = [add_months(attached, 12), self.c.policy.effective_from, plan + days(60)]
        if n.needs_school_child:
            after = [t for t in self.c.terms if t.start > attached]
            need = max(n.terms, 3)
            if len(after) < need:
                raise Unplaceable("school calendar too short")
            floors.append(after[need - 1].end)
        # incidents that stop (or never recur) must be clear of the longest window
        windows = [x.window_months for x in n.incident_needs if x.state in ("stop", "quiet")]
        if windows:
            floors.append(add_months(attached + days(48), max(windows)) + days(3))
        if n.employment == "good":
            weeks = max(max(rule.weeks, rule.within_weeks or 0)
                        for a in n.employment_leaves for rule in rules_of(a.get("rules")))
            floors.append(job_start + days(7 * (weeks + 2)))
        for a in n.progress_leaves:
            if a.good:
                weeks = int(structural(a.get("weeks")))
                floors.append(progress_start + days(7 * (weeks + 8)))
        if n.care == "good":
            floors.append(add_months(care_step, n.care_months) + days(7))
        review = max(floors) + days(r.randint(0, 75))
        if review > self.c.end:
            review = max(floors)
        if review > self.c.end:
            raise Unplaceable(f"review {review} after programme end {self.c.end}")
        return Timeline(identified, attached, assessment, plan, review, job_start,
                        self._recent_progress(progress_start, review), care_step, care_step2)

    def _recent_progress(self, start: date, review: date) -> date:
        """The progress-to-work start, moved into the last N months before the review where a
        leaf says 'in the last N months' (``started_within_months``); still early enough for
        every good leaf's weeks (and their completion) to fall before the review."""
        good = [a for a in self.needs.progress_leaves if a.good]
        within = [int(structural(a.get("started_within_months"))) for a in good
                  if a.get("started_within_months") is not None]
        if not within:
            return start
        weeks = max(int(structural(a.get("weeks"))) for a in good)
        earliest = max(start, add_months(review, -min(within)) + days(7))
        latest = review - days(7 * (weeks + 7))
        if latest < earliest:
            raise Unplaceable(f"{weeks} weeks of progress to work do not fit in the last "
                              f"{min(within)} months before {review}")
        return earliest + days(self.rng.randint(0, (latest - earliest).days))

    def _recent_job(self, t: Timeline, benefit: str) -> date:
        """The move into work: the timeline's job start, or, where a leaf says the move falls
        'in the last N months' (``moved_within_months``) and the claimant's rule is a
        continuous run, a start inside those N months that still leaves the run's weeks (and
        two more) before the review. A rule with its own look-back (``within_weeks``) dates the
        move inside that look-back, which the timeline's start already meets."""
        earliest, latest, dated = t.job_start, t.review, False
        for a in self.needs.employment_leaves:
            if a.get("moved_within_months") is None:
                continue
            rules = {rule.benefit: rule for rule in rules_of(a.get("rules"))}
            rule = rules.get(benefit) or rules["*"]
            if rule.within_weeks is not None:
                continue
            months = int(structural(a.get("moved_within_months")))
            earliest = max(earliest, add_months(t.review, -months) + days(7))
            latest = min(latest, t.review - days(7 * (rule.weeks + 2)))
            dated = True
        if not dated:
            return t.job_start
        if latest < earliest:
            raise Unplaceable(f"the move into work does not fit before {t.review}")
        return earliest + days(self.rng.randint(0, (latest - earliest).days))

    # ---------------------------------------------------------------- members

    def members(self, t: Timeline) -> tuple[list[Member], list[Member]]:
        r = self.rng
        n = self.needs
        ages = []
        for _ in range(r.choices((1, 2, 3, 4), (30, 35, 22, 13))[0]):
            band = r.choices(("school", "infant", "older"), (75, 13, 12))[0]
            ages.append({"school": r.randint(8, 15), "infant": r.randint(0, 3),
                         "older": r.randint(16, 17)}[band])
        if n.needs_school_child and not any(8 <= a <= 15 for a in ages):
            ages[0] = r.randint(8, 15)
        if n.needs_young_person and not any(12 <= a <= 17 for a in ages):
            i = next((i for i, a in enumerate(ages) if 8 <= a <= 15), None)
            if n.needs_school_child and i is not None and \
                    sum(1 for a in ages if 8 <= a <= 15) == 1:
                ages[i] = r.randint(12, 15)
            else:
                ages.append(r.randint(12, 17))
        ages.sort(reverse=True)
        oldest = ages[0]
        adults = []
        for i in range(1 if r.random() < 0.4 else 2):
            age = r.randint(max(19, oldest + 17), max(48, oldest + 24))
            adults.append(Member(f"{self.ref}-A{i + 1}", "adult", self._born(t.review, age)))
        children = [Member(f"{self.ref}-C{i + 1}", "child", self._born(t.review, a))
                    for i, a in enumerate(ages)]
        return adults, children

    def _born(self, review: date, age: int) -> date:
        try:
            anniversary = review.replace(year=review.year - age)
        except ValueError:  # 29 February
            anniversary = date(review.year - age, 2, 28)
        return anniversary - days(self.rng.randint(30, 330))

    # ---------------------------------------------------------------- the whole family

    def build(self, identified: date) -> dict[str, Any]:
        t = self.timeline(identified)
        adults, children = self.members(t)
        c = self.c
        c.add("families", [self.ref, c.policy.authority, c.policy.id, t.identified])
        for m in adults + children:
            c.add("members", [self.ref, m.ref, m.role, m.birth])
        c.add("attachments", [self.ref, t.attached, self.lead, t.assessment, t.plan])
        self._attendance(t, children)
        self._incidents(t, adults, children)
        self._employment(t, adults)
        self._care(t, children)
        self._scores(t, adults, children)
        self._attestations(t)
        self._judgements(t)
        self._indicators(t)
        return {"review_on": t.review.isoformat(), "attached_on": t.attached.isoformat()}

    # ---------------------------------------------------------------- school census

    def _attendance(self, t: Timeline, children: list[Member]) -> None:
        r = self.rng
        n = self.needs
        school = [m for m in children if 5 <= m.age_on(t.review) <= 15]
        target = r.choice(school) if school and n.needs_school_child else None
        if target is not None:
            self.subject["school"] = target.ref
        good_limit, points, bad_limit, unauth_bad = 8, 0, 0, False
        for a in n.attendance_leaves:
            p = a.leaf.resolved(t.review)
            if p.get("absence_below_pct") is not None:
                limit = _int(p["absence_below_pct"])
            elif p.get("attendance_at_least_pct") is not None:
                limit = 100 - _int(p["attendance_at_least_pct"])
            else:
                limit = 100
                points = max(points, _int(p["attendance_improvement_points"]) + 1)
            if a.good:
                good_limit = min(good_limit, limit - 2)
            else:
                bad_limit = max(bad_limit, limit if limit < 100 else 0)
                unauth_bad = unauth_bad or bool(p.get("unauthorised_only"))
        good_limit = max(good_limit, 1)
        settings = n.settings or frozenset({"school"})
        post_setting = "school" if "school" in settings else min(
            settings, key=lambda s: ("alternative", "pru", "school", "none").index(s))
        # last `terms` terms ending by the review: where a spoiled exclusions leaf bites
        by_review = [x for x in self.c.terms if x.end <= t.review]
        exclusion_terms: dict[date, tuple[int, bool]] = {}
        if n.exclusions == "bad" and target is not None:
            below = max((_int(a.get("fixed_term_below")) for a in n.exclusion_leaves
                         if not a.good and a.get("fixed_term_below") is not None), default=0)
            span = max(_int(structural(a.get("terms"))) for a in n.exclusion_leaves)
            recent = by_review[-span:]
            if below:
                first, second = r.sample(recent, 2) if len(recent) > 1 else (recent[0],) * 2
                k = r.randint(1, below - 1) if below > 1 else below
                if first is second:
                    exclusion_terms[first.start] = (below, False)
                else:
                    exclusion_terms[first.start] = (k, False)
                    exclusion_terms[second.start] = (below - k, False)
            else:
                exclusion_terms[recent[-1].start] = (1, True)
        census = self.c.rows["attendance"]
        cells = self.c.term_cells
        for m in children:
            y0 = m.birth.year + 4 + (1 if m.birth.month >= 9 else 0)
            is_target = m is target
            sibling_bad = n.attendance == "bad" and r.random() < 0.5
            poor = r.randint(160, 320)
            if points:
                poor = max(poor, (good_limit + points + 4) * 10)
            if n.attendance == "bad":
                poor = max(poor, (bad_limit + 6) * 10)
            base_poor = is_target or (n.attendance == "good" and points > 0)
            permanently_out = False
            for term in self.c.terms:
                if not y0 <= term.academic_year <= y0 + 11 or term.start > self.c.end:
                    continue
                phase = ("base" if term.end <= t.attached
                         else "post" if term.start > t.attached else "mid")
                setting = "school"
                if n.attendance == "good":
                    if phase == "post":
                        pm = r.randint(10, good_limit * 10)
                        setting = post_setting
                    elif base_poor:
                        pm = poor if phase == "base" else (poor + good_limit * 10) // 2
                    else:
                        pm = r.randint(30, 90)
                elif n.attendance == "bad" and (is_target or sibling_bad):
                    pm = poor  # no better after attachment than before
                elif is_target:
                    pm = poor if phase == "base" else r.randint(10, good_limit * 10)
                    if n.attendance is None and phase != "base":
                        pm = r.randint(10, 70)
                else:
                    pm = r.randint(10, 80)
                absent = term.possible * pm // 1000
                share = r.randint(900, 1000) if unauth_bad and pm == poor else r.randint(300, 600)
                unauth = absent * share // 1000
                fixed, permanent = 0, False
                if is_target:
                    if term.start in exclusion_terms:
                        fixed, permanent = exclusion_terms[term.start]
                    elif n.exclusions == "good" and phase == "base" and r.random() < 0.35:
                        fixed = r.randint(1, 2)
                if permanently_out:
                    setting = "pru"
                if permanent:
                    permanently_out = True
                start, end, possible = cells[term.start]
                census.append([m.ref, start, end, possible, str(absent), str(unauth), str(fixed),
                               "yes" if permanent else "no", setting, "school_census"])

    # ---------------------------------------------------------------- police

    def _incidents(self, t: Timeline, adults: list[Member], children: list[Member]) -> None:
        r = self.rng
        young = [m for m in children if 12 <= m.age_on(t.review) <= 17]
        offender = r.choice(young) if young else None
        used: set[tuple[str, str, date]] = set()

        def who(per: str) -> Member:
            if per == "young_person":
                assert offender is not None
                return offender
            if per == "adult":
                return adults[0]
            return offender if offender is not None and r.random() < 0.5 else adults[0]

        def put(m: Member, kind: str, day: date, serious: bool = False) -> None:
            while (m.ref, kind, day) in used:
                day += DAY
            used.add((m.ref, kind, day))
            self.c.add("incidents", [m.ref, day, kind, serious, _incident_source(kind)])

        def spread(lo: date, hi: date, count: int) -> list[date]:
            width = (hi - lo).days
            return sorted(lo + days(r.randint(0, max(width, 0))) for _ in range(count))

        merged: dict[tuple[str, str, str], list[int]] = {}
        for need in self.needs.incident_needs:
            if need.state == "quiet":
                # the history that made it a problem: before attachment, so before the window
                if self.needs.incidents.get(need.kind) == "quiet" and r.random() < 0.8 and \
                        (need.per != "young_person" or offender is not None):
                    m = who(need.per)
                    self.subject.setdefault(f"incident:{need.kind}", m.ref)
                    lo = months_before(t.attached, 12) + days(2)
                    for day in spread(lo, t.attached - DAY, r.randint(1, 4)):
                        put(m, need.kind, day)
                continue
            key = (need.kind, need.per, need.state)
            b, w = merged.get(key, [need.baseline_months, need.window_months])
            merged[key] = [min(b, need.baseline_months), min(w, need.window_months)]
        baseline_of: dict[str, int] = {}
        for (kind, _per, _state), (b, _w) in merged.items():
            baseline_of[kind] = min(baseline_of.get(kind, b), b)
        for (kind, per, state), (_b, w) in sorted(merged.items()):
            m = who(per)
            self.subject.setdefault(f"incident:{kind}", m.ref)
            self.subject.setdefault("incident", m.ref)
            lo = months_before(t.attached, baseline_of[kind]) + days(2)
            base_n = r.randint(2, 5) if state == "stop" else r.randint(1, 3)
            for day in spread(lo, t.attached - DAY, base_n):
                put(m, kind, day, serious=r.random() < 0.1)
            if state == "stop":
                if r.random() < 0.35:
                    put(m, kind, t.attached + days(r.randint(5, 45)))
            else:
                w_lo = months_before(t.review, w) + days(2)
                for day in spread(w_lo, t.review - DAY, base_n + r.randint(1, 2)):
                    put(m, kind, day)
                for day in spread(t.attached + DAY, w_lo - days(2), r.randint(0, 2)):
                    put(m, kind, day)
        if self.c.noise_kinds and r.random() < 0.25:
            everyone = adults + children
            for _ in range(r.randint(1, 3)):
                day = months_before(t.attached, 12) + days(r.randint(0, 700))
                if day <= self.c.end:
                    put(r.choice(everyone), r.choice(self.c.noise_kinds), day)

    # ---------------------------------------------------------------- DWP and provision

    def _employment(self, t: Timeline, adults: list[Member]) -> None:
        r = self.rng
        n = self.needs
        problems = {p.problem for p in self.problems}
        claimant = adults[0] if (n.workless or "worklessness" in problems) else None
        add = self.c.add
        if claimant is not None:
            self.subject["employment"] = claimant.ref
            benefit = self._benefit()
            claim_start = t.attached - days(r.randint(60, 900))
            if n.employment == "good":
                hours = max([r.randint(16, 37)] + [
                    _int(a.get("min_hours_per_week")) for a in n.employment_leaves
                    if a.get("min_hours_per_week") is not None])
                job_start = self._recent_job(t, benefit)
                add("employment", [claimant.ref, "benefit_claim", benefit, claim_start,
                                   job_start - DAY, None, "dwp"])
                add("employment", [claimant.ref, "employment", None, job_start, None, hours,
                                   "dwp"])
            else:
                shortest = min((rule.weeks for a in n.employment_leaves
                                for rule in rules_of(a.get("rules"))), default=13)
                job_weeks = r.randint(3, 8)
                job_start = t.attached + days(r.randint(30, 150))
                job_end = job_start + days(7 * job_weeks - 1)
                if r.random() < 0.35 and job_weeks < shortest - 1 and \
                        job_end < t.review - days(30):
                    add("employment", [claimant.ref, "benefit_claim", benefit, claim_start,
                                       job_start - DAY, None, "dwp"])
                    add("employment", [claimant.ref, "employment", None, job_start, job_end,
                                       r.randint(8, 30), "dwp"])
                    add("employment", [claimant.ref, "benefit_claim", benefit, job_end + DAY,
                                       None, None, "dwp"])
                else:
                    add("employment", [claimant.ref, "benefit_claim", benefit, claim_start,
                                       None, None, "dwp"])
            for kind in sorted(k for k, v in n.progress.items() if v == "good"):
                leaf = next(a for a in n.progress_leaves if a.good and a.choice == kind)
                weeks = int(structural(leaf.get("weeks")))
                start = t.progress_start
                end = None
                if leaf.get("completed_counts") is not False:
                    end = start + days(7 * (weeks + r.randint(0, 6)) - 1)
                add("employment", [claimant.ref, kind, None, start, end, r.randint(6, 25),
                                   "provider"])
        for m in adults:
            if m is not claimant and r.random() < 0.55:
                add("employment", [m.ref, "employment", None,
                                   t.attached - days(r.randint(200, 3000)), None,
                                   r.randint(16, 40), "dwp"])

    def _benefit(self) -> str:
        """An out-of-work benefit every continuous-employment rule in play has a rule for."""
        r = self.rng
        leaves_ = self.needs.employment_leaves
        if not leaves_:
            return r.choice(GENERIC_BENEFITS)
        tables = [{rule.benefit for rule in rules_of(a.get("rules"))} for a in leaves_]
        named = sorted({b for table in tables for b in table if b != "*"})
        pool = [b for b in dict.fromkeys(named + list(GENERIC_BENEFITS))
                if all(b in table or "*" in table for table in tables)]
        if named and r.random() < 0.4:
            choices = [b for b in named if b in pool]
            if choices:
                return r.choice(choices)
        return r.choice(pool)

    # ---------------------------------------------------------------- social care

    def _care(self, t: Timeline, children: list[Member]) -> None:
        r = self.rng
        n = self.needs
        add = self.c.add
        if n.care is None:
            if children and r.random() < 0.15:
                m = r.choice(children)
                add("care_status", [m.ref, "early_help", t.attached - days(r.randint(0, 60)),
                                    t.attached + days(r.randint(90, 270)), "early_help"])
            return
        child = r.choice(children)
        self.subject["care"] = child.ref
        allowed = n.care_from or frozenset({"cp", "cin", "lac"})
        top = next(s for s in ("cp", "cin", "lac", "early_help") if s in allowed)
        began = t.attached - days(r.randint(30, 300))
        if n.care == "bad":
            if top == "cp" and r.random() < 0.3:
                mid_end = t.review - days(r.randint(30, 60))
                add("care_status", [child.ref, "cp", began, t.care_step - DAY, "social_care"])
                add("care_status", [child.ref, "cin", t.care_step, mid_end, "social_care"])
                add("care_status", [child.ref, "cp", mid_end + DAY, None, "social_care"])
            else:
                add("care_status", [child.ref, top, began, None, "social_care"])
            return
        steps = {"lac": ["lac", "cin", "early_help"], "cp": ["cp", "cin", "early_help"],
                 "cin": ["cin", "early_help"], "early_help": ["early_help"]}[top]
        if len(steps) == 3:
            add("care_status", [child.ref, steps[0], began, t.care_step - DAY, "social_care"])
            add("care_status", [child.ref, steps[1], t.care_step, t.care_step2 - DAY,
                                "social_care"])
            add("care_status", [child.ref, steps[2], t.care_step2, None, "early_help"])
        elif len(steps) == 2:
            add("care_status", [child.ref, steps[0], began, t.care_step - DAY, "social_care"])
            add("care_status", [child.ref, steps[1], t.care_step, None, "early_help"])
        else:
            add("care_status", [child.ref, steps[0], began, t.care_step - DAY, "early_help"])

    # ---------------------------------------------------------------- instruments

    def _scores(self, t: Timeline, adults: list[Member], children: list[Member]) -> None:
        r = self.rng
        for inst in sorted(self.needs.scores):
            atoms = self.needs.score_leaves[inst]
            good = self.needs.scores[inst] == "good"
            m = r.choice(children) if inst in CHILD_INSTRUMENTS else adults[0]
            self.subject[f"score:{inst}"] = m.ref
            up = (atoms[0].get("direction") or "increase") == "increase"
            lo, hi = SCALES.get(inst, (0, 10))
            params = [a.leaf.resolved(t.review) for a in atoms]
            if good:
                first, last = _score_pair(r, lo, hi, up, params)
            else:
                # worse than the start by one: fails any improvement, even of zero
                span_ = max(hi - lo, 2)
                if up:
                    first = r.randint(lo + 1, lo + max(1, span_ // 2))
                    last = first - 1
                else:
                    first = r.randint(hi - max(1, span_ // 2), hi - 1)
                    last = first + 1
            when = [t.assessment, t.attached + days(r.randint(120, 200)),
                    t.review - days(r.randint(10, 40))]
            values = [first, (first + last) // 2 if good else first, last]
            held = [int(structural(a.get("held_months"))) for a in atoms
                    if a.get("held_months") is not None]
            if good and held:
                # 'no re-escalation for at least N months': the middle score already reaches
                # the latest level and is dated N months (and a little more) before the review
                values[1] = last
                when[1] = min(when[1], add_months(t.review, -max(held)) - days(r.randint(1, 20)))
            for day, value in zip(when, values, strict=True):
                self.c.add("scores", [m.ref, inst, day, value, self.lead])

    # ---------------------------------------------------------------- practitioners

    def _attestations(self, t: Timeline) -> None:
        r = self.rng
        n = self.needs
        k = 0
        for code in self.c.policy.claim.essential_attestations:
            k += 1
            self.c.add("attestations", [self.ref, None, code, t.plan + days(r.randint(0, 10)),
                                        self.lead, f"CN/{self.ref}/{k}"])
        for code in sorted(c for c, v in n.attestations.items() if v == "good"):
            within = n.attestation_within.get(code)
            longest = 75 if within is None else min(75, within * 28 - 3)
            k += 1
            self.c.add("attestations", [self.ref, None, code,
                                        t.review - days(r.randint(3, max(longest, 4))),
                                        self.lead, f"CN/{self.ref}/{k}"])

    def _judgements(self, t: Timeline) -> None:
        r = self.rng
        if self.judgement == "none":
            return
        interim = t.attached + days(r.randint(150, 200))
        self.c.add("judgements", [self.ref, interim, self.lead, "all", True, False, False,
                                  "progress made; not yet sustained"])
        if self.judgement == "final":
            self.c.add("judgements", [self.ref, t.review - days(r.randint(0, 25)), self.lead,
                                      "all", True, True, True,
                                      "significant and sustained progress; support stepped down"])

    def _indicators(self, t: Timeline) -> None:
        r = self.rng
        for p in self.problems:
            who = self._subject_of(p.atoms)
            for ind in p.indicators:
                if p.stage == "engagement":
                    day, source = t.assessment, "assessment"
                else:
                    day = t.identified - days(r.randint(0, 60))
                    source = SOURCES.get(p.problem, "assessment")
                self.c.add("indicators", [self.ref, who, p.problem, ind, day, p.stage, source])

    def _subject_of(self, atoms: tuple[Atom, ...]) -> str | None:
        for a in atoms:
            k = a.kind
            if k in ("attendance", "exclusions") and "school" in self.subject:
                return self.subject["school"]
            if k in ("incident_reduction", "no_incidents"):
                got = self.subject.get(f"incident:{a.get('kinds')[0]}")
                if got:
                    return got
            if k in ("continuous_employment", "progress_to_work") and "employment" in self.subject:
                return self.subject["employment"]
            if k == "status_step_down" and "care" in self.subject:
                return self.subject["care"]
            if k == "score_change":
                got = self.subject.get(f"score:{a.get('instrument')}")
                if got:
                    return got
        return None


def _incident_source(kind: str) -> str:
    return {"asb_intervention": "housing",
            "missing_episode": "police", "ae_attendance": "nhs"}.get(kind, "police")


def _score_pair(r: random.Random, lo: int, hi: int, up: bool,
                params: list[dict[str, Any]]) -> tuple[int, int]:
    """First and latest scores that improve enough and clear every threshold in ``params``."""
    need = max(-(-Decimal(p["min_improvement"]) // 1) for p in params)
    need = max(int(need), 1)
    f_lo, f_hi, l_lo, l_hi = lo, hi, lo, hi
    for p in params:
        if p.get("from_above") is not None:
            f_lo = max(f_lo, int(Decimal(p["from_above"]) // 1) + 1)
        if p.get("from_below") is not None:
            f_hi = min(f_hi, -(-Decimal(p["from_below"]) // 1) - 1)
        if p.get("to_above") is not None:
            l_lo = max(l_lo, int(Decimal(p["to_above"]) // 1) + 1)
        if p.get("to_below") is not None:
            l_hi = min(l_hi, -(-Decimal(p["to_below"]) // 1) - 1)
    f_lo, f_hi, l_lo, l_hi = int(f_lo), int(f_hi), int(l_lo), int(l_hi)
    stretch = max((hi - lo) // 4, 1)  # a plausible improvement: not always the whole scale
    if up:
        f_max = max(min(f_hi, l_hi - need), f_lo)  # thresholds win where the scale is narrow
        first = r.randint(f_lo, f_max)
        low = max(l_lo, first + need)
        last = r.randint(low, max(min(l_hi, first + need + stretch), low))
    else:
        f_min = min(max(f_lo, l_lo + need), f_hi)
        first = r.randint(f_min, max(f_hi, f_min))
        high = min(l_hi, first - need)
        last = r.randint(min(max(l_lo, first - need - stretch), high), high)
    return first, last

