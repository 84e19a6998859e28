"""Planning a synthetic family from a policy: which measures its evidence must pass or fail.

The generator never knows a council's rule. It walks the policy's measure trees and, for each
problem a family is given, chooses leaves to satisfy (``good``) or to spoil (``bad``): an
``any_of`` is passed by one child and spoiled by spoiling all; an ``all_of`` the other way
round. Each chosen leaf becomes an :class:`Atom`, and :class:`Needs` folds atoms into one
family's requirements per kind of evidence, refusing contradictions (the same incident kind
both stopping and continuing) so that a plan either holds together or is redrawn.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..policy.model import (
    AnyOf,
    Dated,
    EmploymentRule,
    Leaf,
    Measure,
    Outcome,
    Policy,
    leaves,
)

T = TypeVar("T")


def structural(value: Any) -> Any:
    """A duration/count parameter planned for its largest dated value (the strictest window)."""
    if isinstance(value, Dated):
        return max(v.value for v in value.values)
    return value


def rules_of(value: Any) -> tuple[EmploymentRule, ...]:
    """continuous_employment rules with durations at their largest dated values."""
    return tuple(EmploymentRule(r.benefit, int(structural(r.weeks)),
                                None if r.within_weeks is None else int(structural(r.within_weeks)))
                 for r in value)


@dataclass(frozen=True, slots=True)
class Atom:
    """One leaf measure a family's evidence must pass (``good``) or fail (``bad``)."""

    leaf: Leaf
    good: bool
    outcome: str = ""
    #: progress_to_work: the spell kind chosen to satisfy the leaf.
    choice: str = ""

    @property
    def kind(self) -> str:
        return self.leaf.kind

    def get(self, name: str, default: Any = None) -> Any:
        return self.leaf.get(name, default)


@dataclass(frozen=True, slots=True)
class IncidentNeed:
    """Incidents of one kind by one kind of member (young_person, adult, family)."""

    kind: str
    per: str
    state: str  # stop: baseline then none; continue: as many in the window as the baseline
    window_months: int
    baseline_months: int


