"""Checking an offline evidence bundle (the format is in :mod:`claimledger.audit.bundle`).

:func:`check_bundle` verifies all of it from the archive's bytes alone (python-tuf style: it
never raises on a bad bundle, it returns a :class:`BundleResult` whose ``reasons`` name each
failing member and what failed); :func:`verify_bundle` is the raising form. Neither reads a
clock, a disk or a database. Every member is authenticated by its content (events by their
hashes and inclusion proofs under the signed root, the policy by the registered SHA-256, the
decision by the claim event), so a manifest entry that disagrees with a member that verifies
is blamed on ``manifest.json``; any other changed byte, including zip headers, names its
member.

Pure: it takes the archive's bytes (and the trusted key) and imports nothing that reads a
database; a bundle is hostile until checked, so its size, member count and members' inflated
sizes are bounded before anything is inflated, and the keys and checkpoint signature are
checked before the bundled policy is parsed.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from ..domain.claim import Claim
from ..domain.family import Family
from ..domain.ledger import (
    LEDGER_KEY,
    Ledger,
    PolicyVersion,
)
from ..errors import (
    ClaimLedgerError,
    ErasedError,
    EvaluationError,
    IntegrityError,
    PolicyError,
)
from ..evaluate.replay import replay
from ..ledger import merkle
from ..ledger.canonical import canonical, loads
from ..ledger.envelope import GENESIS, envelope_hash, event_id, payload_digest
from ..ledger.keychain import (
    KEY_TYPES,
    KeyChainError,
    check_checkpoint_signature,
    check_rotation,
)
from ..ledger.signing import key_id as compute_key_id
from ..policy.load import load_policy_bytes
from ..policy.model import Policy

FORMAT = "claimledger-bundle/1"
MANIFEST = "manifest.json"
DECISION = "decision.json"
CHECKPOINT = "checkpoint.json"
ARCHIVE = "(archive)"
SUBMITTED = "Claim.Submitted"
REGISTERED = "PolicyVersion.Registered"
CHECKPOINTED = "Ledger.Checkpointed"
LEDGER_STREAM = Ledger.stream_name(LEDGER_KEY)
PROOF_KEYS = ("event", "hash", "leaf_index", "path", "tree_size")


def pretty(obj: Any) -> bytes:
    """The one rendering of the bundle's own JSON members (sorted, indented, final newline)."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the archive: a canonical stored zip --------------------------------------------------------
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_DOS_TIME = 0


def write_zip(members: dict[str, bytes]) -> bytes:
    """A stored zip of ``members`` in name order with fixed metadata: the same members always
    give the same bytes, so a verifier can rebuild the archive and compare every byte."""
    out = io.BytesIO()
    central = []
    for name in sorted(members):
        data = members[name]
        raw = name.encode("utf-8")
        flags = 0 if raw.isascii() else 0x800
        crc = binascii.crc32(data) & 0xFFFFFFFF
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 0, _DOS_TIME, _DOS_DATE,
                              crc, len(data), len(data), len(raw), 0))
        out.write(raw)
        out.write(data)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, flags,
                                   0, _DOS_TIME, _DOS_DATE, crc, len(data), len(data), len(raw),
                                   0, 0, 0, 0, 0o100644 << 16, offset) + raw)
    start = out.tell()
    for c in central:
        out.write(c)
    size = out.tell() - start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), size,
                          start, 0))
    return out.getvalue()


def _archive_regions(members: dict[str, bytes]) -> list[tuple[int, int, str]]:
    """(start, end, member) byte ranges of the canonical archive, to name a changed byte."""
    regions, pos, central = [], 0, []
    for name in sorted(members):
        n = 30 + len(name.encode("utf-8")) + len(members[name])
        regions.append((pos, pos + n, name))
        pos += n
    for name in sorted(members):
        n = 46 + len(name.encode("utf-8"))
        central.append((pos, pos + n, name))
        pos += n
    return regions + central + [(pos, pos + 22, ARCHIVE)]


