"""``verify`` on several processes: ranges of the ledger checked at once, folded in order.

The parent fixes the ledger's last position when it starts (events appended meanwhile are
left to the next verify), cuts positions 1..last into ranges of :data:`~.ledger.verify.CHUNK`
and hands them to a pool of forked workers. Each worker opens its own application (its own
database connection: a connection is never carried across a fork) and runs
:func:`~.ledger.verify.check_range` over its ranges; the parent folds the results in ledger
order with a :class:`~.ledger.verify.Combiner` as they arrive, never more than a few ranges
ahead of the fold, so memory stays flat. The result, failure included, is the one a single
pass gives: the fold runs every check a range cannot do alone, in event order.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from multiprocessing.pool import AsyncResult, Pool
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .ledger import verify
from .ledger.tiles import TileCheck
from .ledger.verify import Combiner, RangeCheck, VerifyResult, check_range, collector_paused

if TYPE_CHECKING:
    from .application import LedgerApp, Settings

#: Ranges handed out per worker beyond the one it is checking: keeps workers busy while the
#: parent folds, and bounds what waits in memory.
AHEAD = 2

# One worker's own application and payload checks (set by _start, in the worker).
_app: LedgerApp | None = None
_digest: Any = None
_opener: Any = None
_broken: Exception | None = None


def jobs_for(app: LedgerApp) -> int:
    """The automatic ``--jobs``: one process per CPU for a ledger of more than two ranges
    (below that, starting workers costs more than it saves), else 1."""
    top = app.recorder.max_notification_id() or 0
    return max(1, os.cpu_count() or 1) if top > 2 * verify.CHUNK else 1


def verify_parallel(app: LedgerApp, *, jobs: int, open_ledger: Callable[[Settings], LedgerApp],
                    trusted_keys: Sequence[bytes] = (), witness: dict[str, Any] | None = None,
                    chunk: int | None = None, tiles: TileCheck | None = None) -> VerifyResult:
    """Verify ``app``'s ledger with ``jobs`` worker processes, ``chunk`` positions a range
    (default :data:`~.ledger.verify.CHUNK`). ``open_ledger``: how a worker opens its own
    application from the settings (the application's ``open_app``, handed in so that this
    module does not depend on the application that uses it)."""
    chunk = chunk or verify.CHUNK
    last = app.recorder.max_notification_id() or 0
    spans: Iterator[tuple[int, int]] = (
        (start, min(start + chunk - 1, last)) for start in range(1, last + 1, chunk))
    jobs = max(1, min(jobs, -(-last // chunk)))  # no more workers than ranges
    combiner = Combiner(trusted_keys=trusted_keys, witness=witness, tiles=tiles)
    # Whether sealed payloads are opened is decided here, once (and a master key that cannot
    # be used fails here, as it does in one process); each worker then opens its own keys.
    with_keys = app.payload_checks()[0] is not None
    # The resolved URL, so a worker opens the very ledger this process has open.
    settings = replace(app.settings, db=app.location.url)
    # fork on Linux: workers start at once, sharing the parent's imported code; where fork
    # is unsafe or missing (macOS, Windows), spawn.
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    pool = context.Pool(jobs, initializer=_start, initargs=(open_ledger, settings, with_keys))
    try:
        with collector_paused():
            _fold(pool, spans, jobs * (1 + AHEAD), combiner)
    except BaseException:
        pool.terminate()  # interrupted, or a range raised (after the others came back)
        raise
    pool.close()
    pool.join()
    return combiner.finish()


def _fold(pool: Pool, spans: Iterator[tuple[int, int]], ahead: int, combiner: Combiner
          ) -> None:
    """imap, bounded: ``ahead`` ranges in flight, results folded in ledger order. Once the
    ledger has failed (or a range raised) no range is handed out, and those in flight are
    collected before returning or raising: a pool terminated with tasks in flight can hang
    on a queue lock that a killed worker held."""
    pending: deque[AsyncResult[RangeCheck]] = deque(
        pool.apply_async(_check, (span,)) for _, span in zip(range(ahead), spans, strict=False))
    done = False
    error: Exception | None = None
    while pending:
        result = pending.popleft()
        try:
            rc = result.get()
            if done:
                continue
            done = not combiner.add(rc)
        except Exception as e:
            if not done:
                error, done = e, True
            continue
        span = None if done else next(spans, None)
        if span is not None:
            pending.append(pool.apply_async(_check, (span,)))
    if error is not None:
        raise error


def _start(open_ledger: Callable[[Settings], LedgerApp], settings: Settings,
           with_keys: bool) -> None:
    """Worker initializer: its own application and key store. What fails here is raised by
    the worker's first range (an initializer that raises would be restarted forever)."""
    global _app, _digest, _opener, _broken
    try:
        _app = open_ledger(settings)
        if with_keys:
            _digest, _opener = _app.payload_checks()
            if _digest is None:
                raise ConfigError(f"{settings.key_directory}: the master key, usable in the parent "
                                  "process, is not in a worker")
    except Exception as e:
        _broken = e


def _check(span: tuple[int, int]) -> RangeCheck:
    if _broken is not None:
        raise _broken
    assert _app is not None
    with collector_paused():
        return check_range(_app.scan(*span), digest=_digest, opener=_opener)
