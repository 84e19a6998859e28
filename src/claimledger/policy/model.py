"""A loaded Outcomes Plan as small frozen values.

A :class:`Policy` is what the loader makes of one ``policies/<authority>/<plan>.toml`` after
validating it; nothing here reads files or evidence. It keeps the exact file bytes and their
SHA-256 because the ledger registers those bytes and a claim is replayed against them.
Measures form a tree of :class:`Leaf` tests combined by :class:`AllOf` / :class:`AnyOf`, and
any numeric parameter may be :class:`Dated`: a list of values that take effect on dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeAlias

from ..errors import EvaluationError

Number: TypeAlias = int | Decimal


@dataclass(frozen=True, slots=True)
class DatedValue:
    start: date
    value: Number
    section: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Dated:
    """A parameter whose value changes on dates: the one in force has the latest start <= day."""

    values: tuple[DatedValue, ...]  # ascending by start, at least one
    key: str = ""  # where it is written, e.g. "worcestershire/x outcomes[4].measure.terms"

    def entry_at(self, day: date) -> DatedValue:
        current: DatedValue | None = None
        for v in self.values:
            if v.start <= day:
                current = v
        if current is None:
            raise EvaluationError(
                f"{self.key or 'parameter'}: no value in force on {day.isoformat()} "
                f"(the first takes effect on {self.values[0].start.isoformat()})")
        return current

    def at(self, day: date) -> Number:
        return self.entry_at(day).value


@dataclass(frozen=True, slots=True)
class EmploymentRule:
    """One row of a continuous_employment rule table: how long a claimant of ``benefit`` works."""

    benefit: str  # a benefit code or "*"
    weeks: Number | Dated
    within_weeks: Number | Dated | None = None

    def at(self, day: date) -> EmploymentRule:
        return EmploymentRule(self.benefit, resolve_value(self.weeks, day),
                              resolve_value(self.within_weeks, day))


def resolve_value(value: Any, day: date) -> Any:
    """The value in force on ``day``: dated values resolved, rule tables resolved row by row."""
    if isinstance(value, Dated):
        return value.at(day)
    if isinstance(value, EmploymentRule):
        return value.at(day)
    if isinstance(value, tuple) and value and isinstance(value[0], EmploymentRule):
        return tuple(r.at(day) for r in value)
    return value


@dataclass(frozen=True, slots=True)
class Leaf:
    """One measure kind with its parameters, as written (dated values still unresolved)."""

    kind: str
    params: tuple[tuple[str, Any], ...]
    section: str | None = None
    note: str | None = None
    key: str = ""

    def get(self, name: str, default: Any = None) -> Any:
        for k, v in self.params:
            if k == name:
                return v
        return default

    def resolved(self, day: date) -> dict[str, Any]:
        return {k: resolve_value(v, day) for k, v in self.params}

    def dated(self) -> dict[str, Dated]:
        return {k: v for k, v in self.params if isinstance(v, Dated)}


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Measure, ...]
    section: str | None = None
    note: str | None = None
    key: str = ""


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Measure, ...]
    section: str | None = None
    note: str | None = None
    key: str = ""


@dataclass(frozen=True, slots=True)
class AtLeast:
    """Met when at least ``n`` of ``items`` are met ("3 out of the 6 interim outcomes")."""

    n: int
    items: tuple[Measure, ...]
    section: str | None = None
    note: str | None = None
    key: str = ""


Measure: TypeAlias = Leaf | AllOf | AnyOf | AtLeast


def leaves(measure: Measure) -> tuple[Leaf, ...]:
    if isinstance(measure, Leaf):
        return (measure,)
    return tuple(leaf for item in measure.items for leaf in leaves(item))


@dataclass(frozen=True, slots=True)
class Source:
    document: str
    title: str
    authority: str
    date: str


@dataclass(frozen=True, slots=True)
class Eligibility:
    section: str
    min_problems: int
    stages: tuple[str, ...]
    problems: tuple[str, ...] | None = None  # Phase 1: only these problems count
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    title: str
    section: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    title: str
    section: str
    met_when: str  # any_outcome | all_outcomes | each_indicator_answered
    indicators: tuple[Indicator, ...] = ()
    note: str | None = None

    def indicator(self, indicator_id: str) -> Indicator | None:
        return next((i for i in self.indicators if i.id == indicator_id), None)


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    problem: str
    title: str
    section: str
    measure: Measure
    answers: tuple[str, ...] | None = None  # None: answers every indicator of its problem
    note: str | None = None

    def answers_indicator(self, indicator_id: str) -> bool:
        return self.answers is None or indicator_id in self.answers


@dataclass(frozen=True, slots=True)
class EmploymentRoute:
    section: str
    measure: Measure
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimRule:
    section: str
    must_meet_stages: tuple[str, ...]
    judgement_required: bool = False
    judgement_flags: tuple[str, ...] = ("progress", "sustained", "intensity_reduced")
    essentials: tuple[str, ...] = ()
    essential_attestations: tuple[str, ...] = ()
    double_funding_exclusion: tuple[str, ...] = ()
    progress_to_work_outcomes: tuple[str, ...] = ()
    employment_route: EmploymentRoute | None = None
    note: str | None = None
    #: (attestation code, essential) pairs: the attestation must be dated on or after that
    #: essential's date ("the family plan outcomes are aligned": on or after the plan)
    essential_attestations_after: tuple[tuple[str, str], ...] = ()
    #: True where the document pays one results claim per family, whichever route shows it
    #: (a family met by progress and by employment is claimed once); False, the meaning of
    #: files written before the key: one claim per family and route
    one_results_claim: bool = False


@dataclass(frozen=True, slots=True)
class Payment:
    item: str  # attachment | results | progress_to_work | employment | total
    amount: Decimal
    section: str
    start: date | None = None
    end: date | None = None
    note: str | None = None
    #: which date picks the rate: the claim's review date (default) or the family's attachment
    basis: str = "claim_date"

    def valid_on(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)

    def basis_day(self, claimed_on: date, attached_on: date | None) -> date | None:
        """The day whose rate applies: the claim's date, or the attachment date (None when
        the family has no attachment)."""
        return claimed_on if self.basis == "claim_date" else attached_on


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    title: str
    authority: str
    programme_phase: int
    effective_from: date
    effective_to: date | None
    source: Source
    eligibility: Eligibility
    problems: tuple[Problem, ...]
    outcomes: tuple[Outcome, ...]
    claim: ClaimRule
    payments: tuple[Payment, ...] = ()
    note: str | None = None
    path: str = ""
    content: bytes = b""
    sha256: str = ""

    @property
    def directory(self) -> str:
        """The ``policies/<authority>/`` directory name: the authority's slug in every id."""
        return self.id.split("/", 1)[0]

    def in_force(self, day: date) -> bool:
        end = self.effective_to
        return self.effective_from <= day and (end is None or day <= end)

    def period(self) -> str:
        end = self.effective_to.isoformat() if self.effective_to else "open-ended"
        return f"{self.effective_from.isoformat()}..{end}"

    def problem(self, problem_id: str) -> Problem | None:
        return next((p for p in self.problems if p.id == problem_id), None)

    def outcome(self, outcome_id: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.id == outcome_id), None)

    def outcomes_for(self, problem_id: str) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.problem == problem_id)
