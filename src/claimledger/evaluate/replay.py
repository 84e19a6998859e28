"""The one path from a family's records to a decision, as of a valid date and as known at
a moment: ``evaluate``, ``claim submit``, ``claim explain``, claim runs and the offline
bundle check all replay through :func:`replay`, so what a claim recorded and what a checker
re-derives come from the same steps with the same ``known_at``.

Pure: records in (as a reader or a bundle gives them), a decision out; no clock, no disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from ..policy.evidence import FamilyEvidence
from ..policy.model import Policy
from .decide import Decision, decide
from .timeline import select_evidence

#: A policy, or how to choose one from the evidence (its family's authority and plan).
PolicyChoice = Policy | Callable[[FamilyEvidence], Policy]


def replay(records: Sequence[tuple[str, dict[str, Any]]], as_of: date, known_at: str,
           policy: PolicyChoice) -> tuple[Policy, FamilyEvidence, Decision]:
    """Select what was known at ``known_at`` and valid on ``as_of``, then decide under
    ``policy``; the decision carries ``known_at``."""
    evidence = select_evidence(list(records), as_of=as_of, known_at=known_at)
    chosen = policy if isinstance(policy, Policy) else policy(evidence)
    return chosen, evidence, decide(chosen, evidence, as_of, known_at)
