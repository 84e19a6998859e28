"""The ledger's own streams: its identity and signing keys, checkpoints, and policy versions.

A checkpoint is a signed RFC 9162 Merkle root over every event hash before it in ledger
order. It stores the tree's frontier so the next seal continues from it without rereading
the ledger, and names the previous checkpoint so checkpoints form their own chain.
"""

from __future__ import annotations

from typing import Any

from .base import AppendContext, ChainedAggregate

LEDGER_KEY = "main"


class Ledger(ChainedAggregate):
    STREAM_PREFIX = "ledger"

    def __init__(
        self, ledger_id: str, authority: str, public_key: str, key_id: str, master_key_id: str
    ):
        self.ledger_id = ledger_id
        self.master_key_id = master_key_id
        self.authority = authority
        self.keys: list[str] = [key_id]
        self.active_key_id = key_id
        self.last_checkpoint: dict[str, Any] | None = None
        self.last_checkpoint_hash: str | None = None

    class Initialised(ChainedAggregate.Created):
        ledger_id: str
        authority: str
        public_key: str
        key_id: str
        master_key_id: str

    class KeyRotated(ChainedAggregate.Event):
        """A new signing key; ``endorsement`` is the previous key's signature over
        :func:`claimledger.ledger.keychain.rotation_statement`, so only the holder of the
        old key could rotate it."""

        public_key: str
        key_id: str
        previous_key_id: str
        reason: str
        endorsement: str

        def apply(self, aggregate: Ledger) -> None:
            aggregate.keys.append(self.key_id)
            aggregate.active_key_id = self.key_id

    class Checkpointed(ChainedAggregate.Event):
        tree_size: int
        last_position: int
        root: str
        frontier: list[list[Any]]
        key_id: str
        signed_at: str
        prev_checkpoint: str | None
        signature: str

        def apply(self, aggregate: Ledger) -> None:
            aggregate.last_checkpoint = self.payload()
            aggregate.last_checkpoint_hash = self.event_hash

    @classmethod
    def initialise(
        cls, ctx: AppendContext, ledger_id: str, authority: str, public_key: str, key_id: str,
        master_key_id: str,
    ) -> Ledger:
        return cls._start(
            cls.Initialised, LEDGER_KEY, ctx, ledger_id=ledger_id, authority=authority,
            public_key=public_key, key_id=key_id, master_key_id=master_key_id,
        )

    def rotate_key(
        self, ctx: AppendContext, public_key: str, key_id: str, reason: str, endorsement: str
    ) -> None:
        self._append(
            self.KeyRotated, ctx, public_key=public_key, key_id=key_id,
            previous_key_id=self.active_key_id, reason=reason, endorsement=endorsement,
        )

    def checkpoint(self, ctx: AppendContext, **payload: Any) -> None:
        self._append(self.Checkpointed, ctx, **payload)


class PolicyVersion(ChainedAggregate):
    """The exact bytes of a policy file, registered the first time a decision uses them."""

    STREAM_PREFIX = "policy"

    def __init__(self, policy_id: str, sha256: str, path: str, content: str):
        self.policy_id = policy_id
        self.sha256 = sha256
        self.path = path
        self.content = content

    class Registered(ChainedAggregate.Created):
        policy_id: str
        sha256: str
        path: str
        content: str

    @classmethod
    def register(
        cls, ctx: AppendContext, policy_id: str, sha256: str, path: str, content: str
    ) -> PolicyVersion:
        return cls._start(
            cls.Registered, sha256, ctx, policy_id=policy_id, sha256=sha256, path=path,
            content=content,
        )
