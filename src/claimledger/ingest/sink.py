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
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import weakref
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from ..errors import (
    ClaimLedgerError,
    ClockError,
    ConfigError,
    ConflictError,
    IntegrityError,
    PermissionDeniedError,
    WriterBusyError,
)
from ..ledger.envelope import Sealed, Sealer

if TYPE_CHECKING:
    from ..application import LedgerApp, Settings


#: One event on its way to the database, as a plain tuple (a NamedTuple pickles ten times
#: slower): the stream's originator id as 32 hex digits (a UUID object pickles slowly too),
#: version, topic, whether it opens a new family's stream (its data key is then created
#: first, with no look-up), stream, event type, the stream's head hash when this is its
#: first event in the file (None after: the sink chains them), and the payload's canonical
#: bytes.
Item = tuple[str, int, str, bool, str, str, "str | None", bytes]
#: Items of one actor (actor, items): what :meth:`Sink.put` takes. Their ``recorded_at`` is
#: not the checker's to choose: the sink assigns it under the writers' lock.
Chunk = tuple[str, list[Item]]


class Appended(NamedTuple):
    """What a file's commit left: the ledger's last position if the file's events are all
    that came after the checker's read of the ledger (else None: another writer's came
    between), and the hash of each stream's last event."""

    position: int | None
    heads: dict[str, str]


class Sink:
    """Seals items into their streams' chains, encrypts them with the families' data keys
    and inserts them, in this process.

    Sealing here rather than where the rows are checked evens out the two processes of a
    large file (the checking one does the most per row): salt, payload digest, envelope
    and event hash are made here, in file order, each stream's first event chained to the
    head the checker read, the next to the one before.
    """

    def __init__(self, app: LedgerApp, *, defer_checkpoint: bool = False):
        self.app = app
        self._stack = ExitStack()
        self._new_keys: dict[str, bytes] = {}
        self._bulk: Any = None
        self._defer = defer_checkpoint
        self._sealer: tuple[str, Sealer] | None = None
        self._recorded_at = ""
        #: stream -> (canonical stream name, hash of its last event sealed here)
        self._heads: dict[str, tuple[bytes, str]] = {}

    def __enter__(self) -> Sink:
        # Exits in reverse: the transaction ends first; new keys are forgotten if it failed.
        self._new_keys = self._stack.enter_context(self.app.keystore.batch(write=False))
        self._bulk = self._stack.enter_context(
            self.app.bulk_insert(defer_checkpoint=self._defer))
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> bool:
        return self._stack.__exit__(et, e, tb)

    def put(self, chunk: Chunk) -> None:
        """Seal, encrypt and insert the chunk's items; no items: the checker is still at
        work (rows it skips, say), and an open transaction must not sit idle meanwhile."""
        actor, items = chunk
        if not items:
            self._bulk.keep_alive()
            return
        if not self._recorded_at:  # the writers' lock is taken here, before the first seal
            self._recorded_at = self._bulk.moment()
        if self._sealer is None or self._sealer[0] != actor:
            self._sealer = (actor, Sealer(recorded_at=self._recorded_at, actor=actor))
        seal = self._sealer[1].seal_bytes
        keys = self.app.keystore
        store, create = keys.store_parts, keys.create
        heads = self._heads
        # Each event's 16-byte salt and 12-byte nonce, drawn for the chunk at once (one
        # system call instead of two per event; the bytes are the same uniform randomness).
        random = os.urandom(28 * len(items))
        at = 0
        rows = []
        for uid, version, topic, new_family, stream, type_, prev, payload in items:
            if new_family:
                create(stream)
            if prev is None:
                part, prev = heads[stream]
            else:
                part = Sealer.stream_part(stream)
            env, hash_, salt, _ = seal(part, version, type_, prev, random[at:at + 16], payload)
            heads[stream] = (part, hash_)
            sealed = Sealed(None, hash_, salt, env, payload)  # type: ignore[arg-type]
            rows.append((uid, version, topic,
                         store(stream, type_, sealed, random[at + 16:at + 28])))
            at += 28
        self._bulk.events(rows)

    def commit(self, read_at: int | None = None) -> Appended:
        """Insert the new families' keys; the transaction commits as the block ends.
        ``read_at``: the ledger position the checker's read ended at."""
        self._bulk.keys(list(self._new_keys.items()))
        last = None if read_at is None else self._bulk.sole_writer_since(read_at)
        return Appended(last, {stream: h for stream, (_, h) in self._heads.items()})


