"""A deterministic synthetic county: data-match CSV files for a whole programme of families.

``generate(out_dir, families, seed)`` writes the eleven ingest files (exactly the DESIGN
headers) for a county running one Outcomes Plan. Families are identified at staggered dates
across the programme, attached to a lead worker, and given a scenario that fixes the verdict
a review should reach: claimable by the progress route, claimable by the employment route, or
not claimable for a named reason (attendance still poor, no lead-worker judgement, a problem
found at engagement unmet, only one problem). The generator reads the policy through the
engine's loader and writes whatever indicator ids, attestation codes, instruments and benefit
rules that policy uses; it knows no council's rule beyond choosing scenarios.

Same arguments, same bytes: every draw comes from ``random.Random(seed)`` (and per-family
streams seeded from it), output order never depends on set or hash order, and nothing reads a
clock.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..policy.evidence import INCIDENT_KINDS
from ..policy.model import Policy, leaves
from .family import (
    County,
    FamilyBuilder,
    Unplaceable,
    add_months,
    days,
    school_terms,
)
from .plan import NO_DOUBLE_FUNDING, Atom, Chooser, Needs, ProblemPlan, plan_problem

#: Worcestershire's plan runs 2015-04-01..2020-03-31, the whole five-year Phase 2 programme,
#: and exercises every part of the format: six problems, engagement-stage issues, dated
#: thresholds, the lead-worker judgement and a continuous-employment route.
DEFAULT_POLICY = "worcestershire/stronger-families-2015-16"

#: The ingest contract (DESIGN "Data-match files"): file name -> exact header.
HEADERS: dict[str, tuple[str, ...]] = {
    "families": ("family_ref", "authority", "policy_id", "identified_on"),
    "members": ("family_ref", "member_ref", "role", "birth_date"),
    "indicators": ("family_ref", "member_ref", "problem", "indicator", "observed_on", "stage",
                   "source"),
    "attachments": ("family_ref", "attached_on", "lead_professional", "assessment_on",
                    "plan_on"),
    "attendance": ("member_ref", "term_start", "term_end", "sessions_possible",
                   "sessions_absent", "unauthorised_absent", "fixed_term_exclusions",
                   "permanent_exclusion", "setting", "source"),
    "incidents": ("member_ref", "occurred_on", "kind", "serious", "source"),
    "employment": ("member_ref", "kind", "benefit", "start_on", "end_on", "hours_per_week",
                   "source"),
    "care_status": ("member_ref", "status", "start_on", "end_on", "source"),
    "scores": ("member_ref", "instrument", "assessed_on", "score", "assessor"),
    "judgements": ("family_ref", "judged_on", "practitioner", "problem", "progress",
                   "sustained", "intensity_reduced", "note"),
    "attestations": ("family_ref", "member_ref", "outcome", "attested_on", "practitioner",
                     "evidence"),
}
KINDS = tuple(HEADERS)

#: Scenario -> share of the county (per cent), and what a review on the family's date finds.
SCENARIOS: dict[str, int] = {
    "progress": 40,
    "employment": 15,
    "poor_attendance": 12,
    "no_judgement": 11,
    "engagement_unmet": 11,
    "single_problem": 11,
}
#: Headline problems' relative frequency among identified families (a plausible mix).
PROBLEM_WEIGHTS = {"education": 30, "worklessness": 30, "children_need_help": 25,
                   "crime_asb": 20, "health": 20, "domestic_abuse": 15}
#: Room left after the last identification for attachment, intervention and review.
TAIL_MONTHS = 16


def load_policy(policy_id: str) -> Policy:
    """The named policy, through the engine's loader (validated); UsageError if unknown."""
    from ..evaluate.service import policies_root
    from ..policy.library import find_policy

    return find_policy(policy_id, policies_root())


@dataclass
class FamilyPlan:
    scenario: str
    problems: list[ProblemPlan]
    needs: Needs
    judgement: str  # final | interim | none
    expect: dict[str, Any]


