"""The Family stream: identification, members, indicators, attachment and every data match.

Event classes are a stored format (their module and qualified names are written in the
ledger): add new ones, never rename. Each data-match event carries the provenance of the
row it came from: the source file's SHA-256, the row number and a ``row_key`` (SHA-256 of the
kind and the row's canonical content) that makes re-ingesting the same row a no-op.
"""

from __future__ import annotations

from typing import Any

from .base import AppendContext, ChainedAggregate


class Family(ChainedAggregate):
    STREAM_PREFIX = "family"

    def __init__(self, family_ref: str, authority: str, policy_id: str, identified_on: str):
        self.family_ref = family_ref
        self.authority = authority
        self.policy_id = policy_id
        self.identified_on = identified_on
        self.members: dict[str, str] = {}
        self.erased = False

    # --- events -----------------------------------------------------------------------
    class Registered(ChainedAggregate.Created):
        family_ref: str
        authority: str
        policy_id: str
        identified_on: str
        file_sha256: str
        row: int
        row_key: str

    class RowIngested(ChainedAggregate.Event):
        """Base of every event that came from a row of a data-match file."""

        file_sha256: str
        row: int
        row_key: str

    class MemberAdded(RowIngested):
        member_ref: str
        role: str
        birth_date: str

        def apply(self, aggregate: Family) -> None:
            aggregate.members[self.member_ref] = self.role

    class IndicatorRecorded(RowIngested):
        member_ref: str | None
        problem: str
        indicator: str
        observed_on: str
        stage: str
        source: str | None

    class Attached(RowIngested):
        attached_on: str
        lead_professional: str | None
        assessment_on: str | None
        plan_on: str | None

    class AttendanceRecorded(RowIngested):
        member_ref: str
        term_start: str
        term_end: str
        sessions_possible: int
        sessions_absent: int
        unauthorised_absent: int | None
        fixed_term_exclusions: int | None
        permanent_exclusion: bool | None
        setting: str
        source: str | None

    class IncidentRecorded(RowIngested):
        member_ref: str
        occurred_on: str
        kind: str
        serious: bool | None
        source: str | None

    class EmploymentRecorded(RowIngested):
        member_ref: str
        kind: str
        benefit: str | None
        start_on: str
        end_on: str | None
        hours_per_week: int | None
        source: str | None

    class CareStatusRecorded(RowIngested):
        member_ref: str
        status: str
        start_on: str
        end_on: str | None
        source: str | None

    class ScoreRecorded(RowIngested):
        member_ref: str
        instrument: str
        assessed_on: str
        score: int
        assessor: str | None

    class JudgementRecorded(RowIngested):
        judged_on: str
        practitioner: str
        problem: str
        progress: bool
        sustained: bool
        intensity_reduced: bool
        note: str | None

    class AttestationRecorded(RowIngested):
        member_ref: str | None
        outcome: str
        attested_on: str
        practitioner: str
        evidence: str | None

    class Corrected(ChainedAggregate.Event):
        """Supersedes an earlier event of this family: a replacement row, or a retraction."""

        supersedes: str
        reason: str
        replacement: dict[str, Any] | None

    class Erased(ChainedAggregate.Event):
        """The family's data key was destroyed; payloads are unreadable from here on."""

        reason: str

        def apply(self, aggregate: Family) -> None:
            aggregate.erased = True

    # --- commands ---------------------------------------------------------------------
    @classmethod
    def register(cls, ctx: AppendContext, **payload: Any) -> Family:
        return cls._start(cls.Registered, payload["family_ref"], ctx, **payload)

    def record(self, event_class: type, ctx: AppendContext, **payload: Any) -> None:
        """Append a data-match or practitioner event (checked by the caller's schema)."""
        self._append(event_class, ctx, **payload)

    def correct(
        self, ctx: AppendContext, supersedes: str, reason: str,
        replacement: dict[str, Any] | None,
    ) -> None:
        self._append(
            self.Corrected, ctx, supersedes=supersedes, reason=reason, replacement=replacement
        )

    def erase(self, ctx: AppendContext, reason: str) -> None:
        self._append(self.Erased, ctx, reason=reason)


#: Ingest kind -> event class (``families`` registers the stream itself).
EVENT_FOR_KIND: dict[str, type[ChainedAggregate.Event]] = {
    "families": Family.Registered,
    "members": Family.MemberAdded,
    "indicators": Family.IndicatorRecorded,
    "attachments": Family.Attached,
    "attendance": Family.AttendanceRecorded,
    "incidents": Family.IncidentRecorded,
    "employment": Family.EmploymentRecorded,
    "care_status": Family.CareStatusRecorded,
    "scores": Family.ScoreRecorded,
    "judgements": Family.JudgementRecorded,
    "attestations": Family.AttestationRecorded,
}
