"""Evaluation use cases: rebuild a family's evidence at two times and decide.

``evaluate`` answers "as of valid date D, as known at transaction time T, is this family
eligible and is a claim payable?". The policy is the family's authority's plan in force on D
(or one named explicitly); the decision itself is the pure :func:`decide`.
"""

from __future__ import annotations

import os
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.base import iso_utc
from ..domain.family import Family
from ..errors import UsageError
from ..policy.library import load_policies, policy_in_force
from ..policy.load import load_policy_bytes
from ..policy.model import Policy
from .replay import replay

if TYPE_CHECKING:
    from ..application import LedgerApp


def policies_root() -> Path:
    """``CLAIMLEDGER_POLICIES``, else ./policies, else the policies installed with the
    package (``claimledger/policies``, from the repository's ``policies/``)."""
    env = os.environ.get("CLAIMLEDGER_POLICIES")
    if env:
        return Path(env)
    here = Path("policies")
    if here.is_dir():
        return here
    shipped = Path(str(resources.files("claimledger"))) / "policies"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[3] / "policies"  # a source checkout


_CACHE: dict[tuple[str, tuple[tuple[str, int, int], ...]], list[Policy]] = {}


def current_policies(root: Path | None = None) -> list[Policy]:
    """The policies under ``root``, loaded once per process while the files are unchanged."""
    root = root or policies_root()
    if not any(root.glob("*/*.toml")):
        raise UsageError(f"no policies found under {root} (expected <authority>/<plan>.toml "
                         "files; set CLAIMLEDGER_POLICIES to the folder that holds them)")
    stamp = tuple(
        (str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(root.glob("*/*.toml"))
    )
    key = (str(root.resolve()), stamp)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_policies(root)
    return _CACHE[key]


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not an ISO date (YYYY-MM-DD)") from None


def choose_policy(policies: list[Policy], family_policy_id: str, on: date,
                  named: str | None = None) -> Policy:
    """The named policy, or the version of the family's authority's plan in force on ``on``."""
    if named:
        for p in policies:
            if p.id == named:
                return p
        raise UsageError(f"no policy {named!r} (see `claimledger policy list`)")
    return policy_in_force(policies, family_policy_id, on)


def family_records(app: LedgerApp, family_ref: str) -> list[tuple[str, dict[str, Any]]]:
    records = app.stream_records(Family.stream_name(family_ref))
    if not records:
        raise UsageError(f"no family {family_ref!r} in the ledger")
    return records


def known_at_text(app: LedgerApp, known_at: str | None) -> str:
    if known_at is None:
        return iso_utc(app.settings.clock())
    from ..application import parse_moment

    return iso_utc(parse_moment(known_at, "--known-at"))


def evaluate(app: LedgerApp, family_ref: str, as_of: date, known_at: str | None = None,
             policy_id: str | None = None, policy: Policy | None = None) -> dict[str, Any]:
    """The decision as plain data (the DESIGN's JSON contract)."""
    k = known_at_text(app, known_at)
    records = family_records(app, family_ref)
    policy, evidence, decision = replay(
        records, as_of, k, policy or (lambda ev: choose_policy(current_policies(),
                                                               ev.policy_id, as_of, policy_id)))
    result = decision.to_dict()
    result["policy_sha256"] = policy.sha256
    result["selection_notes"] = list(evidence.notes)
    return result


def policy_from_bytes(content: str, path: str) -> Policy:
    return load_policy_bytes(content.encode("utf-8"), path)
