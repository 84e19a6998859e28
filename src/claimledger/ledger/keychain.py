"""The ledger's signing keys and what they sign, checked once for every verifier.

Invariants:
- the ledger's first event (``Ledger.Initialised``) registers its first key; each
  ``Ledger.KeyRotated`` registers the next, endorsed by the key before it over
  :func:`rotation_statement`; the last key registered is the active one;
- a checkpoint is signed by the active key over :func:`checkpoint_statement`: the ledger
  id, tree size, Merkle root, previous checkpoint, signing time and key id, as canonical
  JSON, so a signature made for one ledger, size or root holds for no other.

``verify`` (ledger/verify.py), the offline bundle check and the consistency-proof check
all call these, and map a :class:`KeyChainError` to their own findings. Pure: bytes in,
no clock or disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import IntegrityError
from .canonical import canonical
from .signing import verify_signature

#: The ledger events that register a signing key.
KEY_TYPES = ("Ledger.Initialised", "Ledger.KeyRotated")


class KeyChainError(IntegrityError):
    """A rotation or a checkpoint signature that the key chain does not support."""


def checkpoint_statement(
    ledger_id: str, tree_size: int, root: str, prev_checkpoint: str | None, signed_at: str,
    key_id: str,
) -> dict[str, Any]:
    """What a checkpoint signature signs (canonical JSON of this dict)."""
    return {
        "ledger_id": ledger_id,
        "tree_size": tree_size,
        "root": root,
        "prev_checkpoint": prev_checkpoint,
        "signed_at": signed_at,
        "key_id": key_id,
    }


def rotation_statement(ledger_id: str, previous_key_id: str, key_id: str) -> dict[str, Any]:
    """What the outgoing key signs to hand over to the new one."""
    return {"ledger_id": ledger_id, "previous_key_id": previous_key_id, "key_id": key_id}


def check_rotation(p: Mapping[str, Any], keys: Mapping[str, bytes], active: str | None,
                   ledger_id: str | None, what: str) -> None:
    """A ``Ledger.KeyRotated`` payload ``p``: it names the active key as the previous one,
    and that key endorsed the new one."""
    if active is None or p["previous_key_id"] != active or active not in keys:
        raise KeyChainError(f"{what} names previous key {str(p['previous_key_id'])[:16]}…, "
                            "which is not the active key")
    statement = rotation_statement(ledger_id or "", p["previous_key_id"], p["key_id"])
    try:
        verify_signature(keys[active], bytes.fromhex(p["endorsement"]), canonical(statement),
                         what)
    except (IntegrityError, ValueError):
        raise KeyChainError(f"{what} is not endorsed by the previous key") from None


def check_checkpoint_signature(p: Mapping[str, Any], public: bytes, ledger_id: str,
                               what: str) -> None:
    """A checkpoint payload ``p`` (tree_size, root, prev_checkpoint, signed_at, key_id,
    signature) is signed by ``public`` for ``ledger_id``."""
    statement = checkpoint_statement(ledger_id, p["tree_size"], p["root"],
                                     p["prev_checkpoint"], p["signed_at"], p["key_id"])
    try:
        signature = bytes.fromhex(p["signature"])
    except (TypeError, ValueError):
        raise KeyChainError(f"{what}: signature is not hex") from None
    try:
        verify_signature(public, signature, canonical(statement), what)
    except IntegrityError as e:
        raise KeyChainError(str(e)) from None