class Planner:
    """Draws a family's problems and evidence requirements for a scenario, from the policy."""

    def __init__(self, policy: Policy):
        self.policy = policy
        elig = policy.eligibility
        usable = [p.id for p in policy.problems
                  if p.indicators and policy.outcomes_for(p.id)]
        self.candidates = [p for p in (elig.problems or usable) if p in usable]
        self.all_problems = usable
        self.id_stage = "identification" if "identification" in elig.stages else elig.stages[0]
        self.min_problems = max(elig.min_problems, 1)
        self.engagement = "engagement" in policy.claim.must_meet_stages
        self.attendance_problems = [
            p for p in self.candidates
            if any(leaf.kind == "attendance" for o in policy.outcomes_for(p)
                   for leaf in leaves(o.measure))]

    def unavailable(self, scenario: str) -> str | None:
        """Why this policy cannot produce the scenario, or None."""
        claim = self.policy.claim
        if len(self.candidates) < self.min_problems:
            return f"the policy has fewer than {self.min_problems} usable problems"
        if scenario == "employment" and claim.employment_route is None:
            return "the policy has no employment route"
        if scenario == "poor_attendance" and not self.attendance_problems:
            return "no problem of the policy is measured by attendance"
        if scenario == "no_judgement" and not claim.judgement_required:
            return "the policy does not require a lead-worker judgement"
        if scenario == "engagement_unmet" and not self.engagement:
            return "problems found at engagement need not be met under this policy"
        if scenario == "single_problem" and self.min_problems < 2:
            return "one problem is enough to be eligible under this policy"
        return None

    def _count(self, rng: random.Random) -> int:
        k = rng.choices((2, 3, 4, 5), (45, 35, 15, 5))[0]
        return min(max(k, self.min_problems), len(self.candidates))

    def _order(self, rng: random.Random, pool: list[str]) -> list[str]:
        keyed = sorted((-(rng.random() ** (1 / PROBLEM_WEIGHTS.get(p, 10))), p)
                        for p in pool)
        return [p for _, p in keyed]

    def plan(self, scenario: str, rng: random.Random) -> FamilyPlan | None:
        """One attempt at a family for ``scenario``; None when the draw does not hold together."""
        policy = self.policy
        employment = scenario == "employment"
        forbid = frozenset() if employment else frozenset({"continuous_employment"})
        target = frozenset({"attendance"}) if scenario == "poor_attendance" else frozenset()
        ch = Chooser(rng, policy, forbid_good=forbid, target=target)
        needs = Needs()
        route_atoms: list[Atom] = []
        route = policy.claim.employment_route
        if route is not None:
            got = ch.choose(route.measure, employment, "")
            if got is None:
                return None
            route_atoms = got + ([Atom(NO_DOUBLE_FUNDING, True)] if employment else [])
            merged = needs.plus(route_atoms, ch.dfe)
            if merged is None:
                return None
            needs = merged
        problems: list[ProblemPlan] = []

        def add(problem: str, good: bool, stage: str) -> bool:
            nonlocal needs
            got = plan_problem(ch, problem, good, stage, needs)
            if got is None:
                return False
            problems.append(got[0])
            needs = got[1]
            return True

        k = 1 if scenario == "single_problem" else self._count(rng)
        pool = self._order(rng, self.candidates)
        if employment:
            if "worklessness" in pool:
                pool.remove("worklessness")
                if not add("worklessness", True, self.id_stage):
                    return None
            spoiled = False
            for p in pool:
                if len(problems) >= max(k, 2):
                    break
                if not spoiled:
                    spoiled = add(p, False, self.id_stage)
                else:
                    add(p, True, self.id_stage)
            if not spoiled:
                return None
        elif scenario == "poor_attendance":
            chosen = rng.choice(self.attendance_problems)
            pool.remove(chosen)
            if not add(chosen, False, self.id_stage):
                return None
            for p in pool:
                if len(problems) >= k:
                    break
                add(p, True, self.id_stage)
        else:
            for p in pool:
                if len(problems) >= k:
                    break
                add(p, True, self.id_stage)
        if len(problems) < (1 if scenario == "single_problem" else self.min_problems):
            return None
        if scenario in ("engagement_unmet", "progress") and self.engagement:
            taken = {p.problem for p in problems}
            rest = [p for p in self._order(rng, self.all_problems) if p not in taken]
            if scenario == "engagement_unmet":
                if not any(add(p, False, "engagement") for p in rest):
                    return None
            elif rest and rng.random() < 0.15:
                add(rest[0], True, "engagement")
        judgement = {"no_judgement": "none", "employment": "interim"}.get(scenario, "final")
        first_failed = next((p.problem for p in problems if not p.good), None)
        expect = {
            "eligible": scenario != "single_problem",
            "claimable": scenario in ("progress", "employment"),
            "route": scenario if scenario in ("progress", "employment") else "none",
            "unmet_problem": None if employment else first_failed,
        }
        return FamilyPlan(scenario, problems, needs, judgement, expect)


