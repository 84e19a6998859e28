"""The Merkle tree stored as tiles (C2SP tlog-tiles), built and read the same way by the
writer (``seal``), the verifier and the provers (bundles, ``checkpoint prove``).

Invariants:
- a tile at level ``L`` holds up to :data:`WIDTH` consecutive hashes of tree height
  ``HEIGHT * L``: level 0 holds leaf hashes, entry ``k`` of level ``L + 1`` is the root of
  the full tile ``k`` of level ``L``; only the rightmost tile of a level may be partial;
- level-0 tiles also carry each leaf's ledger position (positions may have gaps), so the
  leaf index of an event is found by reading one tile;
- tiles are derived data: nothing here trusts them. Every proof read from tiles is checked
  against a signed root before it leaves the product, and ``verify`` rebuilds the tiles from
  the events and compares (:class:`TileCheck`).

Pure: no database, clock or file. Tiles come in through a ``fetch`` callable.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import IntegrityError
from . import merkle

#: Tree levels per tile level, and so hashes per full tile (tlog-tiles: 8 and 256).
HEIGHT = 8
WIDTH = 1 << HEIGHT


@dataclass
class Tile:
    """``hashes``: the entries, 32 bytes each; ``positions``: level 0 only, one per leaf."""

    level: int
    index: int
    hashes: bytes = b""
    positions: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]

    @property
    def width(self) -> int:
        return len(self.hashes) // 32

    def entry(self, k: int) -> bytes:
        return self.hashes[32 * k:32 * k + 32]


def _subtree_root(hashes: bytes) -> bytes:
    """The root over a power-of-two run of 32-byte nodes."""
    nodes = [hashes[k:k + 32] for k in range(0, len(hashes), 32)]
    while len(nodes) > 1:
        pairs = iter(nodes)
        nodes = [hashlib.sha256(b"\x01" + x + y).digest() for x, y in zip(pairs, pairs,
                                                                            strict=True)]
    return nodes[0]


class TileBuilder:
    """Grows the tiles leaf by leaf from the rightmost tile of each level (``edge``).

    :meth:`append` adds leaves; :meth:`drain` returns every tile changed since the last
    drain (each completed tile once, then the partial right edge), which is what a writer
    stores and a verifier compares. Memory: one partial tile per level."""

    def __init__(self, edge: Iterable[Tile] = (), *, height: int = HEIGHT):
        self.height = height
        self.width = 1 << height
        self.edge: list[Tile] = []
        for t in sorted(edge, key=lambda t: t.level):
            if t.level != len(self.edge):
                raise IntegrityError(f"stored Merkle tiles: level {t.level} follows level "
                                     f"{len(self.edge) - 1}")
            self.edge.append(t)
        self._changed: dict[int, Tile] = {}
        self._done: list[Tile] = []

    @property
    def size(self) -> int:
        """Leaves in the tree the tiles hold."""
        if not self.edge:
            return 0
        return self.edge[0].index * self.width + self.edge[0].width

    @property
    def last_position(self) -> int | None:
        t = self.edge[0] if self.edge else None
        return int(t.positions[-1]) if t is not None and len(t.positions) else None

    def append(self, leaves: bytes, positions: Sequence[int]) -> None:
        """Leaf hashes (32 bytes each, in ledger order) and their positions."""
        n = len(leaves) // 32
        if n != len(positions):
            raise ValueError("one position per leaf")
        k = 0
        while k < n:
            t = self._tile(0)
            take = min(n - k, self.width - t.width)
            t.hashes += leaves[32 * k:32 * (k + take)]
            t.positions.extend(positions[k:k + take])
            k += take
            self._settle(0)

    def _tile(self, level: int) -> Tile:
        if level == len(self.edge):
            self.edge.append(Tile(level, 0))
        t = self.edge[level]
        if t.width == self.width:  # full and stored: the next tile of the level begins
            t = self.edge[level] = Tile(level, t.index + 1)
        self._changed[level] = t
        return t

    def _settle(self, level: int) -> None:
        t = self.edge[level]
        while t.width == self.width:
            self._done.append(t)
            self._changed.pop(level, None)
            up = self._tile(level + 1)
            up.hashes += _subtree_root(t.hashes)
            level += 1
            t = up

    def completed(self) -> list[Tile]:
        """The tiles completed since the last call (each exactly once)."""
        out, self._done = self._done, []
        return out

    def drain(self) -> list[Tile]:
        out = self._done + [t for t in self._changed.values() if t.width]
        self._done, self._changed = [], {}
        return out

    def root(self) -> bytes:
        """The tree's root from the right edge alone (the size in base ``WIDTH``)."""
        nodes: list[bytes] = []
        for t in reversed(self.edge):
            w, k = t.width if t.width < self.width else 0, 0
            for bit in range(self.height - 1, -1, -1):
                if w >> bit & 1:
                    nodes.append(_subtree_root(t.hashes[32 * k:32 * (k + (1 << bit))]))
                    k += 1 << bit
        if not nodes:
            return merkle.EMPTY_ROOT
        r = nodes[-1]
        for h in reversed(nodes[:-1]):
            r = merkle.node_hash(h, r)
        return r


