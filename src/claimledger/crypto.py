"""Personal data encrypted at rest: a data key per family, wrapped by a master key.

- The master key is 32 random bytes (hex) in a file of mode 0600 named by
  ``CLAIMLEDGER_MASTER_KEY_FILE`` (default ``<key dir>/master.key``); it never enters the
  database. The ledger records only its id (a SHA-256 of it), so a wrong key is refused.
- Each family stream gets a random 256-bit data key, stored wrapped (AES-GCM under the
  master key, bound to the stream's name) in ``claimledger_family_keys``.
- A family event's salt and payload are stored sealed: AES-GCM under the family key, bound
  to the event's hash. Envelopes and digests stay in the clear, so ``verify`` needs no key;
  with the key it also checks every payload digest.
- Erasure deletes the family's wrapped key: the ciphertext stays, undecryptable, and every
  hash, link and Merkle proof still verifies because they cover digests, not payloads.
"""

from __future__ import annotations

import hashlib
import os
import stat
from binascii import a2b_base64, b2a_base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pybase64
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigError, IntegrityError
from .ledger.canonical import loads
from .ledger.envelope import (
    Sealed,
    payload_digest,
    plaintext,
    record_state,
    sealed_state,
)
from .store.keys import KeysTable

if TYPE_CHECKING:
    from .application import LedgerApp
    from .store.writer import WriterTransaction

MASTER_NAME = "master.key"
#: Streams whose payloads are personal data.
ENCRYPTED_PREFIX = "family/"
#: Event types written in the clear even on an encrypted stream (they hold no personal data).
CLEAR_TYPES = frozenset({"Family.Erased"})


def master_key_path(key_dir: Path) -> Path:
    env = os.environ.get("CLAIMLEDGER_MASTER_KEY_FILE")
    return Path(env) if env else key_dir / MASTER_NAME


def master_key_id(key: bytes) -> str:
    return hashlib.sha256(b"claimledger master key\x00" + key).hexdigest()


