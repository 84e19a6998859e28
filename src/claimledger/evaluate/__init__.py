"""Evaluation: from a family's evidence and a policy to a claim decision.

``decide`` is the pure decision; choosing the evidence by valid and transaction time from the
ledger happens before it, so a replay needs only the policy bytes and the events.
"""

from .decide import (
    Decision,
    OutcomeResult,
    ProblemResult,
    decide,
    evaluate_outcome,
    evaluate_outcomes,
    payment_for,
)

__all__ = [
    "Decision",
    "OutcomeResult",
    "ProblemResult",
    "decide",
    "evaluate_outcome",
    "evaluate_outcomes",
    "payment_for",
]
