"""Export and import: a ledger moved between databases, byte for byte, checked before it lands.

An export is JSON lines: a header (``format``), one line per stored event in ledger order
(position, originator id, version, topic, and the stored state as text), one line per
family's wrapped data key, and a trailer counting both (``claimledger-export/2``; files
written by ``claimledger-export/1`` have no trailer and are still read).

Import treats the file as hostile until checked, and commits only a ledger that verifies:

1. the file is read once, line by line (each bounded in size): the header, every line's
   shape, positions strictly increasing, no family key given twice, the trailer's counts
   (a cut file has none), and the SHA-256 of the whole file;
2. the events are verified as ``verify`` verifies a database (hashes, links, topics,
   checkpoints, signatures under the key directory's public key, the witness this key
   directory keeps for that ledger, every sealed payload under the master key and the
   export's own family keys, and no family key missing without its erasure on record);
3. only then is the target opened, checked to be empty, and filled in one transaction,
   the file re-read and its SHA-256 compared before the commit (a file changed between the
   check and the load is refused).

A file that fails leaves the target as it was: no rows, and no SQLite file where there was
none.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import __version__, witness
from .access import Actors
from .crypto import DetachedKeyStore, load_master_key, master_key_id, master_key_path
from .errors import IntegrityError, UsageError
from .ledger import signing
from .ledger.verify import Row, VerifyResult, verify_rows
from .store import locate

FORMAT = "claimledger-export/2"
LEGACY_FORMATS = ("claimledger-export/1",)
#: The longest line an export may hold: an event's state is a few kilobytes, a registered
#: policy file's up to a few hundred.
MAX_LINE = 16 * 1024 * 1024
#: Events inserted per statement while loading.
BATCH = 5000


def export_ledger(app: Any, out: Path) -> dict[str, Any]:
    """Write the ledger to ``out`` (through a temporary file beside it, renamed at the
    end: a failed export leaves no half file)."""
    app.actors.require(app.settings.actor_name, "admin", "export the ledger")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.partial")
    n = 0
    try:
        with tmp.open("wb") as f:
            f.write(orjson.dumps({"format": FORMAT, "claimledger": __version__}) + b"\n")
            for row in app.rows():
                f.write(orjson.dumps({
                    "position": row.position,
                    "originator_id": str(row.originator_id),
                    "version": row.version,
                    "topic": row.topic,
                    "state": row.state.decode("utf-8"),
                }) + b"\n")
                n += 1
            wrapped = app.keystore.rows()
            for stream, blob in wrapped:
                f.write(orjson.dumps({"family_key": stream, "wrapped": blob.hex()}) + b"\n")
            f.write(orjson.dumps({"end": {"events": n, "family_keys": len(wrapped)}}) + b"\n")
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"--out {out}: cannot write ({e.strerror})") from None
    return {"exported": n, "family_keys": len(wrapped), "file": str(out)}


@dataclass
class ExportFile:
    """What the first read of an export found (nothing of it trusted yet)."""

    path: Path
    format: str = ""
    events: int = 0
    keys: dict[str, bytes] = field(default_factory=dict)
    sha256: str = ""
    ledger_id: str | None = None
    master_key_id: str | None = None


def _lines(path: Path, digest: Any = None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the file, each at most MAX_LINE bytes."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        lineno = 0
        while True:
            line = f.readline(MAX_LINE + 1)
            if not line:
                return
            lineno += 1
            if digest is not None:
                digest.update(line)
            if len(line) > MAX_LINE:
                raise UsageError(f"{path}:{lineno}: line longer than {MAX_LINE} bytes; not a "
                                 "claimledger export")
            yield lineno, line


def _event(path: Path, lineno: int, d: dict[str, Any]) -> Row:
    try:
        row = Row(int(d["position"]), uuid.UUID(d["originator_id"]), int(d["version"]),
                  str(d["topic"]), d["state"].encode("utf-8"))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{path}:{lineno}: bad event line ({type(e).__name__}: {e}); "
                         "expected position, originator_id, version, topic and state") from None
    if isinstance(d["position"], bool) or not 0 < row.position < 2**62:
        raise UsageError(f"{path}:{lineno}: position {d['position']!r} is not a ledger position")
    return row


def read_export(path: Path) -> ExportFile:
    """Step 1: the whole file's shape, its keys and its SHA-256 (see the module docstring)."""
    info = ExportFile(path)
    h = hashlib.sha256()
    last_position = 0
    ended = False
    for lineno, line in _lines(path, h):
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise UsageError(f"{path}:{lineno}: not JSON ({e}); the file is damaged or cut"
                             ) from None
        if not isinstance(d, dict):
            raise UsageError(f"{path}:{lineno}: expected a JSON object")
        if lineno == 1:
            info.format = str(d.get("format"))
            if info.format != FORMAT and info.format not in LEGACY_FORMATS:
                raise UsageError(f"{path}:1: not a claimledger export (format "
                                 f"{d.get('format')!r}, expected {FORMAT!r})")
            continue
        if ended:
            raise IntegrityError(f"{path}:{lineno}: a line after the export's trailer")
        if "end" in d:
            end = d["end"] if isinstance(d["end"], dict) else {}
            if end.get("events") != info.events or end.get("family_keys") != len(info.keys):
                raise IntegrityError(
                    f"{path}:{lineno}: the trailer counts {end.get('events')} events and "
                    f"{end.get('family_keys')} family keys, the file holds {info.events} and "
                    f"{len(info.keys)}: lines were removed or added")
            ended = True
            continue
        if "family_key" in d:
            stream = d.get("family_key")
            try:
                blob = bytes.fromhex(d["wrapped"])
            except (KeyError, TypeError, ValueError):
                raise UsageError(f"{path}:{lineno}: bad family key line (expected "
                                 "family_key and wrapped hex)") from None
            if not isinstance(stream, str) or stream in info.keys:
                raise IntegrityError(f"{path}:{lineno}: family key {stream!r} given twice")
            info.keys[stream] = blob
            continue
        if info.keys:
            raise IntegrityError(f"{path}:{lineno}: an event after the family keys")
        row = _event(path, lineno, d)
        if row.position <= last_position:
            raise IntegrityError(
                f"{path}:{lineno}: position {row.position} after position {last_position}: "
                "lines were duplicated, moved or renumbered")
        last_position = row.position
        info.events += 1
        if info.events == 1:
            _first_event(info, lineno, row)
    if not info.format:
        raise UsageError(f"{path}: empty file, not a claimledger export")
    if info.format == FORMAT and not ended:
        raise IntegrityError(f"{path}: no trailer: the export was cut short "
                             f"(after {info.events} events and {len(info.keys)} family keys)")
    info.sha256 = h.hexdigest()
    return info