@dataclass
class Needs:
    """A family's evidence requirements, accumulated from atoms; :meth:`plus` refuses clashes."""

    attendance: str | None = None  # good | bad
    settings: frozenset[str] | None = None  # allowed settings for the good terms
    attendance_leaves: list[Atom] = field(default_factory=list)
    exclusions: str | None = None
    exclusion_leaves: list[Atom] = field(default_factory=list)
    terms: int = 0
    incidents: dict[str, str] = field(default_factory=dict)  # kind -> stop | quiet | continue
    incident_needs: list[IncidentNeed] = field(default_factory=list)
    employment: str | None = None
    employment_leaves: list[Atom] = field(default_factory=list)
    progress: dict[str, str] = field(default_factory=dict)  # spell kind -> good | bad
    progress_leaves: list[Atom] = field(default_factory=list)
    double_funding: str | None = None  # none | present
    scores: dict[str, str] = field(default_factory=dict)  # instrument -> good | bad
    score_leaves: dict[str, list[Atom]] = field(default_factory=dict)
    care: str | None = None
    care_from: frozenset[str] | None = None
    care_months: int = 0
    attestations: dict[str, str] = field(default_factory=dict)  # outcome code -> good | bad
    attestation_within: dict[str, int] = field(default_factory=dict)

    def copy(self) -> Needs:
        return replace(
            self, attendance_leaves=list(self.attendance_leaves),
            exclusion_leaves=list(self.exclusion_leaves), incidents=dict(self.incidents),
            incident_needs=list(self.incident_needs),
            employment_leaves=list(self.employment_leaves), progress=dict(self.progress),
            progress_leaves=list(self.progress_leaves), scores=dict(self.scores),
            score_leaves={k: list(v) for k, v in self.score_leaves.items()},
            attestations=dict(self.attestations),
            attestation_within=dict(self.attestation_within))

    def plus(self, atoms: Sequence[Atom], dfe: frozenset[str]) -> Needs | None:
        """These needs with ``atoms`` added, or None when any atom contradicts them."""
        n = self.copy()
        for a in atoms:
            if not n._add(a, dfe):
                return None
        return n

    def _state(self, table: dict[str, str], key: str, value: str) -> bool:
        old = table.get(key)
        if old is not None and old != value:
            return False
        table[key] = value
        return True

    def _add(self, a: Atom, dfe: frozenset[str]) -> bool:
        want = "good" if a.good else "bad"
        k = a.kind
        if k == "attendance":
            if self.attendance not in (None, want):
                return False
            self.attendance = want
            if a.good:
                allowed = frozenset(a.get("settings") or ("school", "pru", "alternative"))
                self.settings = allowed if self.settings is None else self.settings & allowed
                if not self.settings:
                    return False
            self.attendance_leaves.append(a)
            self.terms = max(self.terms, int(structural(a.get("terms"))))
            return True
        if k == "exclusions":
            if self.exclusions not in (None, want):
                return False
            if not a.good and a.get("fixed_term_below") is None and a.get("no_permanent") is False:
                return False  # passes whatever happens: cannot be spoiled
            self.exclusions = want
            self.exclusion_leaves.append(a)
            self.terms = max(self.terms, int(structural(a.get("terms"))))
            return True
        if k in ("incident_reduction", "no_incidents"):
            kinds: tuple[str, ...] = tuple(a.get("kinds"))
            per = a.get("per") or "family"
            window = int(structural(a.get("window_months") or a.get("months")))
            baseline = int(structural(a.get("baseline_months") or 6))
            if a.good:
                state = "stop" if k == "incident_reduction" else "quiet"
                for kind in kinds:
                    old = self.incidents.get(kind)
                    if old == "continue":
                        return False
                    if old != "stop":
                        self.incidents[kind] = state
                if state == "stop":
                    self.incident_needs.append(IncidentNeed(kinds[0], per, "stop", window,
                                                            baseline))
                else:
                    self.incident_needs.append(IncidentNeed(kinds[0], per, "quiet", window,
                                                            baseline))
                return True
            # A reduction is spoiled only when every counted kind keeps going; one incident
            # of any listed kind in the window spoils no_incidents.
            spoil = kinds if k == "incident_reduction" else kinds[:1]
            for kind in spoil:
                if not self._state(self.incidents, kind, "continue"):
                    return False
            self.incident_needs.append(IncidentNeed(kinds[0], per, "continue", window, baseline))
            return True
        if k == "continuous_employment":
            if self.employment not in (None, want):
                return False
            self.employment = want
            self.employment_leaves.append(a)
            return True
        if k == "progress_to_work":
            if a.good:
                if not self._state(self.progress, a.choice, "good"):
                    return False
                if a.choice in dfe and not self._state_dfe("present"):
                    return False
            else:
                for kind in a.get("kinds"):
                    if not self._state(self.progress, kind, "bad"):
                        return False
            self.progress_leaves.append(a)
            return True
        if k == "score_change":
            inst = a.get("instrument")
            if not self._state(self.scores, inst, want):
                return False
            self.score_leaves.setdefault(inst, []).append(a)
            return True
        if k == "status_step_down":
            if self.care not in (None, want):
                return False
            self.care = want
            allowed = frozenset(a.get("from_statuses") or ("lac", "cp", "cin"))
            if a.good:
                self.care_from = allowed if self.care_from is None else self.care_from & allowed
                if not self.care_from:
                    return False
            else:
                self.care_from = allowed if self.care_from is None else self.care_from
            self.care_months = max(self.care_months, int(structural(a.get("months"))))
            return True
        if k == "attestation":
            code = a.get("outcome")
            if not self._state(self.attestations, code, want):
                return False
            within = a.get("within_months")
            if a.good and within is not None:
                w = int(structural(within))
                self.attestation_within[code] = min(self.attestation_within.get(code, w), w)
            return True
        if k == "no_double_funding":
            return self._state_dfe("none")
        raise ValueError(f"unknown measure kind {k!r}")

    def _state_dfe(self, value: str) -> bool:
        if self.double_funding not in (None, value):
            return False
        self.double_funding = value
        return True

    @property
    def needs_school_child(self) -> bool:
        return self.attendance is not None or self.exclusions is not None

    @property
    def needs_young_person(self) -> bool:
        return any(n.per == "young_person" and n.state != "quiet" for n in self.incident_needs)

    @property
    def workless(self) -> bool:
        """An adult must be out of work at attachment: work or progress to work is to follow."""
        return self.employment == "good" or "good" in self.progress.values()


#: A leaf that forbids rows of the double-funded kinds (used for results the policy names).
NO_DOUBLE_FUNDING = Leaf("no_double_funding", ())