def create_master_key(path: Path) -> bytes:
    """A new master key file (0600); an existing one is reused, never overwritten."""
    if path.exists():
        return load_master_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def load_master_key(path: Path) -> bytes:
    """The 32-byte master key from its file: 64 hex digits, mode 0600, nothing else."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{path}: is a directory, expected the master key file")
        with path.open("rb") as f:
            data = f.read(4097)
    except FileNotFoundError:
        raise ConfigError(f"{path}: master key file not found (set CLAIMLEDGER_MASTER_KEY_FILE)"
                          ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the master key file ({e.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: master key file must be mode 0600 (is {mode & 0o777:o})")
    try:
        key = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path}: master key is not hex (expected 64 hex digits on one "
                          f"line, found {len(data)} bytes of something else)") from None
    if len(key) != 32:
        raise ConfigError(f"{path}: master key is {len(key)} bytes, expected 32")
    return key


def _encrypt(cipher: AESGCM, event_hash: str, plain: bytes, nonce: bytes | None = None
             ) -> bytes:
    """base64 of nonce + AES-GCM ciphertext, bound to the event hash; the nonce is 12 random
    bytes (given, when the caller draws many at once)."""
    if nonce is None:
        nonce = os.urandom(12)
    elif len(nonce) != 12:
        raise ValueError(f"AES-GCM nonce of {len(nonce)} bytes, expected 12")
    return b2a_base64(nonce + cipher.encrypt(nonce, plain, event_hash.encode()), newline=False)


def unbase64(text: str) -> bytes:
    """The bytes of a stored ciphertext's base64, exactly as ``binascii.a2b_base64`` reads
    them: strict base64 (all a writer makes) by pybase64's SIMD decoder, ~3x faster on these
    ~560 characters; anything else (stray characters, extra padding) by ``a2b_base64``
    itself, which is lenient there and raises where it raises."""
    try:
        return pybase64.b64decode(text, validate=True)
    except ValueError:
        return a2b_base64(text)


def _open(cipher: AESGCM, event_hash: str, sealed: str, where: str | dict[str, Any]
          ) -> dict[str, Any]:
    """``where`` names the event in an error: a text, or the envelope (formatted only then)."""
    raw = unbase64(sealed)
    try:
        plain = cipher.decrypt(raw[:12], raw[12:], event_hash.encode())
    except InvalidTag:
        if isinstance(where, dict):
            where = f"{where['stream']}#{where['version']}"
        raise IntegrityError(f"{where}: sealed payload fails authentication (edited)") from None
    return loads(plain)


class KeyStore:
    """The family data keys of one ledger, unwrapped on demand and cached per process.

    Reading is batched: after a few single-key look-ups the rest of the table is read in
    one query (a scan such as ``verify`` or an ingest's replay would otherwise ask once per
    family), and each key is unwrapped only when first used. New keys are written at once,
    or, inside :meth:`batch`, all of one command's new keys in one transaction.
    """

    #: Single-key look-ups before the rest of the table is read in one query.
    BULK_AFTER = 8
    #: Ready ciphers kept (the oldest made is dropped first), so memory is bounded whatever
    #: the number of families: an AES-GCM object costs ~2.8 KB, 4096 of them ~11 MB. A ledger
    #: is ordered by file, so a range of it meets every family of a county again and again:
    #: with 256 kept, a verify of the 3,000-family county remade a cipher for one event in
    #: three (~1.7 µs each). The unwrapped keys themselves are all kept.
    CIPHERS = 4096

    def __init__(self, app: LedgerApp):
        self.app = app
        self._master: bytes | None = None
        self._master_cipher: AESGCM | None = None
        self._deks: dict[str, bytes | None] = {}
        self._ciphers: dict[str, AESGCM] = {}
        #: stream -> wrapped key, read in bulk and not yet unwrapped (None: not read yet)
        self._wrapped: dict[str, bytes] | None = None
        self._misses = 0
        #: stream -> wrapped key created inside :meth:`batch`, not yet written
        self._pending: dict[str, bytes] | None = None
        rec: Any = app.recorder
        self.sqlite = app.location.backend == "sqlite"
        self.keys_table = KeysTable(rec.datastore, self.sqlite)

    # --- master key ----------------------------------------------------------------------
    def master(self) -> bytes:
        if self._master is None:
            path = master_key_path(self.app.settings.key_directory)
            key = load_master_key(path)
            expected = self.app.master_key_id()
            if master_key_id(key) != expected:
                raise ConfigError(
                    f"{path}: wrong master key for this ledger (id {master_key_id(key)[:16]}…, "
                    f"the ledger's is {expected[:16]}…); nothing was read or written"
                )
            self._master = key
        return self._master

    def _master_aead(self) -> AESGCM:
        if self._master_cipher is None:
            self._master_cipher = AESGCM(self.master())
        return self._master_cipher

    def available(self) -> bool:
        """Whether a master key is here to open sealed payloads: False where there is no
        key file (an auditor's machine); a key file that is there but wrong, unsafe or
        unreadable is a ConfigError, never silently "no key"."""
        if self._master is None and not master_key_path(self.app.settings.key_directory).exists():
            return False
        self.master()
        return True

    # --- table (store/keys.py holds its SQL) ------------------------------------------------
    def create_table(self, writer: WriterTransaction) -> None:
        """The family-keys table, in the writer's transaction (init's, or import's)."""
        self.keys_table.create(writer)

    def rows(self) -> list[tuple[str, bytes]]:
        return self.keys_table.rows()

    def restore(self, rows: list[tuple[str, bytes]]) -> None:
        self.keys_table.insert(rows)

    # --- data keys -----------------------------------------------------------------------
    def dek(self, stream: str, *, create: bool = False) -> bytes | None:
        """The stream's data key; None once erased (or never created and not asked to)."""
        deks = self._deks
        if stream in deks and (deks[stream] is not None or not create):
            return deks[stream]
        wrapped = self._lookup(stream)
        if wrapped is not None:
            try:
                key = self._master_aead().decrypt(wrapped[:12], wrapped[12:], stream.encode())
            except InvalidTag:
                raise IntegrityError(f"{stream}: wrapped data key fails authentication") from None
        elif create:
            return self.create(stream)
        else:
            key = None
        deks[stream] = key
        if key is None:
            self._ciphers.pop(stream, None)
        return key

    def create(self, stream: str) -> bytes:
        """A new data key for a stream the caller knows has none (no look-up): written at
        once, or kept back inside :meth:`batch`. A key the table already holds for the
        stream makes the write fail on the table's key."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        wrapped = nonce + self._master_aead().encrypt(nonce, key, stream.encode())
        if self._pending is not None:
            self._pending[stream] = wrapped
        else:
            self._write([(stream, wrapped)])
        self._deks[stream] = key
        return key

    def missing(self, streams: list[str]) -> list[str]:
        """Those of ``streams`` the key table holds no key for (a few queries in all)."""
        if not streams:
            return []
        found = self.keys_table.present(streams)
        return [s for s in streams if s not in found]

    def _lookup(self, stream: str) -> bytes | None:
        """The stream's wrapped key from the table: from the bulk read when it holds it, else
        one query (a key another process created after the bulk read is still found)."""
        bulk = self._wrapped
        if bulk is not None:
            wrapped = bulk.pop(stream, None)
            if wrapped is not None:
                return wrapped
        else:
            self._misses += 1
            if self._misses > self.BULK_AFTER:
                self._wrapped = dict(self.rows())
                return self._lookup(stream)
        return self.keys_table.lookup(stream)

    def _write(self, rows: list[tuple[str, bytes]]) -> None:
        self.keys_table.insert(rows)

    @contextmanager
    def batch(self, *, write: bool = True) -> Iterator[dict[str, bytes]]:
        """Keys created inside are kept back (and forgotten if the block raises), so that
        a bulk append stores its new families' keys together. ``write=True``: they are
        written in one transaction when the block ends; write the events after it (a key
        must be stored before anything sealed with it). ``write=False``: the block gets
        them (stream -> wrapped key) to write in the same transaction as its events."""
        if self._pending is not None:  # already batching: the outer block decides
            yield self._pending
            return
        self._pending = pending = {}
        try:
            yield pending
            if pending and write:
                self._write(list(pending.items()))
        except BaseException:  # nothing sealed with these keys may be stored: forget them
            self.forget(list(pending))
            raise
        finally:
            self._pending = None

    def forget(self, streams: list[str]) -> None:
        """Drop cached keys of ``streams`` (keys created for a write that did not happen)."""
        for stream in streams:
            self._deks.pop(stream, None)
            self._ciphers.pop(stream, None)

    def _cipher(self, stream: str, *, create: bool = False) -> AESGCM | None:
        ciphers = self._ciphers
        cipher = ciphers.get(stream)
        if cipher is None:
            key = self.dek(stream, create=create)
            if key is None:
                return None
            if len(ciphers) >= self.CIPHERS:
                del ciphers[next(iter(ciphers))]
            cipher = ciphers[stream] = AESGCM(key)
        return cipher

    def destroy(self, stream: str, writer: WriterTransaction) -> bool:
        """Delete the stream's key in the writer's transaction, the one that records its
        ``Family.Erased`` event (on PostgreSQL through ``claimledger_erase_key``, which
        checks that event is there: the application role may not delete keys itself)."""
        self.keys_table.delete(stream, writer)
        self._deks[stream] = None
        self._ciphers.pop(stream, None)
        if self._wrapped is not None:
            self._wrapped.pop(stream, None)
        return True

    # --- records -------------------------------------------------------------------------
    def store(self, sealed: Sealed) -> bytes:
        """The stored bytes of a sealed event: a family's salt and payload encrypted under
        its data key (created on first use), any other record in the clear."""
        env = sealed.envelope
        return self.store_parts(env["stream"], env["type"], sealed)

    def store_parts(self, stream: str, type_: str, sealed: Sealed, nonce: bytes | None = None
                    ) -> bytes:
        """:meth:`store` given the event's stream and type (the envelope dict itself is not
        needed: ingest's sink has the sealed parts without it) and, optionally, 12 random
        bytes for the nonce."""
        if not stream.startswith(ENCRYPTED_PREFIX) or type_ in CLEAR_TYPES:
            return record_state(sealed)
        cipher = self._ciphers.get(stream) or self._cipher(stream, create=True)
        if cipher is None:
            raise ConfigError(f"{stream}: the family's data was erased; cannot append")
        return sealed_state(sealed, _encrypt(
            cipher, sealed.hash, plaintext(sealed.salt, sealed.payload_bytes), nonce))

    def open_record(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The readable form: salt and payload restored where the key still exists."""
        if "sealed" not in rec:
            return rec
        env = rec["envelope"]
        stream = env["stream"]
        cipher = self._ciphers.get(stream) or self._cipher(stream)
        if cipher is None:
            return {"envelope": env, "hash": rec["hash"], "erased": True}
        inner = _open(cipher, rec["hash"], rec["sealed"], env)
        return {"envelope": env, "hash": rec["hash"], "salt": inner["salt"],
                "payload": inner["payload"]}

    # --- verify --------------------------------------------------------------------------
    def sealed_digest(self, rec: dict[str, Any]) -> str | None:
        """A sealed record's payload digest, SHA-256(salt || canonical(payload)) in hex, for
        ``verify``; None once its family's key was erased. A changed ciphertext fails
        authentication with the IntegrityError :meth:`open_record` raises.

        The digest is taken from the decrypted bytes without parsing them (a parse and a
        canonical re-encoding cost more than the decryption): the plaintext is
        b'{"payload":' + canonical(payload) + b',"salt":"' + 32 hex digits + b'"}'
        (``plaintext`` in ledger/envelope.py), so two slices are exactly the bytes the digest
        covers. Sound: AES-GCM authenticates the plaintext (bound to this event's hash), and
        the envelope's digest commits to the sliced bytes; with the salt 16 bytes, as every
        writer makes it, slices that hash to the digest are the salt and payload bytes the
        writer hashed, byte for byte, so the plaintext is the one the writer sealed (its salt
        at most spelled in other letter case), the very bytes every reader parses, and a parse
        would give the same digest. Any other shape, and any mismatch (reported with the
        digest a parse gives, as before), takes the parse.
        """
        env = rec["envelope"]
        stream = env["stream"]
        cipher = self._ciphers.get(stream) or self._cipher(stream)
        if cipher is None:
            return None
        raw = unbase64(rec["sealed"])  # as _open does, and raising where it raises
        try:
            plain = cipher.decrypt(raw[:12], raw[12:], rec["hash"].encode())
        except InvalidTag:
            raise IntegrityError(f"{stream}#{env['version']}: sealed payload fails "
                                 "authentication (edited)") from None
        n = len(plain) - 43  # where ,"salt":" begins, before 32 hex digits and "}
        if (n > 11 and plain.startswith(b'{"payload":') and plain.startswith(b',"salt":"', n)
                and plain.endswith(b'"}')):
            try:
                salt = bytes.fromhex(plain[n + 9:-2].decode())
            except ValueError:
                salt = b""
            if len(salt) == 16:
                digest = hashlib.sha256(salt + plain[11:n]).hexdigest()
                if digest == env.get("payload_digest"):
                    return digest
        inner = loads(plain)
        return payload_digest(bytes.fromhex(inner["salt"]), inner["payload"])


class DetachedKeyStore(KeyStore):
    """The family keys of a ledger that is not in a database yet (an export being checked
    before import): wrapped keys held in memory, unwrapped with a master key the caller
    has already checked against the ledger's ``master_key_id``. Reads only; creates and
    destroys nothing."""

    def __init__(self, wrapped: dict[str, bytes], master: bytes):
        self._master = master
        self._master_cipher = None
        self._deks = {}
        self._ciphers = {}
        self._wrapped = None
        self._misses = 0
        self._pending = None
        self._held = wrapped
        self.sqlite = True

    def _lookup(self, stream: str) -> bytes | None:
        return self._held.get(stream)

    def rows(self) -> list[tuple[str, bytes]]:
        return sorted(self._held.items())
