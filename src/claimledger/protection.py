"""Data protection use cases: erase a family's personal data, and review retention.

Erasure destroys the family's data key and records why as a ``Family.Erased`` event. What
is left: every envelope (stream, version, type, times, actors, hashes, digests), the
ciphertext nobody can read, and the claims with their recorded decisions. ``verify`` still
passes and reports the family as erased; evaluation answers "erased".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .audit.claims import claim_ids
from .domain.base import iso_utc
from .domain.claim import Claim
from .domain.family import Family
from .errors import UsageError

if TYPE_CHECKING:
    from .application import LedgerApp


def erase(app: LedgerApp, family_ref: str, reason: str) -> dict[str, Any]:
    if not reason.strip():
        raise UsageError("erase needs --reason (recorded in the ledger)")
    fam = app.find(Family, family_ref)
    if fam is None:
        raise UsageError(f"no family {family_ref!r} in the ledger")
    if fam.erased:
        raise UsageError(f"family {family_ref} was already erased")
    with app.writing() as w:  # the erasure and the key's destruction commit together
        ctx = app.context()
        fam.erase(ctx, reason)
        app.commit(fam)
        app.keystore.destroy(fam.stream, w)
    return {"family_ref": family_ref, "erased_at": ctx.recorded_at_iso, "by": ctx.actor,
            "reason": reason, "event": f"{fam.stream}#{fam.version}"}


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def retention_list(app: LedgerApp, older_than_years: int) -> dict[str, Any]:
    """Families whose last claim decision or spot check is older than the period."""
    if older_than_years < 0:
        raise UsageError("--older-than must be 0 or more years")
    now = app.settings.clock().astimezone(UTC)
    cutoff = iso_utc(_years_before(now, older_than_years))
    last: dict[str, tuple[str, str]] = {}
    for cid in claim_ids(app):
        records = app.stream_records(Claim.stream_name(cid))
        env = records[-1][1]["envelope"]
        family = records[0][1]["payload"]["family_ref"]
        if family not in last or env["recorded_at"] > last[family][0]:
            last[family] = (env["recorded_at"], f"{env['type']} of claim {cid}")
    due = []
    for family, (at, what) in sorted(last.items()):
        if at >= cutoff:
            continue
        fam = app.find(Family, family)
        if fam is None or fam.erased:
            continue
        due.append({"family_ref": family, "last_decision_at": at, "last_decision": what})
    return {"older_than_years": older_than_years, "cutoff": cutoff, "families": due}
