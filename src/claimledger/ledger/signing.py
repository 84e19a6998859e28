"""Ed25519 signing keys for checkpoints: generate, store, load, sign, verify.

The private key lives in a file of mode 0600 that ``init`` refuses to overwrite; the public
key is also recorded in the ledger, so every checkpoint stays verifiable after a rotation.
A key's id is the SHA-256 of its raw public bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError, IntegrityError

PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


def public_raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def generate_keypair(
    key_dir: Path, *, name: str = PRIVATE_NAME, public_name: str = PUBLIC_NAME
) -> Ed25519PrivateKey:
    """Create a new key pair in ``key_dir``; never overwrites an existing private key."""
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / name
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: a signing key already exists; refusing to overwrite") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    (key_dir / public_name).write_text(public_raw(private).hex() + "\n")
    return private


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: signing key not found (run `claimledger init`)") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as e:
        raise ConfigError(f"{path}: not a PEM Ed25519 private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 private key")
    return key


def load_public_hex(text: str, where: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: not a hex Ed25519 public key") from None
    if len(raw) != 32:
        raise ConfigError(f"{where}: public key is {len(raw)} bytes, expected 32")
    return raw


def sign(private: Ed25519PrivateKey, message: bytes) -> bytes:
    return private.sign(message)


def verify_signature(public: bytes, signature: bytes, message: bytes, what: str) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise IntegrityError(
            f"{what}: bad signature (key {key_id(public)[:16]}…)"
        ) from None
