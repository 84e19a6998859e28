"""A family's evidence as plain, immutable records: the input every measure reads.

Evaluation builds a :class:`FamilyEvidence` from the ledger's events (choosing which events
count by valid and transaction time); tests build one by hand from a story. Measures never
see events, databases or clocks, only this.

Every record carries ``event_id`` (``"<stream>#<version>"``, e.g. ``"family/F-17#12"``) and
``event_hash`` so a finding can name exactly what it rests on; hand-made records may leave
them empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

ROLES = ("adult", "child")
STAGES = ("identification", "engagement")
SETTINGS = ("school", "pru", "alternative", "none")
INCIDENT_KINDS = (
    "proven_offence",
    "asb_incident",
    "asb_intervention",
    "police_callout",
    "domestic_callout",
    "missing_episode",
    "ae_attendance",
)
EMPLOYMENT_KINDS = (
    "benefit_claim",
    "employment",
    "work_programme",
    "esf_provision",
    "training",
    "volunteering",
)
CARE_STATUSES = ("lac", "cp", "cin", "early_help")
#: Higher is more intensive; "none" (no open status) is 0.
CARE_LEVEL = {"none": 0, "early_help": 1, "cin": 2, "cp": 3, "lac": 4}
PROBLEMS = (
    "crime_asb",
    "education",
    "children_need_help",
    "worklessness",
    "domestic_abuse",
    "health",
)


@dataclass(frozen=True, slots=True)
class Member:
    ref: str
    role: str
    birth_date: date
    event_id: str = ""
    event_hash: str = ""

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


@dataclass(frozen=True, slots=True)
class Indicator:
    problem: str
    indicator: str
    member_ref: str | None
    observed_on: date
    stage: str
    source: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    attached_on: date
    lead_professional: str | None = None
    assessment_on: date | None = None
    plan_on: date | None = None
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class AttendanceTerm:
    member_ref: str
    term_start: date
    term_end: date
    sessions_possible: int
    sessions_absent: int
    unauthorised_absent: int = 0
    fixed_term_exclusions: int = 0
    permanent_exclusion: bool = False
    setting: str = "school"
    source: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    member_ref: str
    occurred_on: date
    kind: str
    serious: bool = False
    source: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class EmploymentSpell:
    member_ref: str
    kind: str
    start_on: date
    end_on: date | None = None
    benefit: str | None = None
    hours_per_week: int | None = None
    source: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class CareStatus:
    member_ref: str
    status: str
    start_on: date
    end_on: date | None = None
    source: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class Score:
    member_ref: str
    instrument: str
    assessed_on: date
    score: int
    assessor: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class Judgement:
    judged_on: date
    practitioner: str
    problem: str  # a headline id or "all"
    progress: bool
    sustained: bool
    intensity_reduced: bool
    note: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class Attestation:
    member_ref: str | None
    outcome: str
    attested_on: date
    practitioner: str
    evidence: str = ""
    event_id: str = ""
    event_hash: str = ""


@dataclass(frozen=True, slots=True)
class FamilyEvidence:
    """Everything known about one family, already filtered to the question's time."""

    family_ref: str
    authority: str = ""
    policy_id: str = ""
    identified_on: date | None = None
    members: tuple[Member, ...] = ()
    indicators: tuple[Indicator, ...] = ()
    attachment: Attachment | None = None
    attendance: tuple[AttendanceTerm, ...] = ()
    incidents: tuple[Incident, ...] = ()
    employment: tuple[EmploymentSpell, ...] = ()
    care_status: tuple[CareStatus, ...] = ()
    scores: tuple[Score, ...] = ()
    judgements: tuple[Judgement, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    #: Notes from selection, e.g. "event family/F-1#7 superseded by family/F-1#9 (typo)".
    notes: tuple[str, ...] = field(default=())

    def member(self, ref: str) -> Member | None:
        for m in self.members:
            if m.ref == ref:
                return m
        return None
