"""The pure kernel every verifier shares: canonical JSON, the envelope and its salted digest,
the RFC 9162 Merkle tree, Ed25519 signing, and ``verify`` over stored rows. Takes bytes and
trust anchors, never a database, file or clock. May import nothing of claimledger but
``errors`` and the domain's statement and topic definitions.
"""