@dataclass
class Chooser:
    """Picks leaves to pass or spoil, with the family's random stream and its constraints."""

    rng: random.Random
    policy: Policy
    #: measure kinds that must not be passed (continuous work outside the employment scenario)
    forbid_good: frozenset[str] = frozenset()
    #: measure kinds a spoil should aim at (the scenario's reason), when the tree allows
    target: frozenset[str] = frozenset()

    @property
    def dfe(self) -> frozenset[str]:
        return frozenset(self.policy.claim.double_funding_exclusion)

    def _rank(self, node: Measure, good: bool) -> tuple[int, int]:
        """(group, weight): lower groups are tried first; weight orders within a group."""
        kinds = {leaf.kind for leaf in leaves(node)}
        if good:
            if kinds & self.forbid_good:
                return 1, 1
            # data-backed results are the common case; attestations the minority
            return 0, 1 if kinds == {"attestation"} else 3
        if self.target:
            return (0, 1) if kinds & self.target else (1, 1)
        return 0, 1

    def order(self, items: Sequence[T], good: bool, measure_of: Callable[[T], Measure]
              ) -> list[T]:
        """Items in weighted random order within priority groups: preferred choices first."""
        keyed = []
        for i, item in enumerate(items):
            group, w = self._rank(measure_of(item), good)
            keyed.append((group, -(self.rng.random() ** (1 / w)), i, item))
        keyed.sort(key=lambda t: (t[0], t[1], t[2]))
        return [t[3] for t in keyed]

    def choose(self, node: Measure, good: bool, outcome: str) -> list[Atom] | None:
        """Atoms that pass (or spoil) ``node``; None when no choice can."""
        if isinstance(node, Leaf):
            return self._leaf(node, good, outcome)
        pick_one = isinstance(node, AnyOf) == good
        if pick_one:
            for item in self.order(node.items, good, lambda m: m):
                got = self.choose(item, good, outcome)
                if got is not None:
                    return got
            return None
        atoms: list[Atom] = []
        for item in node.items:
            got = self.choose(item, good, outcome)
            if got is None:
                return None
            atoms += got
        return atoms

    def _leaf(self, leaf: Leaf, good: bool, outcome: str) -> list[Atom] | None:
        if good and leaf.kind in self.forbid_good:
            return None
        extra: list[Atom] = []
        if good and outcome in self.policy.claim.progress_to_work_outcomes:
            extra.append(Atom(NO_DOUBLE_FUNDING, True, outcome))
        if leaf.kind == "progress_to_work" and good:
            kinds = list(leaf.get("kinds"))
            clean = [k for k in kinds if k not in self.dfe]
            if extra:
                kinds = clean
            if not kinds:
                return None
            pool = clean or kinds
            return [Atom(leaf, True, outcome, self.rng.choice(pool)), *extra]
        return [Atom(leaf, good, outcome), *extra]


@dataclass(frozen=True, slots=True)
class ProblemPlan:
    """One problem given to a family: its indicators, stage and whether it is to be met."""

    problem: str
    indicators: tuple[str, ...]
    stage: str
    good: bool
    atoms: tuple[Atom, ...]


def plan_problem(ch: Chooser, problem_id: str, good: bool, stage: str,
                 needs: Needs) -> tuple[ProblemPlan, Needs] | None:
    """Indicators and atoms that make ``problem_id`` met (or unmet) for a family, or None."""
    policy = ch.policy
    problem = policy.problem(problem_id)
    if problem is None:
        return None
    outcomes = policy.outcomes_for(problem_id)
    if not outcomes or not problem.indicators:
        return None
    all_ids = [i.id for i in problem.indicators]
    rng = ch.rng
    for _attempt in range(6):
        n_ind = 1 if rng.random() < 0.7 or len(all_ids) == 1 else 2
        atoms: list[Atom] | None = []
        if problem.met_when == "each_indicator_answered":
            answered = [i for i in all_ids if any(o.answers_indicator(i) for o in outcomes)]
            if not answered:
                return None
            if good:
                chosen = _pick_indicators(rng, answered, n_ind, outcomes, ch, True)
                for ind in chosen:
                    answering = [o for o in outcomes if o.answers_indicator(ind)]
                    got = _first(ch, answering, True)
                    if got is None:
                        atoms = None
                        break
                    atoms += got
            else:
                chosen = _pick_indicators(rng, answered, 1, outcomes, ch, False)
                atoms = _every(ch, [o for o in outcomes if o.answers_indicator(chosen[0])],
                               False)
        else:
            chosen = rng.sample(all_ids, min(n_ind, len(all_ids)))
            every = problem.met_when == "all_outcomes"
            # pass all (all_outcomes) or spoil all (any_outcome); else one decides
            pick = _every if good == every else _first
            atoms = pick(ch, outcomes, good)
        if atoms is None:
            continue
        merged = needs.plus(atoms, ch.dfe)
        if merged is not None:
            chosen_sorted = tuple(i for i in all_ids if i in chosen)
            return ProblemPlan(problem_id, chosen_sorted, stage, good, tuple(atoms)), merged
    return None


def _every(ch: Chooser, outcomes: Sequence[Outcome], good: bool) -> list[Atom] | None:
    """Atoms that pass (or spoil) every one of ``outcomes``, in order; None if one cannot."""
    atoms: list[Atom] = []
    for o in outcomes:
        got = ch.choose(o.measure, good, o.id)
        if got is None:
            return None
        atoms += got
    return atoms


def _first(ch: Chooser, outcomes: Sequence[Outcome], good: bool) -> list[Atom] | None:
    """Atoms for the first outcome (in preference order) that can be passed or spoiled."""
    for o in ch.order(outcomes, good, lambda o: o.measure):
        got = ch.choose(o.measure, good, o.id)
        if got is not None:
            return got
    return None


def _pick_indicators(rng: random.Random, ids: list[str], n: int, outcomes: Sequence[Outcome],
                     ch: Chooser, good: bool) -> list[str]:
    """Indicators for the family; a spoil aimed at a target prefers indicators it answers."""
    if not good and ch.target:
        aimed = [i for i in ids if any(
            o.answers_indicator(i) and {lf.kind for lf in leaves(o.measure)} & ch.target
            for o in outcomes)]
        if aimed:
            return [rng.choice(aimed)]
    return rng.sample(ids, min(n, len(ids)))
