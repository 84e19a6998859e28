"""Spot checks, evidence bundles, checkpoint proofs and HTML reports (registered on ``cli``)."""

from __future__ import annotations
