"""The pure kernel every verifier shares: canonical JSON, the envelope and its salted digest,
the RFC 9162 Merkle tree (``merkle``) and its tiles (``tiles``: built by the writer, read by
the provers, rebuilt by verify), Ed25519 signing, the key chain and what checkpoints and
rotations sign (``keychain``), and ``verify`` over stored rows. Takes bytes and trust
anchors, never a database, file or clock. May import nothing of claimledger but ``errors``
and the stored topics (``claimledger.domain.topics``, which ``verify`` checks rows against).
"""
