"""Event type -> the topic its stored rows must carry.

A stored row's ``topic`` column is what eventsourcing resolves to a class, but it is not
covered by the event's hash: the hashed envelope names the type. Verify checks the two agree
(``ledger/verify.py``), and every reader resolves a row from its hashed type and refuses a
row whose topic disagrees (``persistence.py``), so re-typing a row in the table is a
finding, never a different answer. The names are a stored format: keep them.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic

from . import claim, family, ledger
from .base import ChainedAggregate


def _topics() -> dict[str, str]:
    out: dict[str, str] = {}
    for module in (claim, family, ledger):
        for agg in vars(module).values():
            if not (isinstance(agg, type) and issubclass(agg, ChainedAggregate)
                    and agg is not ChainedAggregate):
                continue
            for name, ev in vars(agg).items():
                # Event and Created are the bases eventsourcing makes per aggregate: no
                # event is ever stored as one of them.
                if (isinstance(ev, type) and issubclass(ev, ChainedAggregate.Event)
                        and name not in ("Event", "Created")):
                    out[ev.__qualname__] = get_topic(ev)
    return out


#: "Family.Erased" -> "claimledger.domain.family:Family.Erased", for every event class.
EVENT_TOPICS: dict[str, str] = _topics()