# --- Merkle proofs for many leaves at once -------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    member: str
    reason: str

    def message(self) -> str:
        return f"{self.member}: {self.reason}"


@dataclass
class BundleResult:
    """The non-raising result of :func:`check_bundle`; :meth:`raise_for_failure` raises."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    claim_id: str | None = None
    family_ref: str | None = None
    members: int = 0
    events: int = 0
    family_events: int = 0
    tree_size: int | None = None
    root: str | None = None
    key_id: str | None = None
    key_source: str | None = None  # "--pubkey" or "bundled": which key checked the signature
    decision: dict[str, Any] | None = None  # the re-derived decision, when it was re-derived

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def reasons(self) -> list[str]:
        return [f.message() for f in self.findings]

    @property
    def failed_members(self) -> set[str]:
        return {f.member for f in self.findings}

    def raise_for_failure(self) -> None:
        if self.findings:
            raise IntegrityError("invalid bundle: " + "; ".join(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "ok": self.ok, "claim_id": self.claim_id, "family_ref": self.family_ref,
            "members": self.members, "events": self.events, "family_events": self.family_events,
            "tree_size": self.tree_size, "root": self.root, "key_id": self.key_id,
            "key_source": self.key_source,
            "decision": None if d is None else {k: d.get(k) for k in (
                "eligible", "claimable", "route", "reasons", "as_of", "known_at", "policy_id")},
            "findings": [{"member": f.member, "reason": f.reason} for f in self.findings],
            "notes": list(self.notes),
        }


@dataclass
class _Event:
    member: str
    raw: bytes
    rec: dict[str, Any]
    proof: dict[str, Any] | None = None

    @property
    def env(self) -> dict[str, Any]:
        return self.rec["envelope"]  # type: ignore[no-any-return]

    @property
    def type(self) -> str:
        return str(self.env["type"])

    @property
    def stream(self) -> str:
        return str(self.env["stream"])

    @property
    def version(self) -> int:
        return int(self.env["version"])

    @property
    def id(self) -> str:
        return event_id(self.stream, self.version)

    @property
    def payload(self) -> dict[str, Any]:
        return self.rec["payload"]  # type: ignore[no-any-return]

    @property
    def index(self) -> int:
        assert self.proof is not None
        return int(self.proof["leaf_index"])


class _Check:
    def __init__(self, result: BundleResult):
        self.result = result

    def fail(self, member: str, reason: str) -> None:
        self.result.findings.append(Finding(member, reason))

    def failed(self, *members: str) -> bool:
        return bool(self.result.failed_members & set(members))


def _short(h: str) -> str:
    return h[:16] + "…"


def _parse_record(c: _Check, name: str, raw: bytes) -> dict[str, Any] | None:
    """An event record's own integrity: canonical bytes, envelope hash, salted payload digest."""
    try:
        rec = loads(raw)
        env, stored, salt, payload = rec["envelope"], rec["hash"], rec["salt"], rec["payload"]
        if set(rec) != {"envelope", "hash", "salt", "payload"} or not isinstance(payload, dict):
            raise ValueError("fields are not envelope, hash, salt and payload")
        missing = {"stream", "version", "type", "recorded_at", "actor", "prev_hash",
                   "payload_digest"} - set(env)
        if missing:
            raise ValueError(f"envelope lacks {', '.join(sorted(missing))}")
    except (ValueError, KeyError, TypeError) as e:
        c.fail(name, f"not an event record ({e})")
        return None
    if canonical(rec) != raw:
        c.fail(name, "not the canonical bytes of its record (a byte was changed)")
        return None
    got = envelope_hash(env)
    if got != stored:
        c.fail(name, f"envelope hash is {_short(got)}, the record says {_short(stored)}")
        return None
    try:
        digest = payload_digest(bytes.fromhex(salt), payload)
    except (ValueError, TypeError):
        c.fail(name, "salt is not hex")
        return None
    if digest != env["payload_digest"]:
        c.fail(name, f"payload digest is {_short(digest)}, the envelope says "
                     f"{_short(env['payload_digest'])} (payload or salt changed)")
        return None
    return rec  # type: ignore[no-any-return]


