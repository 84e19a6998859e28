"""Small pieces the measure kinds share: how numbers are written in a reason, which members a
rule counts (school-age children, the unit a rule is per), a child's latest terms, and how
the parts of a family-level result combine. Pure functions over a family's evidence."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .evidence import AttendanceTerm, FamilyEvidence, Member

SCHOOL_AGE = (5, 15)
ADULT_AGE = 18


def pct(value: Decimal | int) -> str:
    """A computed percentage to two places, so "12.00" and "12.5" style checks both read."""
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def num(value: Decimal | int) -> str:
    """A parameter as the policy wrote it (15, "33.3")."""
    return str(value)


def ids(records: Iterable[Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for r in records:
        if r.event_id:
            seen.setdefault(r.event_id, None)
    return tuple(seen)


def school_age_children(ev: FamilyEvidence, as_of: date) -> list[Member]:
    lo, hi = SCHOOL_AGE
    return [m for m in ev.members if m.role == "child" and lo <= m.age_on(as_of) <= hi]


def unit_members(ev: FamilyEvidence, per: str, as_of: date) -> list[Member]:
    if per == "young_person":
        return [m for m in ev.members if m.age_on(as_of) < ADULT_AGE]
    if per == "adult":
        return [m for m in ev.members if m.age_on(as_of) >= ADULT_AGE]
    return list(ev.members)


def unit_label(per: str) -> str:
    return {"young_person": "a young person", "adult": "an adult", "family": "the family"}[per]


def latest_terms(ev: FamilyEvidence, ref: str, on: date) -> list[AttendanceTerm]:
    rows = [t for t in ev.attendance if t.member_ref == ref and t.term_end <= on]
    return sorted(rows, key=lambda t: (t.term_end, t.term_start))


def terms_span(rows: list[AttendanceTerm]) -> str:
    return f"{rows[0].term_start.isoformat()}..{rows[-1].term_end.isoformat()}"


def combine(parts: list[tuple[bool, str]], every: str) -> tuple[bool, str]:
    """Per-person findings into one verdict: all must pass; failures are listed first."""
    met = all(ok for ok, _ in parts)
    ordered = [t for ok, t in parts if not ok] + [t for ok, t in parts if ok]
    lead = every if met else "not met"
    return met, f"{lead}: " + "; ".join(ordered)


def attachment_date(ev: FamilyEvidence) -> date | None:
    return ev.attachment.attached_on if ev.attachment else None


NO_ATTACHMENT = "no attachment recorded, so there is no start of intervention to measure from"
