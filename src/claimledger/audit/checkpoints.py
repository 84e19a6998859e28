"""Checkpoints for spot-checkers: list them, prove the ledger only grew, check such a proof.

A spot-checker who kept an earlier checkpoint (its ``tree_size`` and ``root``, e.g. from
``checkpoint list --json`` or the ``witness.json`` beside the keys) asks the ledger for an
RFC 9162 consistency proof from that size to a later signed checkpoint. The proof document
carries the later checkpoint's signed statement and public key; :func:`check_consistency`
checks it offline against the root the checker kept, never the root the document states, so
a ledger rewritten and re-sealed since cannot pass.

``prove FROM TO``: both are tree sizes (numbers of events covered). ``TO`` must be the size of
a signed checkpoint (default: the latest); ``FROM`` is any size from 1 to ``TO``, normally the
size of the checkpoint the checker kept (which a rewritten ledger may no longer have).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..domain.ledger import LEDGER_KEY, Ledger
from ..errors import IntegrityError, UsageError
from ..ledger import merkle
from ..ledger.keychain import KEY_TYPES, KeyChainError, check_checkpoint_signature
from ..ledger.signing import key_id as compute_key_id
from ..ledger.tiles import TileReader
from .proofs import NOT_BUILT

if TYPE_CHECKING:
    from ..application import LedgerApp

FORMAT = "claimledger-consistency/1"


def _ledger_records(app: LedgerApp) -> list[dict[str, Any]]:
    return [rec for _, rec in app.stream_records(Ledger.stream_name(LEDGER_KEY))]


def list_checkpoints(app: LedgerApp) -> dict[str, Any]:
    """Every signed checkpoint in order, each with what a spot-checker keeps."""
    records = _ledger_records(app)
    if not records:
        raise UsageError("no ledger here: run `claimledger init` first")
    ledger_id = records[0]["payload"]["ledger_id"]
    out = []
    for rec in records:
        if rec["envelope"]["type"] != "Ledger.Checkpointed":
            continue
        p = rec["payload"]
        out.append({"event": f"{rec['envelope']['stream']}#{rec['envelope']['version']}",
                    "tree_size": p["tree_size"], "root": p["root"],
                    "last_position": p["last_position"], "signed_at": p["signed_at"],
                    "key_id": p["key_id"], "hash": rec["hash"]})
    return {"ledger_id": ledger_id, "checkpoints": out}


def prove(app: LedgerApp, first_size: int, second_size: int | None = None) -> dict[str, Any]:
    """The consistency proof document from tree size ``first_size`` to a signed checkpoint."""
    records = _ledger_records(app)
    if not records:
        raise UsageError("no ledger here: run `claimledger init` first")
    ledger_id = records[0]["payload"]["ledger_id"]
    keys = {r["payload"]["key_id"]: r["payload"]["public_key"] for r in records
            if r["envelope"]["type"] in KEY_TYPES}
    signed = [r["payload"] for r in records if r["envelope"]["type"] == "Ledger.Checkpointed"]
    if not signed:
        raise UsageError("the ledger has no checkpoint yet (run `claimledger seal`)")
    if second_size is None:
        second = signed[-1]
    else:
        second = next((c for c in signed if c["tree_size"] == second_size), None)  # type: ignore[assignment]
        if second is None:
            sizes = ", ".join(str(c["tree_size"]) for c in signed[-8:])
            raise UsageError(f"TO: no checkpoint of tree size {second_size} (latest sizes: "
                             f"{sizes}; see `claimledger checkpoint list`)")
    n = second["tree_size"]
    if not 1 <= first_size <= n:
        raise UsageError(f"FROM: tree size {first_size} must be between 1 and {n}")
    if app.tiles.covered() < n:
        raise UsageError(NOT_BUILT)
    # O(log n) reads of the stored tiles; the proof is checked against the signed root
    # before it is handed out, so an altered tile stops here.
    tree = TileReader(app.tiles.fetch, n)
    first_root = tree.root_of(0, first_size)
    proof = tree.consistency(first_size)
    try:
        merkle.verify_consistency(first_size, n, first_root, bytes.fromhex(second["root"]),
                                  proof)
    except IntegrityError:
        raise IntegrityError(f"the stored Merkle tiles do not give checkpoint {n}'s signed "
                             "root (a tile was altered: run `claimledger verify`)") from None
    return {
        "format": FORMAT,
        "ledger_id": ledger_id,
        "first": {"tree_size": first_size, "root": first_root.hex()},
        "second": {"tree_size": n, "root": second["root"], "signed_at": second["signed_at"],
                   "prev_checkpoint": second["prev_checkpoint"], "key_id": second["key_id"],
                   "signature": second["signature"], "public_key": keys[second["key_id"]]},
        "proof": [h.hex() for h in proof],
    }


@dataclass
class ConsistencyResult:
    """The non-raising result of :func:`check_consistency`."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_size: int | None = None
    second_size: int | None = None
    second_root: str | None = None
    key_source: str | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons

    def raise_for_failure(self) -> None:
        if self.reasons:
            raise IntegrityError("; ".join(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "from": self.first_size, "to": self.second_size,
                "root": self.second_root, "key_source": self.key_source,
                "reasons": list(self.reasons), "notes": list(self.notes)}


def check_consistency(doc_bytes: bytes, kept_size: int, kept_root: str, *,
                      trusted_key: bytes | None = None) -> ConsistencyResult:
    """Check a proof document against the checkpoint a spot-checker kept; never raises on a
    bad proof. Pure: no ledger, clock or disk."""
    res = ConsistencyResult(first_size=kept_size)
    try:
        doc = orjson.loads(doc_bytes)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
        s = doc["second"]
        second_size, second_root = int(s["tree_size"]), str(s["root"])
        proof = [bytes.fromhex(h) for h in doc["proof"]]
        first = doc["first"]
        signed = {"tree_size": second_size, "root": second_root,
                  "prev_checkpoint": s["prev_checkpoint"], "signed_at": s["signed_at"],
                  "key_id": s["key_id"], "signature": s["signature"]}
        ledger_id = str(doc["ledger_id"])
        bundled = bytes.fromhex(s["public_key"])
        old_root = bytes.fromhex(kept_root)
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        res.reasons.append(f"not a consistency proof document ({e})")
        return res
    res.second_size, res.second_root = second_size, second_root
    if trusted_key is not None:
        res.key_source = "--pubkey"
        if compute_key_id(trusted_key) != s["key_id"]:
            res.reasons.append(f"checkpoint of size {second_size} is signed with key "
                               f"{s['key_id'][:16]}…, not the trusted key "
                               f"{compute_key_id(trusted_key)[:16]}…")
        public = trusted_key
    else:
        res.key_source = "bundled"
        if compute_key_id(bundled) != s["key_id"]:
            res.reasons.append("the document's public key is not the key its checkpoint names")
        public = bundled
        res.notes.append("signature checked against the document's own key; pass --pubkey "
                         "with the authority's published key to trust it")
    try:
        check_checkpoint_signature(signed, public, ledger_id, f"checkpoint of size {second_size}")
    except KeyChainError as e:
        res.reasons.append(str(e))
    if first.get("tree_size") != kept_size:
        res.reasons.append(f"the proof starts at tree size {first.get('tree_size')}, you kept "
                           f"a checkpoint of size {kept_size}: ask for `checkpoint prove "
                           f"{kept_size}`")
        return res
    if first.get("root") != kept_root:
        res.reasons.append(f"the ledger now gives root {str(first.get('root'))[:16]}… for its "
                           f"first {kept_size} events, you kept {kept_root[:16]}…: those events "
                           "were rewritten")
    try:
        merkle.verify_consistency(kept_size, second_size, old_root, bytes.fromhex(second_root),
                                  proof)
    except IntegrityError as e:
        res.reasons.append(str(e))
    return res


def read_kept(data: bytes, where: str) -> tuple[int, str]:
    """A kept checkpoint: any JSON object with ``tree_size`` and ``root`` (``witness.json``,
    an entry of ``checkpoint list --json``, or a proof document's ``second``)."""
    try:
        d = orjson.loads(data)
        if isinstance(d, dict) and "second" in d and "tree_size" not in d:
            d = d["second"]
        size, root = int(d["tree_size"]), str(d["root"])
        if len(bytes.fromhex(root)) != 32:
            raise ValueError(f"root {root!r} is not 64 hex digits")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{where}: not a kept checkpoint with tree_size and root ({e})") from None
    return size, root
