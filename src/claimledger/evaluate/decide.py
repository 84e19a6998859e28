"""The pure claim decision: a policy, a family's evidence and a review date in; a verdict out.

Nothing here reads the ledger or a clock: the caller chooses the evidence (by valid and
transaction time) and the policy, so the same inputs always give the same decision and a
claim can be replayed years later from its registered policy bytes and its events. The
verdict carries the reasons a person can act on ("essential missing: whole-family assessment")
and the ids of every record it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from ..policy.evidence import Attachment, FamilyEvidence, Indicator, Judgement
from ..policy.measures import MeasureResult, evaluate_measure
from ..policy.model import Outcome, Payment, Policy, Problem

ROUTES = ("progress", "employment")
ESSENTIAL_NAMES = {
    "attachment": "attachment",
    "lead_professional": "lead professional",
    "assessment": "whole-family assessment",
    "plan": "family action plan",
}


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    id: str
    problem: str
    title: str
    met: bool
    reason: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "problem": self.problem, "title": self.title, "met": self.met,
                "reason": self.reason, "evidence": list(self.evidence)}


@dataclass(frozen=True, slots=True)
class ProblemResult:
    problem: str
    title: str
    stage: str  # the earliest stage it was evidenced at: identification, else engagement
    required: bool  # evidenced at a stage the claim rule says must be met
    met: bool
    reason: str
    indicators: tuple[str, ...]  # indicator ids recorded for the family
    outcomes: tuple[OutcomeResult, ...]
    evidence: tuple[str, ...] = ()  # the indicator records

    def to_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "title": self.title, "stage": self.stage,
                "required": self.required, "met": self.met, "reason": self.reason,
                "indicators": list(self.indicators), "evidence": list(self.evidence),
                "outcomes": [o.to_dict() for o in self.outcomes]}


@dataclass(frozen=True, slots=True)
class Decision:
    family_ref: str
    policy_id: str
    policy_sha256: str
    as_of: date
    eligible: bool
    problems: tuple[ProblemResult, ...]
    route: str | None
    claimable: bool
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    employment: MeasureResult | None = None  # the employment route's measure, when it has one
    payment: Payment | None = None
    known_at: str | None = None
    notes: tuple[str, ...] = field(default=())

    def outcome(self, outcome_id: str) -> OutcomeResult | None:
        for p in self.problems:
            for o in p.outcomes:
                if o.id == outcome_id:
                    return o
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``evaluate --json`` and ``claim explain --json``: no floats."""
        return {
            "family_ref": self.family_ref,
            "policy_id": self.policy_id,
            "policy_sha256": self.policy_sha256,
            "as_of": self.as_of.isoformat(),
            "known_at": self.known_at,
            "eligible": self.eligible,
            "problems": [p.to_dict() for p in self.problems],
            "employment_route": None if self.employment is None else {
                "met": self.employment.met, "reason": self.employment.reason,
                "evidence": list(self.employment.evidence)},
            "route": self.route,
            "claimable": self.claimable,
            "reasons": list(self.reasons),
            "evidence": list(self.evidence),
            "payment": None if self.payment is None else payment_dict(self.payment),
            "notes": list(self.notes),
        }


def payment_dict(p: Payment) -> dict[str, Any]:
    """A payment as the decision records it. A rate picked by the claim's date (the only basis
    before rates could name one) keeps its three keys, so claims recorded then replay
    identically; a rate picked by the attachment date says so, and a note says when the total
    capped it."""
    out: dict[str, Any] = {"item": p.item, "amount": str(p.amount), "section": p.section}
    if p.basis != "claim_date":
        out["basis"] = p.basis
    if p.note and p.note.startswith(CAPPED):
        out["note"] = p.note
    return out


CAPPED = "capped by the family total"


class _Ids:
    """Evidence ids in first-use order, without repeats."""

    def __init__(self) -> None:
        self.seen: dict[str, None] = {}

    def add(self, ids: tuple[str, ...] | list[str]) -> None:
        for i in ids:
            if i:
                self.seen.setdefault(i, None)

    def tuple(self) -> tuple[str, ...]:
        return tuple(self.seen)


def _double_funding(policy: Policy, ev: FamilyEvidence, as_of: date) -> str | None:
    """Why the double-funding exclusion applies (a spell of an excluded kind during the
    intervention), or None."""
    kinds = policy.claim.double_funding_exclusion
    if not kinds or ev.attachment is None:
        return None
    start = ev.attachment.attached_on
    for s in sorted(ev.employment, key=lambda s: s.start_on):
        if s.kind in kinds and s.start_on <= as_of and (s.end_on is None or s.end_on >= start):
            end = s.end_on.isoformat() if s.end_on else "ongoing"
            return (f"double funding: {s.member_ref} on {s.kind} {s.start_on}..{end} during "
                    f"the intervention ({start}..{as_of})")
    return None


