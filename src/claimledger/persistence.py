"""The stored form of events: eventsourcing's StoredEvent with our sealed record as state.

The mapper writes the record the domain already sealed (it never recomputes a hash) and
reads records back into eventsourcing event objects, so aggregates replay as usual.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from .domain.base import ChainedAggregate, iso_utc
from .domain.topics import EVENT_TOPICS
from .errors import IntegrityError
from .ledger.canonical import canonical, loads
from .ledger.envelope import Sealed, record_state


class SealedMapper(Mapper):  # type: ignore[type-arg]
    #: The ledger's key store, which seals and opens family payloads (set by the application).
    keys: Any = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        ev: ChainedAggregate.Event = domain_event
        envelope = {
            "stream": ev.stream,
            "version": ev.originator_version,
            "type": type(ev).__qualname__,
            "recorded_at": iso_utc(ev.timestamp),
            "actor": ev.actor,
            "prev_hash": ev.prev_hash,
            "payload_digest": ev.payload_digest,
        }
        sealed = Sealed(envelope, ev.event_hash, ev.salt, canonical(envelope),
                        canonical(ev.payload()))
        return StoredEvent(
            originator_id=ev.originator_id,
            originator_version=ev.originator_version,
            topic=get_topic(type(ev)),
            state=record_state(sealed) if self.keys is None else self.keys.store(sealed),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        rec = loads(stored_event.state)
        if self.keys is not None:
            rec = self.keys.open_record(rec)
        return event_from_record(stored_event.topic, stored_event.originator_id, rec)


def hashed_topic(topic: str, rec: dict[str, Any]) -> str:
    """The topic of the type a record's hashed envelope names, if the row's stored topic
    (outside the hash) is that one; else IntegrityError: someone re-typed the row."""
    env = rec.get("envelope") or {}
    typ = env.get("type")
    expected = EVENT_TOPICS.get(typ) if isinstance(typ, str) else None
    if expected is None or expected != topic:
        raise IntegrityError(
            f"event {env.get('stream')}#{env.get('version')}: stored topic {topic!r} is not "
            f"the type its hashed envelope names ({typ!r}); run `claimledger verify`")
    return expected


def checked_record(topic: str, state: bytes) -> dict[str, Any]:
    """A stored row's record, once its topic is checked against its hashed type."""
    rec = loads(state)
    hashed_topic(topic, rec)
    return rec


def topic_records(recorder: Any, topic: str) -> list[tuple[int, dict[str, Any]]]:
    """(position, record) of every stored event of one topic, in ledger order, a page at a
    time (a topic-filtered read of the notification log)."""
    out: list[tuple[int, dict[str, Any]]] = []
    start = 1
    while True:
        page = recorder.select_notifications(start, 5000, topics=[topic])
        if not page:
            return out
        out.extend((n.id, checked_record(n.topic, n.state)) for n in page)
        start = page[-1].id + 1


def event_from_record(topic: str, originator_id: Any, rec: dict[str, Any]) -> Any:
    """The domain event a record holds, of the class its hashed type names."""
    topic = hashed_topic(topic, rec)
    cls = resolve_topic(topic)
    env = rec["envelope"]
    ev = object.__new__(cls)
    d = ev.__dict__
    d["originator_id"] = originator_id
    d["originator_version"] = env["version"]
    d["timestamp"] = datetime.fromisoformat(env["recorded_at"].replace("Z", "+00:00"))
    if issubclass(cls, ChainedAggregate.Created):
        d["originator_topic"] = topic.rsplit(".", 1)[0]
    d["stream"] = env["stream"]
    d["actor"] = env["actor"]
    d["salt"] = rec.get("salt", "")
    d["prev_hash"] = env["prev_hash"]
    d["payload_digest"] = env["payload_digest"]
    d["event_hash"] = rec["hash"]
    payload = rec.get("payload")
    if payload is None:  # erased: the event keeps its place in the stream, not its data
        for name in getattr(cls, "__dataclass_fields__", ()):
            d.setdefault(name, None)
    else:
        d.update(payload)
    return ev