def _parse_json_member(c: _Check, name: str, raw: bytes) -> Any:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        c.fail(name, f"not JSON ({e})")
        return None
    if pretty(obj) != raw:
        c.fail(name, "not in the bundle's canonical JSON form (a byte was changed)")
        return None
    return obj


def _parse_proof(c: _Check, name: str, raw: bytes) -> dict[str, Any] | None:
    p = _parse_json_member(c, name, raw)
    if p is None:
        return None
    try:
        if not isinstance(p, dict) or tuple(sorted(p)) != PROOF_KEYS:
            raise ValueError(f"fields must be {', '.join(PROOF_KEYS)}")
        if not all(isinstance(p[k], int) and not isinstance(p[k], bool)
                   for k in ("leaf_index", "tree_size")):
            raise ValueError("leaf_index and tree_size must be integers")
        p["path_bytes"] = [bytes.fromhex(h) for h in p["path"]]
        bytes.fromhex(p["hash"])
    except (ValueError, TypeError) as e:
        c.fail(name, f"not an inclusion proof ({e})")
        return None
    return p  # type: ignore[no-any-return]


def _check_archive(c: _Check, data: bytes, members: dict[str, bytes]) -> None:
    canonical_zip = write_zip(members)
    if canonical_zip == data:
        return
    n = min(len(data), len(canonical_zip))
    at = next((i for i in range(n) if data[i] != canonical_zip[i]), n)
    member = next((m for lo, hi, m in _archive_regions(members) if lo <= at < hi), ARCHIVE)
    c.fail(member, f"zip headers differ from the bundle's canonical archive at byte {at} "
                   "(the archive was changed or rebuilt)")


def _check_manifest(c: _Check, members: dict[str, bytes], unreadable: set[str]
                    ) -> tuple[dict[str, tuple[str, str]], str | None]:
    """Parse the manifest; return member -> (listed sha256, actual sha256) mismatches."""
    raw = members.get(MANIFEST)
    if raw is None:
        if MANIFEST not in unreadable:
            c.fail(MANIFEST, "missing from the bundle")
        return {}, None
    m = _parse_json_member(c, MANIFEST, raw)
    if m is None:
        return {}, None
    try:
        if not isinstance(m, dict) or set(m) != {"format", "claim_id", "members"}:
            raise ValueError("fields must be format, claim_id and members")
        if m["format"] != FORMAT:
            raise ValueError(f"format {m['format']!r}, this claimledger reads {FORMAT!r}")
        listed: dict[str, tuple[str, int]] = {}
        for e in m["members"]:
            if set(e) != {"name", "sha256", "size"}:
                raise ValueError("a member entry's fields must be name, sha256 and size")
            if e["name"] in listed or e["name"] == MANIFEST:
                raise ValueError(f"member {e['name']!r} listed twice or lists itself")
            listed[e["name"]] = (e["sha256"], e["size"])
        if list(listed) != sorted(listed):
            raise ValueError("members are not in name order")
    except (ValueError, TypeError, KeyError) as e:
        c.fail(MANIFEST, f"not a bundle manifest ({e})")
        return {}, None
    mismatched: dict[str, tuple[str, str]] = {}
    for name, (sha, size) in listed.items():
        if name not in members:
            if name not in unreadable:
                c.fail(MANIFEST, f"lists {name}, which the bundle lacks")
            continue
        got = sha256_hex(members[name])
        if got != sha or size != len(members[name]):
            mismatched[name] = (f"{_short(str(sha))} ({size} bytes)",
                                f"{_short(got)} ({len(members[name])} bytes)")
    for name in members:
        if name != MANIFEST and name not in listed:
            c.fail(MANIFEST, f"does not list {name}, which the bundle holds")
    return mismatched, str(m["claim_id"])