def _double_funding_ids(policy: Policy, ev: FamilyEvidence, as_of: date) -> tuple[str, ...]:
    kinds = policy.claim.double_funding_exclusion
    if ev.attachment is None:
        return ()
    start = ev.attachment.attached_on
    return tuple(s.event_id for s in ev.employment if s.kind in kinds and s.start_on <= as_of
                 and (s.end_on is None or s.end_on >= start) and s.event_id)


def evaluate_outcome(policy: Policy, outcome: Outcome, evidence: FamilyEvidence,
                     as_of: date) -> OutcomeResult:
    """One outcome at ``as_of``, with the claim rule's double-funding exclusion applied."""
    result = evaluate_measure(outcome.measure, evidence, as_of)
    met, reason, used = result.met, result.reason, result.evidence
    if outcome.id in policy.claim.progress_to_work_outcomes:
        blocked = _double_funding(policy, evidence, as_of)
        if blocked:
            met = False
            reason = f"{blocked}, so outcome {outcome.id} cannot count; {reason}"
            used = used + _double_funding_ids(policy, evidence, as_of)
    return OutcomeResult(outcome.id, outcome.problem, outcome.title, met, reason, used)


def evaluate_outcomes(policy: Policy, evidence: FamilyEvidence,
                      as_of: date) -> dict[str, OutcomeResult]:
    """Every outcome of the policy, whether or not the family has its problem (for tests and
    for showing what a family would need)."""
    return {o.id: evaluate_outcome(policy, o, evidence, as_of) for o in policy.outcomes}


def _problem_verdict(problem: Problem, recorded: list[str],
                     results: list[OutcomeResult], outcomes: tuple[Outcome, ...]
                     ) -> tuple[bool, str]:
    if not results:
        return False, "the policy defines no outcome for this problem"
    met_ids = [r.id for r in results if r.met]
    if problem.met_when == "any_outcome":
        if met_ids:
            return True, f"met by outcome {', '.join(met_ids)}"
        return False, f"no met outcome (of {', '.join(r.id for r in results)})"
    if problem.met_when == "all_outcomes":
        missing = [r.id for r in results if not r.met]
        if not missing:
            return True, f"every outcome met ({', '.join(met_ids)})"
        return False, f"outcome {', '.join(missing)} not met (all are required)"
    parts: list[str] = []
    ok = True
    for ind in recorded:
        answering = [o.id for o in outcomes if o.answers_indicator(ind)]
        hit = [i for i in answering if i in met_ids]
        if hit:
            parts.append(f"indicator {ind} answered by {', '.join(hit)}")
        elif answering:
            ok = False
            parts.append(f"indicator {ind} not answered: outcome {', '.join(answering)} not met")
        else:
            ok = False
            parts.append(f"indicator {ind} has no outcome that answers it")
    failed = [p for p in parts if "answered by" not in p]
    return ok, "; ".join(failed if failed else parts)


def _essential_date(att: Attachment | None, name: str, as_of: date) -> date | None:
    """The date of an essential an attestation is dated against (attachment, assessment,
    plan), when it is recorded by ``as_of``."""
    if att is None:
        return None
    day = {"attachment": att.attached_on, "assessment": att.assessment_on,
           "plan": att.plan_on}[name]
    return day if day is not None and day <= as_of else None


def _latest(judgements: list[Judgement]) -> Judgement | None:
    return max(judgements, key=lambda j: j.judged_on) if judgements else None


