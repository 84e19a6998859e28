"""Inclusion proofs of ledger events from the stored Merkle tiles, checked before use.

Each proof is read from the tiles in O(log n) and checked against the checkpoint's signed
root before it is returned, so an altered tile stops the caller (bundle, report, case file)
with an IntegrityError and never reaches a document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import IntegrityError, UsageError
from ..ledger import merkle
from ..ledger.tiles import TileReader

if TYPE_CHECKING:
    from ..store.tiles import TileStore

NOT_BUILT = ("the ledger's Merkle tiles are not built yet: run `claimledger seal` once (it "
             "builds them) and try again")


class Prover:
    """Proofs under one checkpoint (``tree_size``, ``root`` hex) from ``tiles``."""

    def __init__(self, tiles: TileStore, tree_size: int, root: str):
        if tiles.covered() < tree_size:
            raise UsageError(NOT_BUILT)
        self.tiles, self.size, self.root = tiles, tree_size, bytes.fromhex(root)
        self.tree = TileReader(tiles.fetch, tree_size)

    def leaf_index(self, position: int) -> int | None:
        """The event's leaf index, if the checkpoint's tree holds it."""
        i = self.tiles.leaf_index(position)
        return i if i is not None and i < self.size else None

    def prove(self, index: int, event_hash: str, name: str) -> list[bytes]:
        """The inclusion path of leaf ``index`` holding ``event_hash``, checked."""
        path = self.tree.inclusion(index)
        try:
            merkle.verify_inclusion(index, self.size, merkle.leaf_hash(bytes.fromhex(event_hash)),
                                    path, self.root)
        except IntegrityError:
            raise IntegrityError(
                f"the stored Merkle tiles do not prove {name} under checkpoint {self.size}'s "
                "signed root (a tile was altered: run `claimledger verify`)") from None
        return path
