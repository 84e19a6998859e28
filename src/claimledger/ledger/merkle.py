"""RFC 9162 (RFC 6962) Merkle tree hashing, proofs and a compact frontier.

Invariants:
- leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right);
- the root of n leaves splits at the largest power of two smaller than n;
- a :class:`Frontier` holds only the roots of the perfect subtrees of the tree so far
  (at most log2(n) hashes), so a ledger can be sealed and verified in a stream with
  memory independent of its length.

All functions take and return raw ``bytes`` hashes; verification never reads clocks or disks.
The published Certificate Transparency vectors (``tests/data/rfc6962.json``, a copy of the
team's shared vectors, so a clone tests on its own) are the tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import IntegrityError

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already leaf-hashed entries."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(root_of_leaf_hashes(hashes[:k]), root_of_leaf_hashes(hashes[k:]))


#: MTH(D[a:b]) for a subtree of the tree: the stored tiles answer it in O(log n) reads
#: (ledger/tiles.py), a list of leaf hashes by hashing the slice.
SubtreeRoot = Callable[[int, int], bytes]


def _list_roots(hashes: Sequence[bytes]) -> SubtreeRoot:
    return lambda a, b: root_of_leaf_hashes(hashes[a:b])


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) for leaf ``index`` (0-based) over leaf hashes."""
    return inclusion_path(index, len(hashes), _list_roots(hashes))


def inclusion_path(index: int, size: int, root_of: SubtreeRoot) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 section 2.1.3.1) from the roots of its subtrees."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside tree of size {size}")
    path: list[bytes] = []
    a, b = 0, size
    while b - a > 1:
        k = _split(b - a)
        if index < a + k:
            path.append(root_of(a + k, b))
            b = a + k
        else:
            path.append(root_of(a, a + k))
            a += k
    path.reverse()
    return path


def root_from_inclusion_proof(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 section 2.1.3.2: the root a proof implies for a leaf hash."""
    if not 0 <= index < tree_size:
        raise IntegrityError(f"inclusion proof: index {index} outside tree of size {tree_size}")
    fn, sn = index, tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise IntegrityError("inclusion proof: longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("inclusion proof: shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    got = root_from_inclusion_proof(index, tree_size, leaf, proof)
    if got != root:
        raise IntegrityError(
            f"inclusion proof for leaf {index} of {tree_size}: root {got.hex()[:16]}…, "
            f"expected {root.hex()[:16]}…"
        )


def consistency_proof(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): RFC 9162 section 2.1.4.1."""
    return consistency_path(m, len(hashes), _list_roots(hashes))


def consistency_path(m: int, size: int, root_of: SubtreeRoot) -> list[bytes]:
    """PROOF(m, D[size]) (RFC 9162 section 2.1.4.1) from the roots of its subtrees."""
    if not 0 < m <= size:
        raise ValueError(f"consistency proof needs 0 < {m} <= {size}")
    path: list[bytes] = []
    a, b, complete = 0, size, True
    while m != b - a:
        k = _split(b - a)
        if m <= k:
            path.append(root_of(a + k, b))
            b = a + k
        else:
            path.append(root_of(a, a + k))
            m -= k
            a += k
            complete = False
    if not complete:
        path.append(root_of(a, b))
    path.reverse()
    return path


def verify_consistency(
    first_size: int, second_size: int, first_root: bytes, second_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """RFC 9162 section 2.1.4.2; raises IntegrityError naming what failed."""
    if first_size > second_size or first_size < 1:
        raise IntegrityError(f"consistency: sizes {first_size} -> {second_size} not growing")
    if first_size == second_size:
        if proof:
            raise IntegrityError("consistency: proof must be empty for equal sizes")
        if first_root != second_root:
            raise IntegrityError("consistency: equal sizes but different roots (rewritten)")
        return
    path = list(proof)
    if first_size & (first_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, first_root)
    if not path:
        raise IntegrityError("consistency: empty proof")
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise IntegrityError("consistency: proof longer than expected")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("consistency: proof shorter than expected")
    if fr != first_root:
        raise IntegrityError(
            f"consistency: old root {first_root.hex()[:16]}… is not a prefix of the new tree "
            "(the ledger was rewritten)"
        )
    if sr != second_root:
        raise IntegrityError(
            f"consistency: proof gives new root {sr.hex()[:16]}…, "
            f"expected {second_root.hex()[:16]}…"
        )


@dataclass
class Frontier:
    """The perfect-subtree roots of a growing tree, left to right: [(size, hash), ...]."""

    size: int = 0
    stack: list[tuple[int, bytes]] | None = None

    def __post_init__(self) -> None:
        if self.stack is None:
            self.stack = []

    def append(self, leaf_hash_: bytes) -> None:
        stack = self.stack
        assert stack is not None
        stack.append((1, leaf_hash_))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (s, right), (_, left) = stack.pop(), stack.pop()
            stack.append((2 * s, node_hash(left, right)))
        self.size += 1

    def root(self) -> bytes:
        stack = self.stack
        assert stack is not None
        if not stack:
            return EMPTY_ROOT
        r = stack[-1][1]
        for _, h in reversed(stack[:-1]):
            r = node_hash(h, r)
        return r

    def to_json(self) -> list[list[object]]:
        assert self.stack is not None
        return [[s, h.hex()] for s, h in self.stack]

    @classmethod
    def from_json(cls, data: list[list[object]]) -> Frontier:
        stack = [(int(s), bytes.fromhex(str(h))) for s, h in data]  # type: ignore[call-overload]
        return cls(size=sum(s for s, _ in stack), stack=stack)

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.stack or []))
