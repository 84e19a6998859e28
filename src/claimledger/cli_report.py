"""Reports over the whole cohort (registered on ``cli``)."""

from __future__ import annotations