def _first_event(info: ExportFile, lineno: int, row: Row) -> None:
    try:
        rec = orjson.loads(row.state)
        payload = rec["payload"]
        if rec["envelope"]["type"] == "Ledger.Initialised":
            info.ledger_id = str(payload["ledger_id"])
            info.master_key_id = str(payload["master_key_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass  # verify names what is wrong with it


def _items(path: Path, digest: Any = None) -> Iterator[tuple[str, Any]]:
    """The export's lines after the header, in file order, as ("event", Row) and
    ("key", (stream, wrapped)) (step 1 has checked every line's shape)."""
    for lineno, line in _lines(path, digest):
        if lineno == 1:
            continue
        d = orjson.loads(line)
        if "end" in d:
            continue
        if "family_key" in d:
            yield "key", (d["family_key"], bytes.fromhex(d["wrapped"]))
        else:
            yield "event", _event(path, lineno, d)


def events(path: Path) -> Iterator[Row]:
    """The export's events in file order."""
    return (item for kind, item in _items(path) if kind == "event")


def check_export(info: ExportFile, key_dir: Path, url: str) -> VerifyResult:
    """Step 2: verify the export's events as a ledger, with the key directory's trust
    anchors (public key, witness) and master key."""
    if info.master_key_id is None:
        raise IntegrityError(f"{info.path}:2: the first event is not the ledger's "
                             "initialisation; not a whole ledger")
    master_path = master_key_path(key_dir)
    master = load_master_key(master_path)
    if master_key_id(master) != info.master_key_id:
        raise UsageError(f"{master_path}: not the master key of the exported ledger (id "
                         f"{master_key_id(master)[:16]}…, the ledger's is "
                         f"{info.master_key_id[:16]}…); nothing was imported")
    trusted = []
    pub = key_dir / signing.PUBLIC_NAME
    if pub.exists():
        trusted.append(signing.load_public_hex(pub.read_text(), str(pub)))
    seen = witness.for_ledger(key_dir, str(info.ledger_id), url)
    keys = DetachedKeyStore(info.keys, master)
    return verify_rows(events(info.path), trusted_keys=trusted, witness=seen,
                       digest=keys.sealed_digest, opener=keys.open_record)


def _require_empty(app: Any, url: str) -> None:
    if app.recorder.max_notification_id():
        raise UsageError(f"{url} is not empty; import needs an empty ledger")


def _load(src: Path, w: Any, sha256: str) -> None:
    """Step 3's inserts: what this read of the file holds, committed only if the file hashes
    as it did when it was checked (else it changed in between)."""
    h = hashlib.sha256()
    batch: list[tuple[int, str, int, str, bytes]] = []
    keys: list[tuple[str, bytes]] = []
    try:
        for kind, item in _items(src, h):
            if kind == "key":
                keys.append(item)
                continue
            batch.append((item.position, str(item.originator_id), item.version, item.topic,
                          item.state))
            if len(batch) >= BATCH:
                w.insert_placed(batch)
                batch = []
    except (ValueError, KeyError, TypeError, UsageError):
        sha = None
    else:
        sha = h.hexdigest()
    if sha != sha256:
        raise IntegrityError(f"{src}: the file changed while it was imported; nothing was "
                             "imported")
    w.insert_placed(batch)
    w.insert_keys(keys)
    w.restart_positions()


def import_ledger(settings: Any, src: Path) -> dict[str, Any]:
    """Steps 1 to 3: check the export, then load it into the empty ledger the settings
    name, keeping every position and byte (see the module docstring)."""
    from .application import cohort_tables, open_app
    from .store.hardening import make_append_only

    Actors.from_env().require(settings.actor_name, "admin", "import a ledger")
    location = locate(settings.db)
    if location.exists:
        _require_empty(open_app(settings), location.url)
    info = read_export(src)
    result = check_export(info, settings.key_directory, location.url)
    if not result.ok:
        assert result.failure is not None
        raise IntegrityError(f"{src}: {result.failure.message()}; nothing was imported")
    created = location.sqlite_path is not None and not location.sqlite_path.exists()
    try:
        app = open_app(settings, must_exist=False)
        _require_empty(app, location.url)
        with app.new_writer() as w:
            app.keystore.create_table(w)
            app.tiles.create(w)
            app.claim_events.create(w)
            _load(src, w, info.sha256)
            app.grow_tiles(w, None)  # the tree's tiles, for proofs from the first bundle on
            make_append_only(w, app.recorder.events_table_name, None,  # type: ignore[attr-defined]
                             cohort_tables())
    except BaseException:
        if created and location.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(location.sqlite_path) + suffix).unlink(missing_ok=True)
        raise
    return {"imported": info.events, "family_keys": len(info.keys), "file": str(src),
            "db": location.url, "checked": result.to_dict()}