def _apportion(n: int, shares: dict[str, int]) -> dict[str, int]:
    """Largest-remainder split of ``n`` families by the scenarios' shares."""
    total = sum(shares.values())
    exact = {s: n * w for s, w in shares.items()}
    counts = {s: e // total for s, e in exact.items()}
    left = n - sum(counts.values())
    for s in sorted(shares, key=lambda s: (-(exact[s] % total), list(shares).index(s)))[:left]:
        counts[s] += 1
    return counts


def generate(out_dir: Path, families: int, seed: int, policy_id: str = DEFAULT_POLICY,
             start: date | None = None, years: int = 5) -> dict[str, Any]:
    """Write the eleven data-match CSV files for a synthetic county; return what was made.

    ``start`` defaults to the policy's ``effective_from``; the programme runs ``years`` years
    from it, cut at the policy's ``effective_to`` so that every suggested review date has the
    policy in force. Families are identified across the programme up to ``TAIL_MONTHS`` before
    its end. The result holds plain data: rows per file, the scenario mix and, per family, the
    scenario, the review date to evaluate it on and the verdict that review should reach.
    """
    if families < 1:
        raise UsageError(f"--families must be at least 1 (got {families})")
    if years < 1:
        raise UsageError(f"years must be at least 1 (got {years})")
    policy = load_policy(policy_id)
    start = start or policy.effective_from
    end = add_months(start, 12 * years) - days(1)
    if policy.effective_to is not None and policy.effective_to < end:
        end = policy.effective_to
    last_identified = add_months(end + days(1), -TAIL_MONTHS)
    if last_identified < start:
        raise UsageError(f"the programme {start}..{end} is too short: identification needs "
                         f"{TAIL_MONTHS} months left for intervention and review")

    rng = random.Random(seed)
    planner = Planner(policy)
    unavailable = {s: why for s in SCENARIOS if (why := planner.unavailable(s))}
    shares = {s: w for s, w in SCENARIOS.items() if s not in unavailable}
    if "progress" not in shares:
        raise UsageError(f"policy {policy_id} cannot produce any claimable family: "
                         f"{unavailable.get('progress')}")
    # A scenario the policy's trees cannot produce at all is reported, not looped on.
    probe = random.Random(f"probe:{seed}")
    for s in list(shares):
        if not any(planner.plan(s, probe) is not None for _ in range(60)):
            unavailable[s] = "no combination of the policy's measures produces it"
            del shares[s]
    mix = _apportion(families, shares)
    scenarios = [s for s in shares for _ in range(mix[s])]
    rng.shuffle(scenarios)
    window = (last_identified - start).days
    identified = sorted(start + days(rng.randint(0, window)) for _ in range(families))

    noise = tuple(k for k in INCIDENT_KINDS if k not in {
        kind for o in policy.outcomes for leaf in leaves(o.measure)
        if leaf.kind in ("incident_reduction", "no_incidents") for kind in leaf.get("kinds")})
    first_year = start.year - 2 if start.month < 9 else start.year - 1
    county = County(policy=policy, start=start, end=end,
                    terms=school_terms(first_year, end.year + 1),
                    lead_workers=tuple(f"LW{i:03d}" for i in range(1, 1 + max(5, families // 25))),
                    noise_kinds=noise, rows={k: [] for k in KINDS})
    width = max(5, len(str(families)))
    details: list[dict[str, Any]] = []
    for i, (scenario, day) in enumerate(zip(scenarios, identified, strict=True), start=1):
        ref = f"F{i:0{width}d}"
        frng = random.Random(rng.getrandbits(64))
        details.append(_one_family(county, planner, ref, scenario, day, frng))

    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for kind in KINDS:
        rows = county.rows[kind]
        with (out_dir / f"{kind}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(HEADERS[kind])
            w.writerows(rows)
        counts[f"{kind}.csv"] = len(rows)
    reviews = [d["review_on"] for d in details]
    made = Counter(d["scenario"] for d in details)
    return {
        "policy_id": policy.id,
        "authority": policy.authority,
        "seed": seed,
        "families": families,
        "programme": {"start": start.isoformat(), "end": end.isoformat()},
        "out_dir": str(out_dir),
        "files": counts,
        "rows": sum(counts.values()),
        "scenarios": {s: made[s] for s in SCENARIOS if made[s]},
        "unavailable": unavailable,
        "reviews": {"first": min(reviews), "last": max(reviews)},
        "family_scenarios": details,
    }


def _one_family(county: County, planner: Planner, ref: str, scenario: str, identified: date,
                rng: random.Random) -> dict[str, Any]:
    for _attempt in range(80):
        plan = planner.plan(scenario, rng)
        if plan is None:
            continue
        mark = {k: len(v) for k, v in county.rows.items()}
        builder = FamilyBuilder(county, ref, rng, plan.problems, plan.needs, plan.judgement)
        try:
            dates = builder.build(identified)
        except Unplaceable:
            for k, n in mark.items():
                del county.rows[k][n:]
            continue
        return {"family_ref": ref, "scenario": scenario, **dates,
                "problems": [f"{p.problem}:{p.stage}" + ("" if p.good else ":unmet")
                             for p in plan.problems],
                "expect": plan.expect}
    raise RuntimeError(f"could not place a {scenario} family {ref} identified on {identified}")


def describe(result: dict[str, Any]) -> str:
    """The text ``claimledger synth`` prints: what was written and the scenario mix."""
    lines = [f"{result['families']} families for {result['policy_id']} "
             f"({result['programme']['start']}..{result['programme']['end']}), "
             f"seed {result['seed']}, in {result['out_dir']}"]
    lines += [f"  {name:<18} {n:>8} rows" for name, n in result["files"].items()]
    lines.append("scenarios: " + ", ".join(f"{s} {n}" for s, n in result["scenarios"].items()))
    lines += [f"  not generated: {s} ({why})" for s, why in result["unavailable"].items()]
    lines.append(f"review dates {result['reviews']['first']}..{result['reviews']['last']} "
                 "(per family in --json: family_scenarios[].review_on)")
    return "\n".join(lines)