#: Bounds on what a bundle may hold, checked before anything is inflated: a bundle comes from
#: outside. A claim's bundle holds a few hundred to a few thousand members of a few kilobytes
#: each (its family's events and their proofs); the demo county's largest is under 2 MB.
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 50_000
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_INFLATED_BYTES = 512 * 1024 * 1024


def _read_archive(c: _Check, data: bytes) -> tuple[dict[str, bytes], set[str]] | None:
    """The members, once the archive's own directory shows they fit the bounds above; each
    is inflated at most to its declared size (zipfile stops there, and a member that
    inflates to more or less fails its CRC)."""
    if len(data) > MAX_BUNDLE_BYTES:
        c.fail(ARCHIVE, f"{len(data)} bytes; a bundle is at most {MAX_BUNDLE_BYTES}")
        return None
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, struct.error, EOFError,
            NotImplementedError) as e:
        c.fail(ARCHIVE, f"not a zip archive ({type(e).__name__}: {e})")
        return None
    if len(infos) > MAX_MEMBERS:
        c.fail(ARCHIVE, f"{len(infos)} members; a bundle holds at most {MAX_MEMBERS}")
        return None
    big = next((i for i in infos if i.file_size > MAX_MEMBER_BYTES), None)
    if big is not None:
        c.fail(big.filename, f"inflates to {big.file_size} bytes; a bundle's member is at "
                             f"most {MAX_MEMBER_BYTES}")
        return None
    total = sum(i.file_size for i in infos)
    if total > MAX_INFLATED_BYTES:
        c.fail(ARCHIVE, f"members inflate to {total} bytes in all; at most "
                        f"{MAX_INFLATED_BYTES}")
        return None
    members: dict[str, bytes] = {}
    unreadable: set[str] = set()
    with zf:
        for info in infos:
            if info.filename in members or info.filename in unreadable:
                c.fail(info.filename, "appears twice in the archive")
                continue
            try:
                with zf.open(info) as f:
                    members[info.filename] = f.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                    NotImplementedError, struct.error, RuntimeError) as e:
                c.fail(info.filename, f"unreadable in the archive ({e})")
                unreadable.add(info.filename)
    return members, unreadable


def check_bundle(data: bytes, *, trusted_key: bytes | None = None) -> BundleResult:
    """Verify a bundle from its bytes alone; never raises on a bad bundle.

    ``trusted_key``: the raw Ed25519 public key the verifier trusts (``--pubkey``); without
    it the checkpoint signature is checked against the bundle's own key, and the result says
    so (``key_source``), since a bundle's own key proves only that the bundle is consistent.
    """
    result = BundleResult()
    c = _Check(result)
    read = _read_archive(c, data)
    if read is None:
        return result
    members, unreadable = read
    result.members = len(members)
    if not result.findings:
        _check_archive(c, data, members)
    mismatched, manifest_claim = _check_manifest(c, members, unreadable)

    events: dict[str, _Event] = {}
    proofs: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    policy_members: list[str] = []
    checkpoint: dict[str, Any] | None = None
    decision_doc: Any = None
    for name, raw in sorted(members.items()):
        if name == MANIFEST:
            continue
        if name.startswith("events/") and name.endswith(".json"):
            rec = _parse_record(c, name, raw)
            if rec is not None:
                events[name.removeprefix("events/")] = _Event(name, raw, rec)
        elif name.startswith("proofs/") and name.endswith(".json"):
            p = _parse_proof(c, name, raw)
            if p is not None:
                proofs[name.removeprefix("proofs/")] = p
        elif name.startswith("keys/") and name.endswith(".pub"):
            text = raw.decode("ascii", "replace")
            if not re.fullmatch(r"[0-9a-f]{64}\n", text):
                c.fail(name, "not a hex Ed25519 public key on one line")
            else:
                keys[name] = text.strip()
        elif name.startswith("policy/") and name.endswith(".toml"):
            policy_members.append(name)
        elif name == CHECKPOINT:
            checkpoint = _parse_record(c, name, raw)
        elif name == DECISION:
            decision_doc = _parse_json_member(c, name, raw)
        else:
            c.fail(name, "not a member a claimledger bundle has")
    for name in (CHECKPOINT, DECISION):
        if name not in members and name not in unreadable:
            c.fail(name, "missing from the bundle")

    intrinsic_ok = not (result.failed_members - {MANIFEST})
    if intrinsic_ok and checkpoint is not None:
        try:
            _check_contents(c, events, proofs, keys, policy_members, members, checkpoint,
                            decision_doc, manifest_claim, trusted_key)
        except (KeyError, TypeError, ValueError, AttributeError, ClaimLedgerError) as e:
            # only a signer could make authenticated records this odd; still never raise
            c.fail(ARCHIVE, f"records are not shaped as a claim's bundle ({type(e).__name__}: "
                            f"{e})")
    elif not intrinsic_ok:
        result.notes.append("further checks skipped until the members named above are intact")

    for name, (listed, got) in sorted(mismatched.items()):
        if name in result.failed_members:
            c.fail(name, f"SHA-256 is {got}, manifest.json lists {listed}")
        else:
            c.fail(MANIFEST, f"lists SHA-256 {listed} for {name}, whose bytes hash to {got} "
                             "(and which otherwise verifies: the manifest was changed)")
    return result


