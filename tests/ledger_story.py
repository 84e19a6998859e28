"""A small ledger story shared by the integrity tests: two families, two checkpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from claimledger.application import LedgerApp, Settings, open_app
from claimledger.domain.family import Family
from claimledger.ledger.canonical import canonical, loads
from claimledger.ledger.envelope import envelope_hash, payload_digest

FILE = "0" * 64


def _key(*parts: object) -> str:
    return hashlib.sha256(canonical(list(parts))).hexdigest()


def add_family(app: LedgerApp, ref: str, children: int = 2) -> Family:
    ctx = app.context()
    fam = Family.register(
        ctx, family_ref=ref, authority="Worcestershire",
        policy_id="worcestershire/stronger-families-2015-16", identified_on="2015-05-01",
        file_sha256=FILE, row=2, row_key=_key("families", ref),
    )
    for i in range(children):
        fam.record(
            Family.MemberAdded, ctx, file_sha256=FILE, row=3 + i,
            row_key=_key("members", ref, i), member_ref=f"{ref}-C{i}", role="child",
            birth_date="2008-01-0" + str(i + 1),
        )
    fam.record(
        Family.IndicatorRecorded, ctx, file_sha256=FILE, row=9, row_key=_key("ind", ref),
        member_ref=f"{ref}-C0", problem="education", indicator="absence",
        observed_on="2015-05-01", stage="identification", source="school census",
    )
    app.commit(fam)
    return fam


def build(settings_for: Callable[..., Settings]) -> dict[str, int]:
    """init (1) + F-1 (4) + F-2 (4) + checkpoint; F-3 (4) + checkpoint; one more event."""
    app = open_app(settings_for(now="2016-01-01T09:00:00Z"), must_exist=False)
    app.init("Worcestershire")
    add_family(app, "F-1")
    add_family(app, "F-2")
    cp1 = app.seal()
    app = open_app(settings_for(now="2016-02-01T09:00:00Z"))
    add_family(app, "F-3")
    cp2 = app.seal()
    app = open_app(settings_for(now="2016-03-01T09:00:00Z"))
    fam = app.find(Family, "F-1")
    assert fam is not None
    fam.record(
        Family.IncidentRecorded, app.context(), file_sha256=FILE, row=20,
        row_key=_key("inc", 1), member_ref="F-1-C0", occurred_on="2016-02-10",
        kind="asb_incident", serious=False, source="police",
    )
    app.commit(fam)
    return {"cp1": cp1["checkpoint_position"], "cp2": cp2["checkpoint_position"]}


def reseal(state: bytes, **payload_changes: object) -> bytes:
    """What a careful forger does: change the payload and recompute digest and hash."""
    rec = loads(state)
    rec["payload"].update(payload_changes)
    rec["envelope"]["payload_digest"] = payload_digest(bytes.fromhex(rec["salt"]), rec["payload"])
    rec["hash"] = envelope_hash(rec["envelope"])
    return canonical(rec)


def signed_by_another_key(state: bytes, ledger_id: str) -> bytes:
    """A checkpoint re-signed, correctly, by a key the ledger never registered."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from claimledger.ledger import signing
    from claimledger.ledger.keychain import checkpoint_statement

    p = loads(state)["payload"]
    other = Ed25519PrivateKey.generate()
    kid = signing.key_id(signing.public_raw(other))
    stmt = checkpoint_statement(ledger_id, p["tree_size"], p["root"], p["prev_checkpoint"],
                                p["signed_at"], kid)
    return reseal(state, key_id=kid, signature=other.sign(canonical(stmt)).hex())
