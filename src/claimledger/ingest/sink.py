"""Where a file's sealed events go: encrypted and inserted in one transaction.

:class:`Sink` does it in this process. A large file goes to :class:`WriterProcess`, which
runs the same :class:`Sink` in a second process while this one goes on checking and
sealing: encrypting and inserting take about as long as checking and sealing, so on two
cores the two halves overlap instead of adding up. Either way one transaction holds the
file's events and its new families' data keys; nothing is committed until :meth:`commit`,
and leaving the block without it (an error here, in the other process or in the database)
writes nothing.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import subprocess
import sys
import threading
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import ClaimLedgerError, ConfigError, ConflictError, PermissionDeniedError
from ..ledger.envelope import Sealed

if TYPE_CHECKING:
    from ..application import LedgerApp


#: One sealed event on its way to the database, as a plain tuple (a NamedTuple pickles ten
#: times slower): the stream's originator id as 32 hex digits (a UUID object pickles slowly
#: too), version, topic, whether it opens a new family's stream (its data key is then
#: created first, with no look-up), stream, event type, and the sealed parts: canonical
#: envelope bytes, event hash, salt (hex) and canonical payload bytes.
Item = tuple[str, int, str, bool, str, str, bytes, str, str, bytes]


class Sink:
    """Encrypts items with the families' data keys and inserts them, in this process."""

    def __init__(self, app: LedgerApp):
        self.app = app
        self._stack = ExitStack()
        self._new_keys: dict[str, bytes] = {}
        self._bulk: Any = None

    def __enter__(self) -> Sink:
        # Exits in reverse: the transaction ends first; new keys are forgotten if it failed.
        self._new_keys = self._stack.enter_context(self.app.keystore.batch(write=False))
        self._bulk = self._stack.enter_context(self.app.bulk_insert())
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> bool:
        return self._stack.__exit__(et, e, tb)

    def put(self, items: list[Item]) -> None:
        keys = self.app.keystore
        store, create = keys.store_parts, keys.create
        rows = []
        for uid, version, topic, new_family, stream, type_, env, hash_, salt, payload in items:
            if new_family:
                create(stream)
            sealed = Sealed(None, hash_, salt, env, payload)  # type: ignore[arg-type]
            rows.append((uid, version, topic, store(stream, type_, sealed)))
        self._bulk.events(rows)

    def commit(self) -> None:
        """Insert the new families' keys; the transaction commits as the block ends."""
        self._bulk.keys(list(self._new_keys.items()))


#: Errors the writer process reports by name, raised again here with its message.
_ERRORS: dict[str, type[ClaimLedgerError]] = {
    c.__name__: c for c in (ConflictError, ConfigError, PermissionDeniedError)}
COMMIT, ABORT = "commit", "abort"


def send_frame(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def recv_frame(stream: BinaryIO) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the other end closed the pipe")
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other end closed the pipe mid-message")
    return pickle.loads(data)


class WriterProcess:
    """A :class:`Sink` in a second process (``python -m claimledger.ingest.writer``), fed
    chunks of items through its standard input.

    The child opens its own connection from the same settings and holds the file's
    transaction. Items are pickled and written by a thread of this process, through a
    bounded queue, so sealing here goes on while the child encrypts and inserts.
    :meth:`commit` returns once the child has committed, or raises what it met; leaving the
    block otherwise tells it to roll back. (A fresh interpreter rather than a fork: a fork
    would copy this process's open database connections, which a child must never touch,
    and multiprocessing's spawn would import the caller's main module again.)
    """

    #: Chunks sealed ahead of the child at most (bounds this process's memory).
    AHEAD = 4

    def __init__(self, app: LedgerApp):
        self.settings = app.settings
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.AHEAD)
        self._proc: Any = None
        self._feeder: threading.Thread | None = None
        self._feed_error: BaseException | None = None
        self._done = False

    def __enter__(self) -> WriterProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "claimledger.ingest.writer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._feeder = threading.Thread(target=self._feed, name="claimledger-ingest-feed",
                                         daemon=True)
        self._feeder.start()
        self._queue.put(self.settings)
        return self

    def _feed(self) -> None:
        """Pickle and write what is queued, in order, until commit or abort is written."""
        try:
            while True:
                msg = self._queue.get()
                send_frame(self._proc.stdin, msg)
                if msg in (COMMIT, ABORT):
                    return
        except (OSError, ValueError) as e:  # the child has gone: its reply says why
            self._feed_error = e

    def put(self, items: list[Item] | str) -> None:
        while True:
            try:
                self._queue.put(items, timeout=0.2)
                return
            except queue.Full:  # the child is behind, or has stopped: which?
                if self._proc.poll() is not None or self._feed_error is not None:
                    self._result()
                    raise ClaimLedgerError("the ingest writer process stopped; nothing was "
                                           "written") from None

    def commit(self) -> None:
        self.put(COMMIT)
        self._result()
        self._done = True

    def _result(self) -> None:
        try:
            status, message = recv_frame(self._proc.stdout)
        except (EOFError, OSError):
            raise ClaimLedgerError("the ingest writer process stopped without a word; "
                                   "nothing was written") from None
        if status == "ok":
            return
        raise _ERRORS.get(status, ClaimLedgerError)(message)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if not self._done and self._proc.poll() is None:
                with contextlib.suppress(ClaimLedgerError):
                    self.put(ABORT)
        finally:
            if self._feeder is not None:
                self._feeder.join(timeout=60)
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()


def writer_main(inbox: BinaryIO, outbox: BinaryIO) -> None:
    """The child: one Sink, one transaction, until told to commit or abort."""
    from ..application import open_app

    try:
        settings = recv_frame(inbox)
        with Sink(open_app(settings)) as sink:
            while True:
                msg = recv_frame(inbox)
                if msg == COMMIT:
                    sink.commit()
                    break
                if msg == ABORT:
                    raise _Aborted
                sink.put(msg)
        send_frame(outbox, ("ok", ""))
    except _Aborted:
        send_frame(outbox, ("aborted", "aborted"))
    except ClaimLedgerError as e:
        send_frame(outbox, (type(e).__name__, str(e)))
    except BaseException as e:  # reported to the parent, which raises it
        send_frame(outbox, ("error", f"ingest writer process: {type(e).__name__}: {e}"))


class _Aborted(Exception):
    pass