def verify_bundle(data: bytes, *, trusted_key: bytes | None = None) -> BundleResult:
    """The raising form of :func:`check_bundle`: IntegrityError naming every failure."""
    result = check_bundle(data, trusted_key=trusted_key)
    result.raise_for_failure()
    return result


def _check_contents(
    c: _Check, events: dict[str, _Event], proofs: dict[str, dict[str, Any]],
    keys: dict[str, str], policy_members: list[str], members: dict[str, bytes],
    cp: dict[str, Any], decision_doc: Any, manifest_claim: str | None,
    trusted_key: bytes | None,
) -> None:
    """What the members say together, once each is intact on its own: proofs under the signed
    root, the claim, the family's complete prefix, the policy, the keys and the replay."""
    res = c.result
    cpp = cp["payload"]
    try:
        tree_size, root = int(cpp["tree_size"]), bytes.fromhex(cpp["root"])
        frontier = merkle.Frontier.from_json(cpp["frontier"])
    except (KeyError, ValueError, TypeError) as e:
        c.fail(CHECKPOINT, f"not a checkpoint ({e})")
        return
    if cp["envelope"]["type"] != CHECKPOINTED or cp["envelope"]["stream"] != LEDGER_STREAM:
        c.fail(CHECKPOINT, f"is a {cp['envelope']['type']} event, not a ledger checkpoint")
        return
    if frontier.size != tree_size or frontier.root() != root:
        c.fail(CHECKPOINT, "its stored frontier does not give its root")
    res.tree_size, res.root = tree_size, cpp["root"]

    _check_proofs(c, events, proofs, tree_size, root)
    if c.failed(*(f"proofs/{s}" for s in proofs), *(e.member for e in events.values())):
        res.notes.append("the claim was not replayed: its events are not all proven")
        return

    by_type: dict[str, list[_Event]] = {}
    for ev in sorted(events.values(), key=lambda e: e.index):
        by_type.setdefault(ev.type, []).append(ev)
    subs = by_type.pop(SUBMITTED, [])
    if len(subs) != 1:
        c.fail(MANIFEST if not subs else subs[1].member,
               f"a bundle holds exactly one Claim.Submitted event, this one {len(subs)}")
        return
    sub = subs[0]
    sp = sub.payload
    res.claim_id, res.family_ref = sp.get("claim_id"), sp.get("family_ref")
    claim_stream = Claim.stream_name(str(sp.get("claim_id")))
    if sub.stream != claim_stream or sub.version != 1 or sub.env["prev_hash"] != GENESIS:
        c.fail(sub.member, f"{sub.id} is not the first event of {claim_stream}")
    if manifest_claim is not None and manifest_claim != sp["claim_id"]:
        c.fail(MANIFEST, f"names claim {manifest_claim!r}, the bundle's claim event "
                         f"{sp['claim_id']!r}")
    known_at = sp["known_at"]
    if sub.env["recorded_at"] != known_at:
        c.fail(sub.member, f"known_at {known_at} is not the submission's recorded_at "
                           f"{sub.env['recorded_at']}")
    if cpp["signed_at"] < known_at:
        c.fail(CHECKPOINT, f"signed at {cpp['signed_at']}, before the claim's submission "
                           f"{known_at}")

    family_stream = Family.stream_name(str(sp["family_ref"]))
    before = _check_family(c, [e for evs in by_type.values() for e in evs
                               if e.stream == family_stream], family_stream, sub, known_at)
    res.family_events = len(before)
    res.events = len(events)

    # The signature first: nothing else the bundle holds (its policy TOML above all) is
    # parsed further unless the checkpoint that authenticates it verifies.
    _check_keys(c, [e for t in KEY_TYPES for e in by_type.pop(t, [])], keys, cpp,
                tree_size, trusted_key)
    regs = by_type.pop(REGISTERED, [])
    if res.findings:
        res.notes.append("the policy was not read: the keys or the checkpoint's signature "
                         "do not verify")
        return
    policy = _check_policy(c, regs, policy_members, members, sp)
    for t, evs in by_type.items():
        for e in evs:
            if e.stream != family_stream:
                c.fail(e.member, f"{e.id} ({t}) is not an event a claim's decision rests on")
    # the recorded decision, then the replay
    if decision_doc != sp["decision"]:
        c.fail(DECISION, "is not the decision the claim event records")
    if res.findings or policy is None:
        res.notes.append("the claim was not replayed: fix the findings first")
        return
    _replay(c, sp, before, policy)