#: Errors the writer process reports by name, raised again here with its message.
_ERRORS: dict[str, type[ClaimLedgerError]] = {
    c.__name__: c for c in (ConflictError, ConfigError, ClockError, PermissionDeniedError,
                            WriterBusyError, IntegrityError)}
#: Frames to the writer: the settings, then per file BEGIN, (CHUNK, chunk)..., and
#: (COMMIT, read_at) or (ABORT, None). Frames back: (READY, "") once, then one per file:
#: ("ok", Appended), or (error name, message).
BEGIN, CHUNK, COMMIT, ABORT, READY = "begin", "chunk", "commit", "abort", "ready"


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
    """A second process (``python -m claimledger.ingest.writer``) that runs a :class:`Sink`
    for each large file of one command, one transaction per file.

    It starts once per application (:func:`writer_for`) and serves every large file the
    command loads; it opens its own connection from the same settings. Items go to it
    through its standard input, pickled and written by a thread of this process through a
    bounded queue, so sealing here goes on while it encrypts and inserts. Per file:
    :meth:`begin`, :meth:`put` chunks, then :meth:`commit` (returns once it has committed,
    or raises what it met) or :meth:`abort` (it rolls back). Exactly one reply per file.
    (A fresh interpreter rather than a fork: a fork would copy this process's open database
    connections, which a child must never touch, and multiprocessing's spawn would import
    the caller's main module again.)
    """

    #: Chunks sealed ahead of the writer at most (bounds this process's memory).
    AHEAD = 4

    def __init__(self, settings: Settings):
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.AHEAD)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "claimledger.ingest.writer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._feed_error: BaseException | None = None
        self._feeder = threading.Thread(target=self._feed, name="claimledger-ingest-feed",
                                        daemon=True)
        self._feeder.start()
        self._queue.put(settings)
        self._open = False  # a file's transaction is open in the writer
        self._replied = False  # ... and the writer has already answered for it
        self._ready = False  # the writer has opened the ledger (its first frame says so)

    def _feed(self) -> None:
        """Pickle and write what is queued, in order, until None (close)."""
        try:
            while (msg := self._queue.get()) is not None:
                send_frame(self._proc.stdin, msg)
        except (OSError, ValueError) as e:  # the writer has gone: its reply says why
            self._feed_error = e
        finally:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()

    def alive(self) -> bool:
        return self._proc.poll() is None and self._feed_error is None

    def _send(self, msg: Any) -> None:
        while True:
            try:
                self._queue.put(msg, timeout=0.2)
                return
            except queue.Full:  # the writer is behind, or has stopped or failed: which?
                if not self.alive():
                    self._reply()
                    raise ClaimLedgerError("the ingest writer process stopped; nothing of "
                                           "this file was written") from None
                if self._open and not self._replied and self._has_reply():
                    self._reply()  # it failed part way (a conflict, say): raise that now

    def _has_reply(self) -> bool:
        """Whether a reply for the open file is waiting (the ready frame is taken first)."""
        return self.ready() and bool(select.select([self._proc.stdout], [], [], 0)[0])

    def ready(self) -> bool:
        """Whether the writer has started and opened the ledger (never waits)."""
        if not self._ready and select.select([self._proc.stdout], [], [], 0)[0]:
            self._take_ready()
        return self._ready

    def _take_ready(self) -> None:
        self._ready = True
        try:
            status, message = recv_frame(self._proc.stdout)
        except (EOFError, OSError):
            raise ClaimLedgerError("the ingest writer process stopped without a word; "
                                   "nothing of this file was written") from None
        if status != READY:
            raise _ERRORS.get(status, ClaimLedgerError)(message)

    def begin(self) -> None:
        self._send(BEGIN)
        self._open, self._replied = True, False

    def put(self, chunk: Chunk) -> None:
        self._send((CHUNK, chunk))

    def commit(self, read_at: int | None = None) -> Appended:
        self._send((COMMIT, read_at))
        self._open = False
        if self._replied:  # it failed part way; _send raised that, or it was aborted
            raise ClaimLedgerError("the ingest writer process had already answered")
        result: Appended = self._reply()
        return result

    def abort(self) -> None:
        """Roll the file back (and wait until the writer has, so the next file may begin)."""
        if not self._open:
            return
        self._open = False
        if self.alive():
            with contextlib.suppress(ClaimLedgerError):
                self._send((ABORT, None))
                if not self._replied:
                    self._reply(raise_error=False)

    def _reply(self, *, raise_error: bool = True) -> Any:
        """The writer's answer for the open file (its body when "ok")."""
        self._replied = True
        if not self._ready:
            self._take_ready()
        try:
            status, message = recv_frame(self._proc.stdout)
        except (EOFError, OSError):
            raise ClaimLedgerError("the ingest writer process stopped without a word; "
                                   "nothing of this file was written") from None
        if status != "ok" and raise_error:
            raise _ERRORS.get(status, ClaimLedgerError)(message)
        return message

    def close(self) -> None:
        """Tell the writer to finish (a file still open rolls back) and wait for it."""
        self.abort()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=5)
        self._feeder.join(timeout=60)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