def decide(policy: Policy, evidence: FamilyEvidence, as_of: date,
           known_at: str | None = None) -> Decision:
    """Eligibility, each problem's outcomes, the route and whether a claim can be made."""
    ids = _Ids()
    reasons: list[str] = []
    notes: list[str] = list(evidence.notes)
    if not policy.in_force(as_of):
        reasons.append(f"policy {policy.id} is not in force on {as_of} "
                       f"(effective {policy.period()})")

    # --- eligibility: distinct headline problems evidenced at the counted stages ------------
    known = [i for i in evidence.indicators if i.observed_on <= as_of]
    for i in known:
        if policy.problem(i.problem) is None:
            notes.append(f"indicator {i.problem}.{i.indicator} is for a problem this policy "
                         "does not define; ignored")
    known = [i for i in known if policy.problem(i.problem) is not None]
    rule = policy.eligibility
    counted = sorted({i.problem for i in known if i.stage in rule.stages
                      and (rule.problems is None or i.problem in rule.problems)})
    eligible = len(counted) >= rule.min_problems
    at = "/".join(rule.stages)
    if not eligible:
        listed = f" ({', '.join(counted)})" if counted else ""
        reasons.append(f"only {len(counted)} headline problem{'s' if len(counted) != 1 else ''}"
                       f" at {at}{listed} (needs {rule.min_problems})")
    ids.add([i.event_id for i in known if i.problem in counted and i.stage in rule.stages])

    # --- problems and their outcomes ---------------------------------------------------------
    by_problem: dict[str, list[Indicator]] = {}
    for i in known:
        by_problem.setdefault(i.problem, []).append(i)
    problems: list[ProblemResult] = []
    unmet: list[str] = []
    for problem in policy.problems:
        inds = by_problem.get(problem.id)
        if not inds:
            continue
        for i in inds:
            if problem.indicator(i.indicator) is None:
                notes.append(f"indicator {i.problem}.{i.indicator} is not an indicator of the "
                             "policy; no outcome answers it unless one answers every indicator")
        stage = "identification" if any(i.stage == "identification" for i in inds) \
            else "engagement"
        required = any(i.stage in policy.claim.must_meet_stages for i in inds)
        outcomes = policy.outcomes_for(problem.id)
        results = [evaluate_outcome(policy, o, evidence, as_of) for o in outcomes]
        recorded = list(dict.fromkeys(i.indicator for i in sorted(inds,
                                                                   key=lambda i: i.observed_on)))
        met, why = _problem_verdict(problem, recorded, results, outcomes)
        ind_ids = tuple(i.event_id for i in inds if i.event_id)
        problems.append(ProblemResult(problem.id, problem.title, stage, required, met, why,
                                      tuple(recorded), tuple(results), ind_ids))
        if required:
            ids.add(ind_ids)
            for r in results:
                if r.met:
                    ids.add(r.evidence)
            if not met:
                if problem.met_when == "any_outcome":
                    unmet.append(f"{problem.id} identified at {stage} has no met outcome")
                else:
                    unmet.append(f"{problem.id} identified at {stage} is not met: {why}")
    required_problems = [p for p in problems if p.required]

    # --- the claim rule ----------------------------------------------------------------------
    claim = policy.claim
    blockers: list[str] = []  # what stops any route
    att = evidence.attachment
    if att is None:
        blockers.append("no attachment recorded: the family was never attached to the "
                        "programme")
    else:
        ids.add([att.event_id])
        for name in claim.essentials:
            present = {
                "lead_professional": bool(att.lead_professional and att.lead_professional.strip()),
                "assessment": att.assessment_on is not None and att.assessment_on <= as_of,
                "plan": att.plan_on is not None and att.plan_on <= as_of,
            }[name]
            if not present:
                blockers.append(f"essential missing: {ESSENTIAL_NAMES[name]}")
    after = dict(claim.essential_attestations_after)
    for code in claim.essential_attestations:
        found = sorted((a for a in evidence.attestations if a.outcome == code
                        and a.attested_on <= as_of), key=lambda a: a.attested_on)
        anchor = after.get(code)
        since = _essential_date(att, anchor, as_of) if anchor else None
        if anchor and since is None:
            blockers.append(f"essential missing: attestation '{code}' (it must be dated on or "
                            f"after the {ESSENTIAL_NAMES.get(anchor, anchor)}, which is not "
                            "recorded)")
            continue
        fresh = [a for a in found if since is None or a.attested_on >= since]
        if fresh:
            ids.add([fresh[-1].event_id])
        elif found:
            ids.add([found[-1].event_id])
            blockers.append(f"essential missing: attestation '{code}' dated on or after the "
                            f"{ESSENTIAL_NAMES.get(anchor or '', anchor)} ({since}); the latest "
                            f"is dated {found[-1].attested_on}")
        else:
            blockers.append(f"essential missing: attestation '{code}'")

    progress_reasons: list[str] = []
    if not required_problems:
        stages = "/".join(claim.must_meet_stages)
        progress_reasons.append(f"no problem recorded at {stages} for the progress route to "
                                "rest on")
    progress_reasons += unmet
    if claim.judgement_required:
        progress_reasons += _judgement(claim.judgement_flags, required_problems, evidence,
                                       as_of, ids)

    employment: MeasureResult | None = None
    employment_reasons: list[str] = []
    if claim.employment_route is not None:
        employment = evaluate_measure(claim.employment_route.measure, evidence, as_of)
        blocked = _double_funding(policy, evidence, as_of)
        if blocked:
            employment = MeasureResult(False, f"{blocked}, so the employment route cannot "
                                              f"count; {employment.reason}",
                                       employment.evidence
                                       + _double_funding_ids(policy, evidence, as_of))
        if not employment.met:
            employment_reasons.append(f"employment route not met: {employment.reason}")

    base_ok = eligible and policy.in_force(as_of) and not blockers
    route: str | None = None
    if base_ok and not progress_reasons:
        route = "progress"
    elif base_ok and employment is not None and employment.met:
        route = "employment"
    if employment is not None and (route == "employment" or employment.met):
        ids.add(list(employment.evidence))

    if route == "progress":
        final = [f"every problem evidenced at {'/'.join(claim.must_meet_stages)} is met ("
                 + ", ".join(p.problem for p in required_problems) + ")"]
        if claim.judgement_required:
            final.append("the lead worker's judgement confirms "
                         + ", ".join(claim.judgement_flags))
        if claim.essentials or claim.essential_attestations:
            final.append("essentials present")
    elif route == "employment":
        assert employment is not None
        final = [f"employment route met: {employment.reason}"]
        final += [f"progress route not met: {r}" for r in progress_reasons]
    else:
        final = reasons + blockers + progress_reasons + employment_reasons

    attached_on = att.attached_on if att is not None else None
    payment = payment_for(policy, route, as_of, attached_on) if route else None
    if route and payment is None:
        notes.append(f"the policy states no payment for the {route} route on {as_of}")
    return Decision(
        family_ref=evidence.family_ref, policy_id=policy.id, policy_sha256=policy.sha256,
        as_of=as_of, eligible=eligible, problems=tuple(problems), route=route,
        claimable=route is not None, reasons=tuple(final), evidence=ids.tuple(),
        employment=employment, payment=payment, known_at=known_at, notes=tuple(notes))