def _replay(c: _Check, sp: dict[str, Any], before: list[_Event], policy: Policy) -> None:
    """Re-derive the decision from the bundled events and policy with the same pure code the
    ledger used (select_evidence, decide) and compare it with the recorded one."""
    res = c.result
    known_at = sp["known_at"]
    on = date.fromisoformat(sp["claimed_on"])
    records = [(f"bundle:{e.type}", e.rec) for e in before]
    try:
        again = replay(records, on, known_at, policy)[2].to_dict()
    except (EvaluationError, ErasedError) as e:
        c.fail(DECISION, f"cannot be re-derived from the bundled events ({e})")
        return
    res.decision = again
    recorded = sp["decision"]
    shared = [k for k in recorded if k in again and k != "notes"]
    differ = [k for k in shared if again[k] != recorded[k]]
    if differ:
        c.fail(DECISION, "re-deriving it from the bundled events and policy gives a different "
                         + ", ".join(f"{k} ({_brief(recorded[k])} recorded, {_brief(again[k])} "
                                     "re-derived)" for k in differ))
    unshared = sorted(set(again) ^ set(recorded))
    if unshared or again.get("notes") != recorded.get("notes"):
        res.notes.append("the re-derived decision agrees on every field both know; it differs in "
                         + ", ".join(unshared + ["notes"] * (again.get("notes")
                                                           != recorded.get("notes")))
                         + f" (this claimledger may word these unlike "
                         f"{sp.get('claimledger_version')}, which decided the claim)")


