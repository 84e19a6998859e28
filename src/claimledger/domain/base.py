"""Chained aggregates: eventsourcing aggregates whose events are sealed as they happen.

Each event is sealed into its stream's hash chain at the moment it is triggered, from the
aggregate's head hash, an :class:`AppendContext` (who, when, a salt) and the event's payload.
Sealing is pure computation: the context carries the clock reading and the salt source, so
domain code does no I/O.

Payload fields hold JSON-native values only (str, int, bool, None, lists, dicts): dates are
ISO strings. That keeps the stored bytes canonical and float-free.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from ..ledger.envelope import GENESIS, Sealed, seal, stream_uuid

#: Attributes every event has that are not payload.
BASE_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "actor",
        "salt",
        "prev_hash",
        "payload_digest",
        "event_hash",
        "stream",
    }
)


@dataclass(frozen=True)
class AppendContext:
    """Who is appending and when (the ledger clock's reading for this command)."""

    actor: str
    recorded_at: datetime
    new_salt: Callable[[], bytes] = field(default=lambda: os.urandom(16))

    @property
    def recorded_at_iso(self) -> str:
        return iso_utc(self.recorded_at)


@functools.lru_cache(maxsize=256)
def iso_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reseal(events: list[Any], ctx: AppendContext) -> list[Any]:
    """One aggregate's pending events sealed again at ``ctx``'s moment (the one the
    writers' lock assigned), chained from the first one's ``prev_hash``: the same payloads,
    salts and actors, so the same computation as at trigger time. Events already sealed at
    that moment are kept as they are."""
    out: list[Any] = []
    prev = events[0].prev_hash if events else GENESIS
    at = ctx.recorded_at_iso
    for ev in events:
        if ev.timestamp == ctx.recorded_at and ev.prev_hash == prev:
            out.append(ev)
            prev = ev.event_hash
            continue
        sealed = seal(stream=ev.stream, version=ev.originator_version,
                      type_=type(ev).__qualname__, recorded_at=at, actor=ev.actor,
                      prev_hash=prev, salt=bytes.fromhex(ev.salt), payload=ev.payload())
        again = object.__new__(type(ev))
        again.__dict__.update(ev.__dict__)
        again.__dict__.update(timestamp=ctx.recorded_at, prev_hash=prev,
                              payload_digest=sealed.envelope["payload_digest"],
                              event_hash=sealed.hash)
        out.append(again)
        prev = sealed.hash
    return out


def _seal_for(
    stream: str, version: int, event_class: type, prev_hash: str, ctx: AppendContext,
    payload: dict[str, Any],
) -> Sealed:
    return seal(
        stream=stream,
        version=version,
        type_=event_class.__qualname__,
        recorded_at=ctx.recorded_at_iso,
        actor=ctx.actor,
        prev_hash=prev_hash,
        salt=ctx.new_salt(),
        payload=payload,
    )


class ChainedAggregate(Aggregate):
    """An aggregate with a named stream and a head hash."""

    STREAM_PREFIX: ClassVar[str] = ""

    class Event(Aggregate.Event):
        stream: str
        actor: str
        salt: str
        prev_hash: str
        payload_digest: str
        event_hash: str

        def mutate(self, aggregate: Any) -> Any:  # type: ignore[override]
            agg = super().mutate(aggregate)
            agg.head_hash = self.event_hash
            agg.stream = self.stream
            return agg

        def payload(self) -> dict[str, Any]:
            return {k: v for k, v in self.__dict__.items() if k not in BASE_FIELDS}

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def stream_name(cls, key: str) -> str:
        return f"{cls.STREAM_PREFIX}/{key}"

    @classmethod
    def _start(
        cls, event_class: type, key: str, ctx: AppendContext, **payload: Any
    ) -> Any:
        stream = cls.stream_name(key)
        sealed = _seal_for(stream, 1, event_class, GENESIS, ctx, payload)
        return cls._create(
            event_class,
            id=stream_uuid(stream),
            timestamp=ctx.recorded_at,
            stream=stream,
            actor=ctx.actor,
            salt=sealed.salt,
            prev_hash=GENESIS,
            payload_digest=sealed.envelope["payload_digest"],
            event_hash=sealed.hash,
            **payload,
        )

    def _append(self, event_class: type, ctx: AppendContext, **payload: Any) -> None:
        stream = self.stream
        sealed = _seal_for(stream, self.version + 1, event_class, self.head_hash, ctx, payload)
        self.trigger_event(
            event_class,
            timestamp=ctx.recorded_at,
            stream=stream,
            actor=ctx.actor,
            salt=sealed.salt,
            prev_hash=self.head_hash,
            payload_digest=sealed.envelope["payload_digest"],
            event_hash=sealed.hash,
            **payload,
        )

    head_hash: str = GENESIS
    stream: str = ""
