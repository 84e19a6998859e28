"""Offline evidence bundles: everything a claim's decision rests on, provable without the ledger.

A bundle is a zip archive (stored, not compressed, written byte for byte the same way every
time) whose members are:

- ``manifest.json``: the format, the claim id and every other member with its SHA-256 and size;
- ``events/<leaf>-<stream>-<version>.json``: the exact stored record bytes (envelope, hash,
  salt, payload) of the claim's ``Claim.Submitted`` event, the family's events the ledger held
  before it (its stream's prefix, from genesis), the next family event when the checkpoint
  holds one (so nothing known before the claim can be left out unseen), the registered policy
  event and the ledger's key registrations;
- ``proofs/<same name>.json``: an RFC 9162 inclusion proof of each event against the
  checkpoint that first covers the claim (the one sealed at submission);
- ``checkpoint.json``: that signed ``Ledger.Checkpointed`` event's exact record bytes;
- ``keys/<key_id>.pub``: the ledger's public keys, as ``signing.pub`` holds them;
- ``policy/<authority>/<plan>.toml``: the exact policy file bytes the claim names;
- ``decision.json``: the recorded decision.

:mod:`claimledger.audit.bundle_check` verifies a bundle from its bytes alone; this module
builds one from the ledger.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.claim import Claim
from ..domain.family import Family
from ..domain.ledger import (
    PolicyVersion,
)
from ..errors import (
    ErasedError,
    IntegrityError,
    UsageError,
)
from ..ledger.canonical import canonical
from ..ledger.envelope import event_id, stream_uuid
from .proofs import NOT_BUILT, Prover

if TYPE_CHECKING:
    from ..application import LedgerApp

from .bundle_check import (  # noqa: F401 (the bundle's format, and its check, re-exported)
    ARCHIVE,
    CHECKPOINT,
    CHECKPOINTED,
    DECISION,
    FORMAT,
    KEY_TYPES,
    LEDGER_STREAM,
    MANIFEST,
    PROOF_KEYS,
    REGISTERED,
    SUBMITTED,
    BundleResult,
    check_bundle,
    pretty,
    sha256_hex,
    verify_bundle,
    write_zip,
)


# --- building a bundle from the ledger ----------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def _stored(app: LedgerApp, stream: str, positions: dict[str, int]
            ) -> list[tuple[bytes, dict[str, Any]]]:
    """(record bytes, record) of every event of a stream, in version order; each event's
    ledger position goes into ``positions`` by its hash.

    The bytes are the canonical record the domain sealed: the stored bytes themselves, or for
    a family event stored encrypted at rest, the decrypted record (same envelope and hash,
    with the salt and payload its digest covers)."""
    out = []
    for position, state in app.streams.stream(stream_uuid(stream)):
        rec = app.open_record(state)
        positions[rec["hash"]] = position
        out.append((canonical(rec), rec))
    return out


def _type(rec: dict[str, Any]) -> str:
    return str(rec["envelope"]["type"])


def _payload(rec: dict[str, Any], what: str) -> dict[str, Any]:
    p = rec.get("payload")
    if p is None:
        eid = event_id(rec["envelope"]["stream"], rec["envelope"]["version"])
        raise ErasedError(f"{what} {eid}: payload erased; a bundle cannot carry it")
    return dict(p)


def build_bundle(app: LedgerApp, claim_id: str) -> tuple[bytes, dict[str, Any]]:
    """The bundle's bytes and a summary. Reads the ledger up to the covering checkpoint once.

    A bundle carries a family's personal data out of the authority, so it needs the auditor
    role (when roles are configured) and the master key that opens the family's payloads."""
    app.actors.require(app.settings.actor_name, "auditor", "bundle a claim's evidence")
    at: dict[str, int] = {}  # event hash -> ledger position
    claim_rows = _stored(app, Claim.stream_name(claim_id), at)
    if not claim_rows:
        raise UsageError(f"no claim {claim_id!r} (see `claimledger claim list`)")
    sub_bytes, sub = claim_rows[0]
    sp = _payload(sub, "claim")
    family_rows = _stored(app, Family.stream_name(sp["family_ref"]), at)
    policy_rows = _stored(app, PolicyVersion.stream_name(sp["policy_sha256"]), at)
    if not policy_rows:
        raise UsageError(f"claim {claim_id}: policy {sp['policy_sha256'][:16]}… not registered")
    ledger_rows = _stored(app, LEDGER_STREAM, at)
    key_rows = [r for r in ledger_rows if _type(r[1]) in KEY_TYPES]
    checkpoints = [(b, r, _payload(r, "checkpoint")) for b, r in ledger_rows
                   if _type(r) == CHECKPOINTED]

    # Leaf indexes and proofs come from the stored tiles (O(log n) reads each); each proof
    # is checked against the checkpoint's signed root before it goes in (audit/proofs.py).
    tiles = app.tiles
    index: dict[str, int] = {}

    def leaf(rec: dict[str, Any]) -> int | None:
        h = rec["hash"]
        if h not in index:
            i = tiles.leaf_index(at[h])
            if i is None:
                return None
            index[h] = i
        return index[h]

    covered = tiles.covered()
    if not covered and checkpoints:
        raise UsageError(NOT_BUILT)
    sub_leaf = leaf(sub) if covered else None
    chosen = None if sub_leaf is None else next(
        (c for c in checkpoints if c[2]["tree_size"] > sub_leaf), None)
    if chosen is None:
        if sub_leaf is None and covered and any(c[2]["tree_size"] > covered
                                                for c in checkpoints):
            raise IntegrityError(f"claim {claim_id}: its Claim.Submitted event is not in the "
                                 "stored Merkle tiles (run `claimledger verify`)")
        if checkpoints and covered < checkpoints[-1][2]["tree_size"]:
            raise UsageError(NOT_BUILT)
        raise UsageError(f"claim {claim_id}: no checkpoint covers its submission yet "
                         "(run `claimledger seal`)")
    cp_bytes, _, cpp = chosen
    size = cpp["tree_size"]
    prover = Prover(tiles, size, cpp["root"])

    def proof(rec: dict[str, Any]) -> list[bytes]:
        env = rec["envelope"]
        return prover.prove(index[rec["hash"]], rec["hash"],
                            event_id(env["stream"], env["version"]))

    def in_tree(rec: dict[str, Any], before: int) -> bool:
        i = leaf(rec)
        return i is not None and i < before

    sub_index = sub_leaf
    if not in_tree(policy_rows[0][1], size):
        raise IntegrityError(f"claim {claim_id}: its policy's registration is not in the tree "
                             "of the checkpoint that covers it (run `claimledger verify`)")
    picked: list[tuple[bytes, dict[str, Any]]] = [(sub_bytes, sub), policy_rows[0]]
    keys_in = [r for r in key_rows if in_tree(r[1], size)]
    picked += keys_in
    prefix = [r for r in family_rows if in_tree(r[1], sub_index)]
    picked += prefix
    if len(prefix) < len(family_rows):
        nxt = family_rows[len(prefix)]
        if in_tree(nxt[1], size):  # in the checkpoint's tree: prove it came after the claim
            picked.append(nxt)
    for _, rec in picked:
        _payload(rec, "event")

    members: dict[str, bytes] = {}
    for raw, rec in picked:
        i = index[rec["hash"]]
        env = rec["envelope"]
        stem = f"{i:07d}-{_safe(env['stream'])}-v{env['version']}.json"
        members[f"events/{stem}"] = raw
        members[f"proofs/{stem}"] = pretty({
            "event": event_id(env["stream"], env["version"]), "hash": rec["hash"],
            "leaf_index": i, "tree_size": size,
            "path": [h.hex() for h in proof(rec)]})
    members[CHECKPOINT] = cp_bytes
    for _, rec in keys_in:
        p = rec["payload"]
        members[f"keys/{p['key_id']}.pub"] = (p["public_key"] + "\n").encode("ascii")
    pp = _payload(policy_rows[0][1], "policy")
    members["policy/" + "/".join(_safe(x) for x in sp["policy_id"].split("/")) + ".toml"] = \
        pp["content"].encode("utf-8")
    members[DECISION] = pretty(sp["decision"])
    members[MANIFEST] = pretty({
        "format": FORMAT, "claim_id": claim_id,
        "members": [{"name": n, "sha256": sha256_hex(b), "size": len(b)}
                    for n, b in sorted(members.items())]})
    data = write_zip(members)
    return data, {
        "claim_id": claim_id, "family_ref": sp["family_ref"], "members": len(members),
        "events": len(picked), "family_events": len(prefix), "tree_size": cpp["tree_size"],
        "root": cpp["root"], "checkpoint_signed_at": cpp["signed_at"], "key_id": cpp["key_id"],
        "sha256": sha256_hex(data),
    }


def write_bundle(app: LedgerApp, claim_id: str, out: Path) -> dict[str, Any]:
    data, summary = build_bundle(app, claim_id)
    out.write_bytes(data)
    return {**summary, "file": str(out), "bytes": len(data)}


# --- verifying a bundle from its bytes ---------------------------------------------------------