def _check_family(c: _Check, family: list[_Event], family_stream: str, sub: _Event,
                  known_at: str) -> list[_Event]:
    """The family's stream from genesis up to the claim (returned in version order), then at
    most its next event, which must come after the claim in the tree."""
    before = sorted((e for e in family if e.index < sub.index), key=lambda e: e.version)
    after = [e for e in family if e.index > sub.index]
    head = GENESIS
    for want, e in enumerate(before, start=1):
        if e.version != want:
            c.fail(e.member, f"{family_stream} jumps to version {e.version} after {want - 1}: "
                             "the family's events before the claim are not all in the bundle")
            break
        if e.env["prev_hash"] != head:
            c.fail(e.member, f"{e.id} prev_hash {_short(e.env['prev_hash'])} is not the hash "
                             f"of the previous event {_short(head)}")
            break
        if e.env["recorded_at"] > known_at:
            c.fail(e.member, f"{e.id} was recorded at {e.env['recorded_at']}, after the claim's "
                             f"known_at {known_at}")
            break
        head = e.rec["hash"]
    if not before:
        c.fail(MANIFEST, f"the bundle holds none of {family_stream}'s events")
    if len(after) > 1 or (after and (after[0].version != len(before) + 1
                                     or after[0].env["prev_hash"] != head)):
        c.fail(after[-1].member, f"{after[-1].id} is not the family's next event after "
                                 f"{len(before)} bundled ones")
    return before


def _check_policy(c: _Check, regs: list[_Event], policy_members: list[str],
                  members: dict[str, bytes], sp: dict[str, Any]) -> Policy | None:
    """The one registered policy the claim names, and its exact bytes, loaded."""
    reg = next((e for e in regs if e.payload.get("sha256") == sp["policy_sha256"]), None)
    policy = None
    if reg is None or len(regs) != 1:
        c.fail(MANIFEST, f"the bundle must hold exactly the registration of policy "
                         f"{_short(sp['policy_sha256'])} the claim names")
    elif len(policy_members) != 1:
        c.fail(MANIFEST, f"a bundle holds one policy file, this one {len(policy_members)}")
    else:
        rp, pname = reg.payload, policy_members[0]
        pbytes = members[pname]
        if reg.stream != PolicyVersion.stream_name(rp["sha256"]) or reg.version != 1:
            c.fail(reg.member, f"{reg.id} is not a policy registration")
        elif sha256_hex(pbytes) != rp["sha256"] or pbytes != rp["content"].encode("utf-8"):
            c.fail(pname, f"SHA-256 {_short(sha256_hex(pbytes))} is not the registered "
                          f"policy's {_short(rp['sha256'])}")
        else:
            try:
                policy = load_policy_bytes(pbytes, str(rp["path"]))
            except PolicyError as e:
                c.fail(pname, f"does not load ({e})")
            else:
                if policy.id != sp["policy_id"]:
                    c.fail(pname, f"is policy {policy.id}, the claim names {sp['policy_id']}")
                    policy = None

    return policy


def _check_proofs(c: _Check, events: dict[str, _Event], proofs: dict[str, dict[str, Any]],
                  tree_size: int, root: bytes) -> None:
    """Every event has its proof, and each proof puts its event under the signed root."""
    for stem, ev in events.items():
        proof = proofs.get(stem)
        if proof is None:
            c.fail(ev.member, f"has no inclusion proof proofs/{stem}")
            continue
        pname = f"proofs/{stem}"
        if proof["tree_size"] != tree_size:
            c.fail(pname, f"proves against a tree of {proof['tree_size']} events, the "
                          f"checkpoint signs {tree_size}")
            continue
        if proof["hash"] != ev.rec["hash"]:
            try:  # which of the two changed: does the proof still prove its own hash?
                merkle.verify_inclusion(proof["leaf_index"], tree_size,
                                        merkle.leaf_hash(bytes.fromhex(proof["hash"])),
                                        proof["path_bytes"], root)
            except IntegrityError:
                c.fail(pname, f"is a proof for hash {_short(proof['hash'])}, not for "
                              f"{ev.member}'s {_short(ev.rec['hash'])}, and proves neither")
            else:
                c.fail(ev.member, f"{ev.id} has hash {_short(ev.rec['hash'])}, but the signed "
                                  f"tree holds {_short(proof['hash'])} at its leaf "
                                  f"{proof['leaf_index']} (the record was replaced)")
            continue
        if proof["event"] != ev.id:
            c.fail(pname, f"names event {proof['event']}, the record is {ev.id}")
            continue
        try:
            merkle.verify_inclusion(proof["leaf_index"], tree_size,
                                    merkle.leaf_hash(bytes.fromhex(ev.rec["hash"])),
                                    proof["path_bytes"], root)
        except IntegrityError as e:
            c.fail(pname, f"does not prove {ev.member} is in the checkpoint's tree ({e})")
            continue
        ev.proof = proof
    for stem in proofs:
        if stem not in events:
            c.fail(f"proofs/{stem}", f"proves an event the bundle lacks (events/{stem})")


