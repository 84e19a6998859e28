"""The nine measure kinds every policy is written in, as pure functions over a family's evidence.

A measure kind is a parameterised test: ``(params, evidence, as_of) -> MeasureResult``. A
policy chooses kinds and parameters; the code here never knows a council's rule. Each result
says whether the test passed, a reason with the numbers compared (so an auditor can check the
arithmetic by hand) and the ids of the records it rests on. Arithmetic is integer or
:class:`~decimal.Decimal`; no floats reach a decision.

:data:`KINDS` is the registry the loader validates policies against: each kind's parameters,
which are required, their types and allowed values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from .dates import (
    ONE_DAY,
    days_covered,
    in_window,
    merge_spells,
    months_before,
    span,
    weeks_before,
)
from .evidence import (
    CARE_LEVEL,
    CARE_STATUSES,
    INCIDENT_KINDS,
    SETTINGS,
    AttendanceTerm,
    CareStatus,
    EmploymentSpell,
    FamilyEvidence,
    Incident,
    Member,
    Score,
)
from .model import AllOf, AtLeast, Leaf, Measure
from .parts import (
    NO_ATTACHMENT,
    attachment_date,
    combine,
    ids,
    latest_terms,
    num,
    pct,
    school_age_children,
    terms_span,
    unit_label,
    unit_members,
)

PROGRESS_KINDS = ("work_programme", "esf_provision", "training", "volunteering")
PER_UNITS = ("young_person", "adult", "family")


@dataclass(frozen=True, slots=True)
class MeasureResult:
    met: bool
    reason: str
    evidence: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Parameter registry


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a measure kind, as the loader checks it.

    ``type``: ``int`` (whole number >= ``minimum``), ``number`` (integer or decimal string,
    >= 0), ``bool``, ``str``, ``choice`` (one of ``choices``), ``choices`` (a non-empty list,
    each one of ``choices``, or any non-empty strings when ``choices`` is empty) or ``rules``
    (continuous_employment's rule table). ``int`` and ``number`` may be dated.
    """

    name: str
    type: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int = 0


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    params: tuple[Param, ...]
    func: Callable[[Mapping[str, Any], FamilyEvidence, date], MeasureResult]
    #: groups of parameter names of which exactly one must be given
    one_of: tuple[tuple[str, ...], ...] = ()

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def with_defaults(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = {p.name: p.default for p in self.params}
        values.update(given)
        return values


# --------------------------------------------------------------------------------------------
# Helpers


# --------------------------------------------------------------------------------------------
# attendance


def _absence(rows: list[AttendanceTerm], unauthorised_only: bool) -> tuple[int, int]:
    possible = sum(t.sessions_possible for t in rows)
    absent = sum(t.unauthorised_absent if unauthorised_only else t.sessions_absent for t in rows)
    return absent, possible


def children_terms(
    ev: FamilyEvidence, children: list[Member], n: int, as_of: date,
    parts: list[tuple[bool, str]], used: list[AttendanceTerm],
) -> Iterator[tuple[Member, list[AttendanceTerm]]]:
    """Each child's latest ``n`` terms ending by ``as_of``; a child with fewer on record is a
    failed part. Every term looked at is added to ``used`` (the evidence)."""
    for child in children:
        rows = latest_terms(ev, child.ref, as_of)
        if len(rows) < n:
            parts.append((False, f"{child.ref} has {len(rows)} term(s) recorded ending by "
                                 f"{as_of} (needs {n})"))
            used += rows
            continue
        rows = rows[-n:]
        used += rows
        yield child, rows


def attendance(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    n: int = p["terms"]
    unauth: bool = p["unauthorised_only"]
    word = "unauthorised absence" if unauth else "absence"
    children = school_age_children(ev, as_of)
    if not children:
        return MeasureResult(False, f"no school-age child (aged 5 to 15) on {as_of}: "
                                    "no attendance to measure")
    used: list[AttendanceTerm] = []
    parts: list[tuple[bool, str]] = []
    attached = attachment_date(ev)
    for child, rows in children_terms(ev, children, n, as_of, parts, used):
        bad = [t for t in rows if t.setting not in p["settings"]]
        if bad:
            t = bad[0]
            parts.append((False, f"{child.ref} was in setting '{t.setting}' in term "
                                 f"{t.term_start}..{t.term_end} (allowed: "
                                 f"{', '.join(p['settings'])})"))
            continue
        absent, possible = _absence(rows, unauth)
        if possible == 0:
            parts.append((False, f"{child.ref} has no sessions possible over {terms_span(rows)}"))
            continue
        absence = Decimal(absent * 100) / Decimal(possible)
        rate = f"{word} {pct(absence)}% ({absent}/{possible} sessions) over {terms_span(rows)}"
        if p.get("absence_below_pct") is not None:
            limit = p["absence_below_pct"]
            ok = absence < limit
            parts.append((ok, f"{child.ref} {rate}, threshold < {num(limit)}%"))
        elif p.get("attendance_at_least_pct") is not None:
            limit = p["attendance_at_least_pct"]
            present = 100 - absence
            ok = present >= limit
            parts.append((ok, f"{child.ref} attendance {pct(present)}% ({possible - absent}/"
                              f"{possible} sessions) over {terms_span(rows)}, "
                              f"threshold >= {num(limit)}%"))
        else:
            points = p["attendance_improvement_points"]
            if attached is None:
                parts.append((False, f"{child.ref}: {NO_ATTACHMENT}"))
                continue
            base_rows = latest_terms(ev, child.ref, attached)
            if len(base_rows) < n:
                parts.append((False, f"{child.ref} has {len(base_rows)} term(s) recorded ending "
                                     f"by attachment on {attached} (needs {n} as a baseline)"))
                used += base_rows
                continue
            base_rows = base_rows[-n:]
            used += base_rows
            b_absent, b_possible = _absence(base_rows, unauth)
            if b_possible == 0:
                parts.append((False, f"{child.ref} has no sessions possible in the baseline "
                                     f"{terms_span(base_rows)}"))
                continue
            before = 100 - Decimal(b_absent * 100) / Decimal(b_possible)
            after = 100 - absence
            gain = after - before
            ok = gain >= points
            parts.append((ok, f"{child.ref} attendance {pct(before)}% over "
                              f"{terms_span(base_rows)} -> {pct(after)}% over "
                              f"{terms_span(rows)}: {pct(gain)} points, needs at least "
                              f"{num(points)} points"))
    met, reason = combine(parts, "every school-age child passes")
    return MeasureResult(met, reason, ids(used))


# --------------------------------------------------------------------------------------------
# exclusions


def exclusions(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    n: int = p["terms"]
    below = p.get("fixed_term_below")
    children = school_age_children(ev, as_of)
    if not children:
        return MeasureResult(False, f"no school-age child (aged 5 to 15) on {as_of}: "
                                    "no exclusions record to measure")
    used: list[AttendanceTerm] = []
    parts: list[tuple[bool, str]] = []
    for child, rows in children_terms(ev, children, n, as_of, parts, used):
        fixed = sum(t.fixed_term_exclusions for t in rows)
        permanent = [t for t in rows if t.permanent_exclusion]
        ok = True
        text = f"{child.ref} over {terms_span(rows)}: {fixed} fixed-term exclusion(s)"
        if below is not None:
            ok = fixed < below
            text += f" (needs fewer than {below})"
        if p["no_permanent"]:
            if permanent:
                ok = False
                text += f", permanently excluded in term {permanent[0].term_start}.." \
                        f"{permanent[0].term_end}"
            else:
                text += ", no permanent exclusion"
        parts.append((ok, text))
    met, reason = combine(parts, "every school-age child passes")
    return MeasureResult(met, reason, ids(used))


# --------------------------------------------------------------------------------------------
# incident_reduction and no_incidents


def incident_reduction(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    kinds: tuple[str, ...] = p["kinds"]
    per: str = p["per"]
    need: Decimal | int = p["reduction_pct"]
    attached = attachment_date(ev)
    if attached is None:
        return MeasureResult(False, NO_ATTACHMENT)
    w_start = months_before(as_of, p["window_months"])
    b_start = months_before(attached, p["baseline_months"])
    what = "/".join(kinds)
    relevant = [i for i in ev.incidents if i.kind in kinds]
    if per == "family":
        units: list[tuple[str, set[str] | None]] = [("family", None)]
    else:
        units = [(m.ref, {m.ref}) for m in unit_members(ev, per, as_of)]

    def of(refs: set[str] | None, start: date, end: date) -> list[Incident]:
        return [i for i in relevant if (refs is None or i.member_ref in refs)
                and in_window(i.occurred_on, start, end)]

    windows = (f"{what} in {span(w_start, as_of)} vs baseline {span(b_start, attached)}")
    used: list[Incident] = []
    parts: list[tuple[bool, str]] = []
    serious: list[Incident] = []
    with_baseline = 0
    for name, refs in units:
        base = of(refs, b_start, attached)
        now = of(refs, w_start, as_of)
        used += base + now
        serious += [i for i in now if i.serious]
        b, w = len(base), len(now)
        if b == 0 and w == 0:
            continue
        if b == 0:
            parts.append((False, f"{name}: 0 -> {w}, an increase"))
            continue
        with_baseline += 1
        fall = Decimal((b - w) * 100) / Decimal(b)
        ok = (b - w) * 100 >= need * b
        parts.append((ok, f"{name}: {b} -> {w}, down {pct(fall)}% (needs at least {num(need)}%)"))
    if with_baseline == 0 and not parts:
        return MeasureResult(False, f"no {what} by {unit_label(per)} in the baseline "
                                    f"{span(b_start, attached)}: nothing to reduce", ids(used))
    met, reason = combine(parts, "reduced")
    if with_baseline == 0:
        met = False
    if p["no_serious"]:
        if serious:
            met = False
            s = serious[0]
            reason += f"; serious {s.kind} by {s.member_ref} on {s.occurred_on}"
        else:
            reason += "; no serious incident"
    return MeasureResult(met, f"{windows}: {reason}", ids(used))


def no_incidents(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    kinds: tuple[str, ...] = p["kinds"]
    per: str = p["per"]
    start = months_before(as_of, p["months"])
    refs = None if per == "family" else {m.ref for m in unit_members(ev, per, as_of)}
    found = sorted((i for i in ev.incidents if i.kind in kinds
                    and (refs is None or i.member_ref in refs)
                    and in_window(i.occurred_on, start, as_of)), key=lambda i: i.occurred_on)
    what = "/".join(kinds)
    if not found:
        return MeasureResult(True, f"no {what} by {unit_label(per)} in {span(start, as_of)}")
    listed = ", ".join(f"{i.kind} by {i.member_ref} on {i.occurred_on}" for i in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return MeasureResult(False, f"{len(found)} {what} by {unit_label(per)} in "
                                f"{span(start, as_of)}: {listed}{more}", ids(found))


# --------------------------------------------------------------------------------------------
# continuous_employment and progress_to_work


def _open_on(spell: EmploymentSpell, day: date) -> bool:
    return spell.start_on <= day and (spell.end_on is None or spell.end_on >= day)


def _subtract(ranges: list[tuple[date, date]],
              holes: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """The days of ``ranges`` outside every hole (inclusive day ranges, merged)."""
    out: list[tuple[date, date]] = []
    for start, end in merge_spells(ranges):
        pieces = [(start, end)]
        for h0, h1 in merge_spells(holes):
            pieces = [p for lo, hi in pieces for p in
                      ((lo, min(hi, h0 - ONE_DAY)), (max(lo, h1 + ONE_DAY), hi)) if p[0] <= p[1]]
        out += pieces
    return merge_spells(out)


NO_BENEFIT = "none"  # the rule for a member with no out-of-work benefit claim at attachment


def _claimants(ev: FamilyEvidence, attached: date, rules: Mapping[str, Any]
               ) -> list[tuple[str, str | None, list[EmploymentSpell]]]:
    """(member, benefit, records) for each member the rules apply to: every open benefit claim
    on the attachment date, and with a ``none`` rule each other member not in work that day."""
    out: list[tuple[str, str | None, list[EmploymentSpell]]] = []
    claims = [s for s in ev.employment if s.kind == "benefit_claim" and _open_on(s, attached)]
    for claim in claims:
        out.append((claim.member_ref, claim.benefit, [claim]))
    if NO_BENEFIT in rules:
        claiming = {c.member_ref for c in claims}
        working = {s.member_ref for s in ev.employment if s.kind == "employment"
                   and _open_on(s, attached)}
        for m in ev.members:
            if m.ref not in claiming and m.ref not in working:
                out.append((m.ref, NO_BENEFIT, []))
    return out


def continuous_employment(p: Mapping[str, Any], ev: FamilyEvidence,
                          as_of: date) -> MeasureResult:
    attached = attachment_date(ev)
    if attached is None:
        return MeasureResult(False, NO_ATTACHMENT)
    rules = {r.benefit: r for r in p["rules"]}
    claimants = _claimants(ev, attached, rules)
    if not claimants:
        return MeasureResult(False, f"no member had an open out-of-work benefit claim on the "
                                    f"attachment date {attached}")
    min_hours = p.get("min_hours_per_week")
    off: bool = p["off_benefits"]
    in_work: tuple[str, ...] = p["in_work_benefits"]
    moved_months = p.get("moved_within_months")
    parts: list[tuple[bool, str]] = []
    used: list[EmploymentSpell] = []
    for ref, benefit, records in claimants:
        rule = rules.get(NO_BENEFIT) if benefit == NO_BENEFIT else \
            rules.get(benefit or "*") or rules.get("*")
        used += records
        who = (f"{ref} (no out-of-work benefit claim and not in work on {attached})"
               if benefit == NO_BENEFIT else
               f"{ref} (claiming {benefit or 'an unnamed benefit'} on {attached})")
        if rule is None:
            parts.append((False, f"{who}: the policy has no rule for this benefit"))
            continue
        jobs = [s for s in ev.employment if s.member_ref == ref
                and s.kind == "employment" and s.start_on <= as_of
                and (min_hours is None or (s.hours_per_week or 0) >= min_hours)]
        used += jobs
        ranges = [(s.start_on, min(s.end_on or as_of, as_of)) for s in jobs]
        hours = f" of at least {min_hours} hours a week" if min_hours is not None else ""
        if off:
            open_claims = [s for s in ev.employment if s.member_ref == ref
                           and s.kind == "benefit_claim" and s.start_on <= as_of
                           and s.benefit not in in_work]
            used += open_claims
            ranges = _subtract(ranges, [(s.start_on, min(s.end_on or as_of, as_of))
                                        for s in open_claims])
            allowed = f" (may stay on {'/'.join(in_work)})" if in_work else ""
            hours += f" and off out-of-work benefits{allowed}"
        if rule.within_weeks is not None:
            first = weeks_before(as_of, rule.within_weeks) + ONE_DAY
            worked = days_covered(ranges, first, as_of) // 7
            ok = worked >= rule.weeks
            text = (f"{who}: {worked} whole week(s) in work{hours} in the "
                    f"{rule.within_weeks} weeks {first}..{as_of} (needs {rule.weeks})")
            moved = next((max(s, first) for s, e in merge_spells(ranges) if e >= first), None)
            earliest = min(first - ONE_DAY, months_before(as_of, moved_months)) \
                if moved_months is not None else None
        else:
            recent = as_of - timedelta(days=6)
            runs = [r for r in merge_spells(ranges) if r[1] >= recent]
            if not runs:
                parts.append((False, f"{who}: not in work{hours} in the week {recent}..{as_of} "
                                     f"(needs {rule.weeks} continuous weeks)"))
                continue
            moved, end = runs[-1]
            weeks = ((end - moved).days + 1) // 7
            ok = weeks >= rule.weeks
            text = (f"{who}: in continuous work{hours} {moved}..{end}, {weeks} whole "
                    f"week(s) (needs {rule.weeks})")
            earliest = months_before(as_of, moved_months) if moved_months is not None else None
        if earliest is not None and moved is not None:
            fresh = moved > earliest
            ok = ok and fresh
            text += (f"; moved into work on {moved}, "
                     f"{'within' if fresh else 'before'} {span(earliest, as_of)}")
        parts.append((ok, text))
    met = any(ok for ok, _ in parts)
    ordered = [t for ok, t in parts if ok] + [t for ok, t in parts if not ok]
    return MeasureResult(met, ("met: " if met else "not met: ") + "; ".join(ordered), ids(used))


def progress_to_work(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    attached = attachment_date(ev)
    if attached is None:
        return MeasureResult(False, NO_ATTACHMENT)
    kinds: tuple[str, ...] = p["kinds"]
    need: int = p["weeks"]
    within = p.get("started_within_months")
    first = attached
    if within is not None:
        first = max(attached, months_before(as_of, within) + ONE_DAY)
    spells = sorted((s for s in ev.employment if s.kind in kinds
                     and first <= s.start_on <= as_of), key=lambda s: s.start_on)
    what = "/".join(kinds)
    if not spells:
        since = (f"in the last {within} months and since attachment ({first}..{as_of})"
                 if within is not None else f"between attachment on {attached} and {as_of}")
        older = [s for s in ev.employment if s.kind in kinds and attached <= s.start_on < first]
        late = f" (the latest started on {older[-1].start_on})" if older else ""
        return MeasureResult(False, f"no {what} started {since}{late}", ids(older[-1:]))
    parts: list[tuple[bool, str]] = []
    for s in spells:
        end = min(s.end_on or as_of, as_of)
        weeks = ((end - s.start_on).days + 1) // 7
        completed = s.end_on is not None and s.end_on <= as_of
        state = f"completed {s.end_on}" if completed else "ongoing"
        ok = weeks >= need or (p["completed_counts"] and completed)
        parts.append((ok, f"{s.member_ref} {s.kind} from {s.start_on}, {state}: {weeks} whole "
                          f"week(s) attended (needs {need}"
                          + (" or completion)" if p["completed_counts"] else ")")))
    met = any(ok for ok, _ in parts)
    ordered = [t for ok, t in parts if ok] + [t for ok, t in parts if not ok]
    return MeasureResult(met, ("met: " if met else "not met: ") + "; ".join(ordered), ids(spells))


# --------------------------------------------------------------------------------------------
# score_change


def _baseline(scores: list[Score], attached: date) -> Score | None:
    """The first score on/after attachment other than the latest, else the latest before it."""
    latest = scores[-1]
    after = [s for s in scores[:-1] if s.assessed_on >= attached]
    if after:
        return after[0]
    before = [s for s in scores if s.assessed_on < attached and s is not latest]
    return before[-1] if before else None


def _held_since(scores: list[Score], base: Score, p: Mapping[str, Any], up: bool) -> date:
    """The date of the first score of the unbroken run of improved scores that ends with the
    latest (a score holds until the next one): from then on there was no re-escalation."""
    need = p["min_improvement"]

    def improved(s: Score) -> bool:
        change = (s.score - base.score) if up else (base.score - s.score)
        above, below = p.get("to_above"), p.get("to_below")
        return (change >= need and (above is None or s.score > above)
                and (below is None or s.score < below))

    since = scores[-1].assessed_on
    for s in reversed(scores):
        if s is base or s.assessed_on <= base.assessed_on or not improved(s):
            break
        since = s.assessed_on
    return since


def score_change(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    attached = attachment_date(ev)
    if attached is None:
        return MeasureResult(False, NO_ATTACHMENT)
    instrument: str = p["instrument"]
    need = p["min_improvement"]
    up = p["direction"] == "increase"
    by_member: dict[str, list[Score]] = {}
    for s in sorted((s for s in ev.scores if s.instrument == instrument
                     and s.assessed_on <= as_of), key=lambda s: s.assessed_on):
        by_member.setdefault(s.member_ref, []).append(s)
    if not by_member:
        return MeasureResult(False, f"no {instrument} score recorded by {as_of}")
    parts: list[tuple[bool, str]] = []
    used: list[Score] = []
    for ref, scores in by_member.items():
        base = _baseline(scores, attached)
        if base is None:
            parts.append((False, f"{ref}: one {instrument} score ({scores[0].score} on "
                                 f"{scores[0].assessed_on}), nothing to compare"))
            used += scores
            continue
        last = scores[-1]
        used += [base, last]
        change = (last.score - base.score) if up else (base.score - last.score)
        ok = change >= need
        text = (f"{ref} {instrument} {base.score} ({base.assessed_on}) -> {last.score} "
                f"({last.assessed_on}): {'up' if up else 'down'} {change}, needs "
                f"{'up' if up else 'down'} at least {num(need)}")
        checks = (("from_above", base.score, "starting above", lambda v, t: v > t),
                  ("from_below", base.score, "starting below", lambda v, t: v < t),
                  ("to_above", last.score, "ending above", lambda v, t: v > t),
                  ("to_below", last.score, "ending below", lambda v, t: v < t))
        for name, value, words, test in checks:
            limit = p.get(name)
            if limit is not None:
                passed = test(value, limit)
                ok = ok and passed
                text += f"; {words} {num(limit)}: {'yes' if passed else 'no'}"
        gap = p.get("after_months")
        if gap is not None:
            due = months_before(base.assessed_on, -gap)
            late_enough = last.assessed_on >= due
            ok = ok and late_enough
            text += (f"; latest score {gap} months or more after the baseline (from {due}): "
                     f"{'yes' if late_enough else 'no'}")
        held = p.get("held_months")
        if ok and held is not None:
            since = _held_since(scores, base, p, up)
            start = months_before(as_of, held)
            used += [s for s in scores if s.assessed_on >= since]
            kept = since <= start
            ok = kept
            text += (f"; improved since {since} with no re-escalation, "
                     f"{'held' if kept else 'not yet held'} throughout {span(start, as_of)} "
                     f"(needs {held} months)")
        parts.append((ok, text))
    met = any(ok for ok, _ in parts)
    ordered = [t for ok, t in parts if ok] + [t for ok, t in parts if not ok]
    return MeasureResult(met, ("met: " if met else "not met: ") + "; ".join(ordered), ids(used))


# --------------------------------------------------------------------------------------------
# status_step_down


def _level_on(rows: list[CareStatus], day: date) -> tuple[int, str]:
    open_rows = [r for r in rows if r.start_on <= day and (r.end_on is None or r.end_on >= day)]
    if not open_rows:
        return 0, "none"
    top = max(open_rows, key=lambda r: CARE_LEVEL[r.status])
    return CARE_LEVEL[top.status], top.status


def status_step_down(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    attached = attachment_date(ev)
    if attached is None:
        return MeasureResult(False, NO_ATTACHMENT)
    start = months_before(as_of, p["months"])
    by_member: dict[str, list[CareStatus]] = {}
    for r in ev.care_status:
        if r.start_on <= as_of:
            by_member.setdefault(r.member_ref, []).append(r)
    parts: list[tuple[bool, str]] = []
    used: list[CareStatus] = []
    for ref, rows in by_member.items():
        level, status = _level_on(rows, attached)
        if status not in p["from_statuses"]:
            continue
        used += rows
        now_level, now_status = _level_on(rows, as_of)
        overlapping = [r for r in rows if r.start_on <= as_of
                       and (r.end_on is None or r.end_on > start)]
        peak = max((CARE_LEVEL[r.status] for r in overlapping), default=0)
        ups = [r for r in rows if start < r.start_on <= as_of
               and _level_on(rows, r.start_on)[0] > _level_on(rows, r.start_on - ONE_DAY)[0]]
        text = f"{ref} {status} on attachment {attached} -> {now_status} on {as_of}"
        if now_level >= level:
            parts.append((False, text + ": no step down"))
        elif peak >= level:
            parts.append((False, text + f": still {status} or higher within "
                                        f"{span(start, as_of)}, not yet stepped down for "
                                        f"{p['months']} months"))
        elif ups:
            parts.append((False, text + f": re-escalated to {ups[0].status} on "
                                        f"{ups[0].start_on}"))
        else:
            parts.append((True, text + f", below {status} with no step up throughout "
                                       f"{span(start, as_of)}"))
    if not parts:
        return MeasureResult(False, f"no child had a status of {'/'.join(p['from_statuses'])} "
                                    f"open on the attachment date {attached}")
    met = any(ok for ok, _ in parts)
    ordered = [t for ok, t in parts if ok] + [t for ok, t in parts if not ok]
    return MeasureResult(met, ("met: " if met else "not met: ") + "; ".join(ordered), ids(used))


# --------------------------------------------------------------------------------------------
# attestation


def attestation(p: Mapping[str, Any], ev: FamilyEvidence, as_of: date) -> MeasureResult:
    code: str = p["outcome"]
    months = p.get("within_months")
    start = months_before(as_of, months) if months is not None else None
    found = sorted((a for a in ev.attestations if a.outcome == code and a.attested_on <= as_of),
                   key=lambda a: a.attested_on)
    after = p.get("after_attachment_months")
    if after is not None:
        attached = attachment_date(ev)
        if attached is None:
            return MeasureResult(False, NO_ATTACHMENT)
        earliest = months_before(attached, -after)
        early = [a for a in found if a.attested_on < earliest]
        found = [a for a in found if a.attested_on >= earliest]
        if not found:
            before = f" (the latest, on {early[-1].attested_on}, is earlier)" if early else ""
            return MeasureResult(False, f"no attestation '{code}' dated {after} months or more "
                                        f"after attachment on {attached} (from {earliest})"
                                        f"{before}", ids(early[-1:]))
    window = f" in {span(start, as_of)}" if start is not None else f" by {as_of}"
    fresh = [a for a in found if start is None or a.attested_on > start]
    if not fresh:
        older = f" (the latest, on {found[-1].attested_on}, is too old)" if found else ""
        return MeasureResult(False, f"no attestation '{code}'{window}{older}", ids(found[-1:]))
    a = fresh[-1]
    # The evidence reference is free text about the family: it stays in the (encryptable)
    # attestation event, and the decision, which outlives an erasure, names that event.
    ref = f" ({a.event_id})" if a.event_id else ""
    return MeasureResult(True, f"attestation '{code}' by {a.practitioner} on {a.attested_on}"
                               f"{ref}", ids([a]))


# --------------------------------------------------------------------------------------------
# The registry


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("attendance", (
        Param("terms", "int", required=True, minimum=1),
        Param("absence_below_pct", "number"),
        Param("attendance_at_least_pct", "number"),
        Param("attendance_improvement_points", "number"),
        Param("unauthorised_only", "bool", default=False),
        Param("settings", "choices", default=("school", "pru", "alternative"), choices=SETTINGS),
    ), attendance, one_of=(("absence_below_pct", "attendance_at_least_pct",
                            "attendance_improvement_points"),)),
    Kind("exclusions", (
        Param("terms", "int", required=True, minimum=1),
        Param("fixed_term_below", "int", minimum=1),
        Param("no_permanent", "bool", default=True),
    ), exclusions),
    Kind("incident_reduction", (
        Param("kinds", "choices", required=True, choices=INCIDENT_KINDS),
        Param("per", "choice", required=True, choices=PER_UNITS),
        Param("reduction_pct", "number", required=True),
        Param("window_months", "int", required=True, minimum=1),
        Param("baseline_months", "int", required=True, minimum=1),
        Param("no_serious", "bool", default=False),
    ), incident_reduction),
    Kind("no_incidents", (
        Param("kinds", "choices", required=True, choices=INCIDENT_KINDS),
        Param("months", "int", required=True, minimum=1),
        Param("per", "choice", default="family", choices=PER_UNITS),
    ), no_incidents),
    Kind("continuous_employment", (
        Param("rules", "rules", required=True),
        Param("min_hours_per_week", "int", minimum=1),
        Param("off_benefits", "bool", default=False),
        Param("in_work_benefits", "choices", default=()),
        Param("moved_within_months", "int", minimum=1),
    ), continuous_employment),
    Kind("progress_to_work", (
        Param("kinds", "choices", required=True, choices=PROGRESS_KINDS),
        Param("weeks", "int", required=True, minimum=1),
        Param("completed_counts", "bool", default=True),
        Param("started_within_months", "int", minimum=1),
    ), progress_to_work),
    Kind("score_change", (
        Param("instrument", "str", required=True),
        Param("min_improvement", "number", required=True),
        Param("direction", "choice", default="increase", choices=("increase", "decrease")),
        Param("from_above", "number"),
        Param("to_above", "number"),
        Param("from_below", "number"),
        Param("to_below", "number"),
        Param("held_months", "int", minimum=1),
        Param("after_months", "int", minimum=1),
    ), score_change),
    Kind("status_step_down", (
        Param("months", "int", required=True, minimum=1),
        Param("from_statuses", "choices", default=("lac", "cp", "cin"), choices=CARE_STATUSES),
    ), status_step_down),
    Kind("attestation", (
        Param("outcome", "str", required=True),
        Param("within_months", "int", minimum=1),
        Param("after_attachment_months", "int", minimum=1),
    ), attestation),
)}


# --------------------------------------------------------------------------------------------
# Evaluating a measure tree


def evaluate_measure(measure: Measure, evidence: FamilyEvidence, as_of: date) -> MeasureResult:
    """Evaluate a leaf or combination at ``as_of``, resolving dated parameters on that day.

    Raises :class:`~claimledger.errors.EvaluationError` when a dated parameter has no value in
    force on ``as_of``.
    """
    if isinstance(measure, Leaf):
        kind = KINDS[measure.kind]
        params = kind.with_defaults(measure.resolved(as_of))
        result = kind.func(params, evidence, as_of)
        dated = measure.dated()
        note = ""
        if dated:
            notes = []
            for name, d in dated.items():
                entry = d.entry_at(as_of)
                notes.append(f"{name} = {num(entry.value)} in force from {entry.start}")
            note = " [" + "; ".join(notes) + "]"
        return MeasureResult(result.met, f"{measure.kind}: {result.reason}{note}",
                             result.evidence)
    results = [evaluate_measure(m, evidence, as_of) for m in measure.items]
    met_count = sum(r.met for r in results)
    if isinstance(measure, AllOf):
        met = met_count == len(results)
        head = f"all of ({met_count} of {len(results)} met)"
        used = results
    elif isinstance(measure, AtLeast):
        met = met_count >= measure.n
        head = f"at least {measure.n} of ({met_count} of {len(results)} met)"
        used = [r for r in results if r.met] if met else results
    else:
        met = met_count > 0
        head = f"any of ({met_count} of {len(results)} met)"
        used = [r for r in results if r.met] if met else results
    body = "; ".join(f"[{'met' if r.met else 'not met'}] {r.reason}" for r in results)
    evidence_ids: dict[str, None] = {}
    for r in used:
        for e in r.evidence:
            evidence_ids.setdefault(e, None)
    return MeasureResult(met, f"{head}: {body}", tuple(evidence_ids))