class FileTransaction:
    """One file's transaction in the application's writer process: ``with`` it, put the
    chunks, :meth:`commit`; leaving the block without committing rolls the file back. The
    transaction begins with the first chunk, not before: reading the ledger first may take
    longer than PostgreSQL lets a transaction sit idle."""

    def __init__(self, app: LedgerApp):
        self.writer = writer_for(app)
        self._begun = False

    def __enter__(self) -> FileTransaction:
        return self

    def _begin(self) -> None:
        if not self._begun:
            self.writer.begin()
            self._begun = True

    def put(self, chunk: Chunk) -> None:
        self._begin()
        self.writer.put(chunk)

    def commit(self, read_at: int | None = None) -> Appended:
        self._begin()
        return self.writer.commit(read_at)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.writer.abort()


def running_writer(app: LedgerApp, *, ready: bool = False) -> WriterProcess | None:
    """The application's writer process if it has one running (see :func:`writer_for`);
    with ``ready``, only once it has opened the ledger and can take a file at once."""
    writer = app.ingest_cache.get("writer")
    if not isinstance(writer, WriterProcess) or not writer.alive():
        return None
    return writer if not ready or writer.ready() else None


def writer_for(app: LedgerApp) -> WriterProcess:
    """The application's writer process, started on first use and kept for the next large
    file of the same command; it stops when the application's process ends."""
    writer = running_writer(app)
    if writer is None:
        writer = app.ingest_cache["writer"] = WriterProcess(app.settings)
        weakref.finalize(app, writer.close)
    return writer


def writer_main(inbox: BinaryIO, outbox: BinaryIO) -> None:
    """The writer: for each file, one Sink and one transaction, until commit or abort; one
    reply per file, sent as soon as the file fails or commits (after a failure the rest of
    the file's chunks are read and dropped). After a commit has been answered, SQLite's
    write-ahead log is copied into the database file while the parent reads its next file
    (the commit itself does not: :meth:`LedgerApp.bulk_insert`)."""
    from ..application import open_app

    try:
        app = open_app(recv_frame(inbox))
    except ClaimLedgerError as e:
        send_frame(outbox, (type(e).__name__, str(e)))
        return
    send_frame(outbox, (READY, ""))
    while True:
        try:
            msg = recv_frame(inbox)
        except EOFError:
            return  # the parent is done (or gone): a file still open was never committed
        if msg != BEGIN:
            continue
        failed = False
        try:
            with Sink(app, defer_checkpoint=True) as sink:
                while (msg := recv_frame(inbox))[0] == CHUNK:
                    sink.put(msg[1])
                if msg[0] != COMMIT:
                    raise _Aborted
                appended = sink.commit(msg[1])
            send_frame(outbox, ("ok", appended))
            app.checkpoint_wal()
        except EOFError:
            return
        except _Aborted:
            send_frame(outbox, ("aborted", "aborted"))
        except ClaimLedgerError as e:
            failed = True
            send_frame(outbox, (type(e).__name__, str(e)))
        except Exception as e:  # reported to the parent, which raises it
            failed = True
            send_frame(outbox, ("error", f"ingest writer process: {type(e).__name__}: {e}"))
        if failed:  # read and drop the rest of the failed file
            try:
                while recv_frame(inbox)[0] == CHUNK:
                    pass
            except EOFError:
                return


class _Aborted(Exception):
    pass