#: (level, index) -> the stored tile, or None if there is none.
Fetch = Callable[[int, int], "Tile | None"]


class TileReader:
    """Subtree roots for proofs over a tree of ``size`` leaves, read from stored tiles: a
    proof needs O(log n) nodes, each in one tile (tiles are fetched once per reader)."""

    def __init__(self, fetch: Fetch, size: int, *, height: int = HEIGHT):
        self.fetch, self.size, self.height = fetch, size, height
        self._cache: dict[tuple[int, int], Tile] = {}

    def _tile(self, level: int, index: int) -> Tile:
        key = (level, index)
        t = self._cache.get(key)
        if t is None:
            t = self.fetch(level, index)
            if t is None:
                raise IntegrityError(f"stored Merkle tiles: no tile at level {level} index "
                                     f"{index} for a tree of {self.size} leaves (run "
                                     "`claimledger seal` to build them)")
            self._cache[key] = t
        return t

    def node(self, h: int, i: int) -> bytes:
        """The perfect subtree of height ``h`` whose leftmost leaf is ``i << h``."""
        level, r = divmod(h, self.height)
        first = i << r
        t = self._tile(level, first >> self.height)
        off = first & ((1 << self.height) - 1)
        if off + (1 << r) > t.width:
            raise IntegrityError(f"stored Merkle tiles: tile at level {level} index "
                                 f"{t.index} holds {t.width} hashes, {off + (1 << r)} needed")
        return _subtree_root(t.hashes[32 * off:32 * (off + (1 << r))])

    def root_of(self, a: int, b: int) -> bytes:
        """MTH(D[a:b]) for a subtree of the RFC 9162 tree (``a`` aligned to its split)."""
        n = b - a
        if n <= 0 or b > self.size:
            raise ValueError(f"subtree [{a}, {b}) outside tree of size {self.size}")
        if n & (n - 1) == 0 and a % n == 0:
            return self.node(n.bit_length() - 1, a // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return merkle.node_hash(self.root_of(a, a + k), self.root_of(a + k, b))

    def root(self) -> bytes:
        return self.root_of(0, self.size) if self.size else merkle.EMPTY_ROOT

    def inclusion(self, index: int) -> list[bytes]:
        return merkle.inclusion_path(index, self.size, self.root_of)

    def consistency(self, first_size: int) -> list[bytes]:
        return merkle.consistency_path(first_size, self.size, self.root_of)


class TileCheck:
    """Rebuilds the tiles of the first ``size`` leaves as a verifier reads them and compares
    each with the stored one (``fetch``). ``size`` is how many leaves the stored tiles
    claim to hold. Non-raising: :attr:`mismatch` is the first difference found, as
    (position of the tile's last leaf so far, kind, detail), or None: *truncated* when the
    tiles hold more leaves than the ledger has events, else *edited*."""

    def __init__(self, fetch: Fetch, size: int, *, height: int = HEIGHT):
        self.fetch, self.size = fetch, size
        self.builder = TileBuilder(height=height)
        self.fed = 0
        self.last_position = 0
        self.mismatch: tuple[int, str, str] | None = None

    def feed(self, leaves: bytes, positions: Sequence[int]) -> None:
        take = min(len(leaves) // 32, self.size - self.fed)
        if take <= 0 or self.mismatch is not None:
            return
        self.builder.append(leaves[:32 * take], positions[:take])
        self.fed += take
        self.last_position = int(positions[take - 1])
        self._compare(self.builder.completed())

    def finish(self, events: int) -> tuple[int, str, str] | None:
        """After every leaf (``events`` of them): the partial right edge, and the count."""
        if self.mismatch is None and self.fed < self.size:
            self.mismatch = (self.last_position, "truncated",
                             f"the stored Merkle tiles hold {self.size} leaves but the ledger "
                             f"has {events} events")
        if self.mismatch is None:
            self._compare(self.builder.drain())
        return self.mismatch

    def _compare(self, tiles: Sequence[Tile]) -> None:
        for t in tiles:
            if self.mismatch is not None:
                return
            where = f"stored Merkle tile level {t.level} index {t.index}"
            stored = self.fetch(t.level, t.index)
            if stored is None:
                self.mismatch = (self.last_position, "edited", f"{where} is missing")
            elif stored.hashes != t.hashes:
                k = next((k for k in range(max(stored.width, t.width))
                          if stored.entry(k) != t.entry(k)), 0)
                self.mismatch = (int(t.positions[min(k, len(t.positions) - 1)])
                                 if t.level == 0 else self.last_position, "edited",
                                 f"{where} differs from the tree the events give (entry {k})")
            elif t.level == 0 and stored.positions != t.positions:
                self.mismatch = (self.last_position, "edited",
                                 f"{where} names other ledger positions than the events'")