def _judgement(flags: tuple[str, ...], required: list[ProblemResult], ev: FamilyEvidence,
               as_of: date, ids: _Ids) -> list[str]:
    """The latest lead-worker judgement covering each required problem (one for ``all`` or one
    for the problem, whichever is later) must say yes to every flag the policy names."""
    known = [j for j in ev.judgements if j.judged_on <= as_of]
    if not known:
        return ["no lead-worker judgement recorded"]
    out: list[str] = []
    seen: set[int] = set()
    for p in required:
        j = _latest([j for j in known if j.problem in ("all", p.problem)])
        if j is None:
            out.append(f"no lead-worker judgement recorded for {p.problem}")
            continue
        ids.add([j.event_id])
        if id(j) in seen:
            continue
        seen.add(id(j))
        no = [f for f in flags if not getattr(j, f)]
        if no:
            scope = "all problems" if j.problem == "all" else j.problem
            out.append(f"lead-worker judgement of {j.judged_on} ({j.practitioner}) for {scope}: "
                       + ", ".join(f"{f} = no" for f in no))
    return out


def _rate(policy: Policy, item: str, on: date, attached: date | None) -> Payment | None:
    """The ``item`` rate in force on its basis day (the claim's date or the attachment's)."""
    for p in policy.payments:
        day = p.basis_day(on, attached)
        if p.item == item and day is not None and p.valid_on(day):
            return p
    return None


def payment_for(policy: Policy, route: str | None, on: date,
                attached: date | None = None) -> Payment | None:
    """The results payment a claim by ``route`` on ``on`` earns, from the policy's rates.

    The employment route earns the ``employment`` rate where the policy states one, else the
    ``results`` rate (Phase 2 pays one results fee whichever way progress is shown). Each rate
    is the one valid on its ``basis`` day: the claim's date, or the family's attachment date
    (Lancashire 4.2 splits £4,000 by the year of attachment). Where the policy states a
    ``total`` per family, the payment is capped so that the attachment fee and it never exceed
    it.
    """
    if route is None:
        return None
    items = ("results",) if route == "progress" else ("employment", "results")
    payment = next((p for item in items if (p := _rate(policy, item, on, attached))), None)
    total = _rate(policy, "total", on, attached)
    if payment is None or total is None:
        return payment
    fee = _rate(policy, "attachment", on, attached)
    room = total.amount - (fee.amount if fee is not None else 0)
    if payment.amount <= room:
        return payment
    room = max(room, Decimal(0))
    return replace(payment, amount=room,
                   note=f"{CAPPED} of £{total.amount} ({total.section}): the {payment.item} rate "
                        f"£{payment.amount} less the attachment fee "
                        f"£{fee.amount if fee is not None else 0}")
