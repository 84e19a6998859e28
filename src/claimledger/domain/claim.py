"""The Claim stream and spot-check samples.

A claim's id is ``<family_ref>/<route>``, so "one claim per family and route" is the
stream's own uniqueness, enforced by the database under concurrency as well.
"""

from __future__ import annotations

from typing import Any

from .base import AppendContext, ChainedAggregate

OPEN_STATES = ("submitted", "validated")
#: Claim event type -> the state it leaves the claim in (a spot check leaves it unchanged):
#: the one statement of the claim's states that listings, samples and reports read.
STATE_AFTER = {"Claim.Submitted": "submitted", "Claim.Validated": "validated",
               "Claim.Rejected": "rejected", "Claim.Withdrawn": "withdrawn",
               "Claim.Reversed": "reversed"}
#: Why a paid claim is reversed (and its payment repaid): ``Claim.Reversed.reason``.
REVERSAL_REASONS = ("evidence_missing", "outcome_not_sustained", "not_eligible",
                    "duplicate_claim", "family_moved", "other")


class Claim(ChainedAggregate):
    STREAM_PREFIX = "claim"

    def __init__(self, claim_id: str, family_ref: str, route: str, claimed_on: str):
        self.claim_id = claim_id
        self.family_ref = family_ref
        self.route = route
        self.claimed_on = claimed_on
        self.status = "submitted"
        self.spot_checks: list[str] = []

    class Submitted(ChainedAggregate.Created):
        claim_id: str
        family_ref: str
        route: str
        claimed_on: str
        known_at: str
        policy_id: str
        policy_sha256: str
        claimledger_version: str
        amount: str | None
        decision: dict[str, Any]

    class Validated(ChainedAggregate.Event):
        note: str | None

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "validated"

    class Rejected(ChainedAggregate.Event):
        reason: str

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "rejected"

    class Withdrawn(ChainedAggregate.Event):
        reason: str

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "withdrawn"

    class Reversed(ChainedAggregate.Event):
        """A standing claim found wanting after payment: its amount is to be repaid."""

        reason: str  # one of REVERSAL_REASONS
        note: str | None

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "reversed"

    class SpotChecked(ChainedAggregate.Event):
        result: str
        reason: str
        sample_id: str | None

        def apply(self, aggregate: Claim) -> None:
            aggregate.spot_checks.append(self.result)

    @staticmethod
    def make_id(family_ref: str, route: str) -> str:
        return f"{family_ref}/{route}"

    @classmethod
    def submit(cls, ctx: AppendContext, **payload: Any) -> Claim:
        return cls._start(cls.Submitted, payload["claim_id"], ctx, **payload)

    def validate(self, ctx: AppendContext, note: str | None) -> None:
        self._append(self.Validated, ctx, note=note)

    def reject(self, ctx: AppendContext, reason: str) -> None:
        self._append(self.Rejected, ctx, reason=reason)

    def withdraw(self, ctx: AppendContext, reason: str) -> None:
        self._append(self.Withdrawn, ctx, reason=reason)

    def reverse(self, ctx: AppendContext, reason: str, note: str | None) -> None:
        self._append(self.Reversed, ctx, reason=reason, note=note)

    def record_spot_check(
        self, ctx: AppendContext, result: str, reason: str, sample_id: str | None
    ) -> None:
        self._append(self.SpotChecked, ctx, result=result, reason=reason, sample_id=sample_id)


class SpotCheckSample(ChainedAggregate):
    """A recorded, re-derivable sample: seed, population and the claims chosen."""

    STREAM_PREFIX = "spotcheck"

    def __init__(self, sample_id: str):
        self.sample_id = sample_id

    class Drawn(ChainedAggregate.Created):
        sample_id: str
        rate: str
        seed: int
        stratify: str | None
        from_on: str | None
        to_on: str | None
        population: list[str]
        chosen: list[str]

    @classmethod
    def draw(cls, ctx: AppendContext, **payload: Any) -> SpotCheckSample:
        return cls._start(cls.Drawn, payload["sample_id"], ctx, **payload)


class ClaimRun(ChainedAggregate):
    """One claim window's run: what was claimed together, under which policies, for how much,
    and the internal-audit sample drawn from it (re-derivable from the ledger)."""

    STREAM_PREFIX = "claimrun"

    def __init__(self, run_id: str):
        self.run_id = run_id

    class Recorded(ChainedAggregate.Created):
        run_id: str
        from_on: str
        to_on: str
        as_of: str
        known_at: str
        policies: dict[str, str]  # policy id -> the sha256 of the bytes the claims name
        evaluated: int
        counts: dict[str, int]  # route -> claims submitted
        totals: dict[str, str]  # route -> amount (decimal string), and "total"
        claim_ids: list[str]
        audit: dict[str, Any] | None  # {rate, seed, population, chosen} or None

    @classmethod
    def record(cls, ctx: AppendContext, **payload: Any) -> ClaimRun:
        return cls._start(cls.Recorded, payload["run_id"], ctx, **payload)
