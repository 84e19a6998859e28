"""The witness: the latest checkpoint this key directory has seen, kept beside the keys.

``verify`` requires the ledger to still contain the witnessed checkpoint, so a ledger cut
back to before it (or rewritten since) is caught even though it is consistent on its own.

Invariants:
- A witness belongs to a ledger, named by its ``ledger_id`` (from the ledger's first event),
  never by how the database URL is spelled: ``sqlite:///claimledger.sqlite`` and the same
  file by its absolute path, or ``localhost`` and ``127.0.0.1``, are one ledger. A witness
  written before ledger ids were recorded names a URL, and is used where the URL matches.
- It only moves forward: a seal that commits before another but writes its witness after it
  does not move the witness back (the update is serialised by a lock file beside it).
- It is written atomically (a temporary file, fsync, rename, fsync of the directory): a kill
  mid-write leaves the old witness or the new one, never an empty file.
- A witness that cannot be read is reported as such (exit 2), never as a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError

NAME = "witness.json"
#: A witness is a few hundred bytes; anything larger is not one.
MAX_BYTES = 64 * 1024


def path_in(key_dir: Path) -> Path:
    return key_dir / NAME


def read(key_dir: Path) -> dict[str, Any] | None:
    """The witness in ``key_dir`` as written, None if there is none."""
    path = path_in(key_dir)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the witness ({e.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: {len(data)}+ bytes, not a witness (at most {MAX_BYTES})")
    try:
        w = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"{path}: not a witness ({e}); restore it from a backup, or remove "
                          "it to verify without one") from None
    if (not isinstance(w, dict) or not isinstance(w.get("tree_size"), int)
            or not isinstance(w.get("root"), str)):
        raise ConfigError(f"{path}: not a witness (expected tree_size and root); restore it "
                          "from a backup, or remove it to verify without one")
    return w


def for_ledger(key_dir: Path, ledger_id: str, url: str) -> dict[str, Any] | None:
    """The witness that applies to the ledger ``ledger_id`` (reached at ``url``), if any."""
    w = read(key_dir)
    if w is None:
        return None
    if "ledger_id" in w:
        return w if w["ledger_id"] == ledger_id else None
    return w if w.get("ledger") == url else None  # written before ledger ids were kept


@contextlib.contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    with (key_dir / (NAME + ".lock")).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def advance(key_dir: Path, ledger_id: str, tree_size: int, root: str) -> bool:
    """Record a checkpoint as the witness unless the witness already holds a later one of
    the same ledger; True if it was written. A read-only key directory is left alone (the
    witness is a convenience of the machine that seals, not a condition of sealing)."""
    try:
        with _locked(key_dir):
            try:
                current = read(key_dir)
            except ConfigError:
                current = None  # unreadable: replaced by a good one
            if (current is not None and current.get("ledger_id") == ledger_id
                    and current["tree_size"] >= tree_size):
                return False
            data = orjson.dumps({"ledger_id": ledger_id, "tree_size": tree_size,
                                 "root": root}, option=orjson.OPT_INDENT_2)
            target = path_in(key_dir)
            tmp = key_dir / f".{NAME}.{os.getpid()}.tmp"
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fd = os.open(key_dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
    except OSError:
        return False