def _check_keys(c: _Check, key_events: list[_Event], keys: dict[str, str],
                cpp: dict[str, Any], tree_size: int, trusted_key: bytes | None) -> None:
    """The key registrations in the tree (each rotation endorsed by the key before it), the
    .pub files, and the checkpoint's signature under the active key (or the trusted one)."""
    res = c.result
    registered: dict[str, str] = {}
    ledger_id = None
    active = None
    for e in sorted(key_events, key=lambda e: e.index):
        p = e.payload
        try:
            public = bytes.fromhex(p["public_key"])
            if e.stream != LEDGER_STREAM or compute_key_id(public) != p["key_id"]:
                raise ValueError("its key id is not its public key's")
            if e.type == "Ledger.Initialised":
                if e.version != 1 or e.env["prev_hash"] != GENESIS or ledger_id is not None:
                    raise ValueError("it is not the ledger's first event")
                ledger_id = p["ledger_id"]
            else:
                check_rotation(p, {k: bytes.fromhex(v) for k, v in registered.items()},
                               active, str(ledger_id), "rotation")
        except (KeyError, ValueError, TypeError, IntegrityError) as err:
            c.fail(e.member, f"{e.id} is not a valid key registration of the ledger ({err})")
            continue
        registered[p["key_id"]] = p["public_key"]
        active = p["key_id"]
    for name, hexkey in keys.items():
        kid = name.removeprefix("keys/").removesuffix(".pub")
        if registered.get(kid) != hexkey:
            c.fail(name, "is not a public key the bundled key registrations register")
    for kid in registered:
        if f"keys/{kid}.pub" not in keys:
            c.fail(MANIFEST, f"the ledger key {_short(kid)} has no keys/{kid}.pub member")
    kid = cpp["key_id"]
    res.key_id = kid
    if ledger_id is None:
        c.fail(MANIFEST, "the bundle lacks the ledger's Ledger.Initialised event")
    elif kid not in registered or kid != active:
        c.fail(CHECKPOINT, f"signed with key {_short(kid)}, which is not the ledger's "
                           "registered active key in the bundled key events")
    else:
        public = bytes.fromhex(registered[kid])
        if trusted_key is not None:
            res.key_source = "--pubkey"
            trusted_id = compute_key_id(trusted_key)
            if trusted_id not in registered:
                c.fail(CHECKPOINT, f"signed with key {_short(kid)}, not the trusted key "
                                   f"{_short(trusted_id)} (--pubkey), nor a key it endorsed "
                                   "before this checkpoint")
            elif trusted_id != kid:
                order = list(registered)
                res.notes.append(
                    f"checkpoint key {_short(kid)} is endorsed by the trusted key "
                    f"{_short(trusted_id)} through {order.index(kid) - order.index(trusted_id)} "
                    "key rotation(s)")
        else:
            res.key_source = "bundled"
            res.notes.append(f"checkpoint signature checked against the bundle's own key "
                             f"{_short(kid)}; pass --pubkey with the authority's published key "
                             "to trust it")
        try:
            check_checkpoint_signature({**cpp, "tree_size": tree_size}, public, ledger_id,
                                       "checkpoint")
        except KeyChainError as e:
            c.fail(CHECKPOINT, f"signature does not verify ({e})")


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."
