"""Offline evidence bundles.

A government spot-checker receives one zip per claim. Without the council's database, and
without trusting anything but the council's published key, they must be able to check that
every record the claim rests on is in the signed ledger, and re-derive the decision. Any byte
changed anywhere in the bundle must be caught and the changed member named.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from claimledger.audit import bundle as B
from claimledger.audit import bundle_check
from claimledger.cli import main
from claimledger.ledger import signing
from claimledger.ledger.canonical import canonical, loads
from claimledger.ledger.envelope import envelope_hash, payload_digest
from claimledger.ledger.keychain import checkpoint_statement
from county import County, terms

POLICY = "worcestershire/stronger-families-2015-16"
CLAIM = "W-1/progress"


def family(ref: str, absent_pct: int, *,
           into_work: bool = False) -> dict[str, list[dict[str, Any]]]:
    """A Worcestershire family with two problems at identification (a child persistently
    absent, an adult's ASB), attached on 1 June 2015, with a child-in-need plan stepped down to
    early help; ``into_work``: the adult leaves JSA for 30 hours a week from 31 August 2015.

    Worcestershire 000, theme 2: each child under 15% absence over the last three terms;
    theme 1 row 3: ASB down by two thirds, attested by the lead worker; the employment route:
    JSA 26 of the last 30 weeks in work.
    """
    adult, child = f"{ref}-A1", f"{ref}-C1"
    data: dict[str, list[dict[str, Any]]] = {
        "families": [{"family_ref": ref, "authority": "Worcestershire", "policy_id": POLICY,
                      "identified_on": "2015-05-01"}],
        "members": [
            {"family_ref": ref, "member_ref": adult, "role": "adult", "birth_date": "1982-02-02"},
            {"family_ref": ref, "member_ref": child, "role": "child", "birth_date": "2005-03-01"},
        ],
        "indicators": [
            {"family_ref": ref, "member_ref": child, "problem": "education",
             "indicator": "absence", "observed_on": "2015-05-01", "stage": "identification",
             "source": "school census"},
            {"family_ref": ref, "member_ref": adult, "problem": "crime_asb",
             "indicator": "asb", "observed_on": "2015-05-01", "stage": "identification",
             "source": "police"},
        ],
        "attachments": [{"family_ref": ref, "attached_on": "2015-06-01",
                         "lead_professional": "LW-7", "assessment_on": "2015-06-10",
                         "plan_on": "2015-06-20"}],
        "attendance": terms(child, absent_pct, (2014, 2015)),
        "incidents": [
            {"member_ref": adult, "occurred_on": d, "kind": "asb_incident", "serious": "no",
             "source": "police"}
            for d in ("2015-01-10", "2015-02-11", "2015-03-12", "2015-04-13", "2015-05-14",
                      "2015-05-20", "2016-01-15")
        ],
        "care_status": [
            {"member_ref": child, "status": "cin", "start_on": "2015-02-01",
             "end_on": "2015-09-30", "source": "social care"},
            {"member_ref": child, "status": "early_help", "start_on": "2015-10-01",
             "end_on": None, "source": "early help"}],
        "attestations": [{"family_ref": ref, "member_ref": None,
                          "outcome": "asb_sanctions_not_escalated", "attested_on": "2016-03-10",
                          "practitioner": "LW-7", "evidence": "housing provider letter HP-22"}],
        "judgements": [{"family_ref": ref, "judged_on": "2016-03-15", "practitioner": "LW-7",
                        "problem": "all", "progress": "yes", "sustained": "yes",
                        "intensity_reduced": "yes", "note": "support stepped down"}],
    }
    if into_work:
        data["employment"] = [
            {"member_ref": adult, "kind": "benefit_claim", "benefit": "jsa",
             "start_on": "2014-01-06", "end_on": "2015-08-30", "hours_per_week": None,
             "source": "DWP"},
            {"member_ref": adult, "kind": "employment", "benefit": None,
             "start_on": "2015-08-31", "end_on": None, "hours_per_week": 30, "source": "DWP"}]
    return data


def run_inprocess(*args: str) -> tuple[int, str, str]:
    """The CLI in this process without pytest's capture (for module-scoped ledgers)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def rebuild(members: dict[str, bytes]) -> bytes:
    """What a careful forger does: fix the manifest and rebuild the archive around a change."""
    members = dict(members)
    manifest = json.loads(members[B.MANIFEST])
    manifest["members"] = [{"name": n, "sha256": B.sha256_hex(b), "size": len(b)}
                           for n, b in sorted(members.items()) if n != B.MANIFEST]
    members[B.MANIFEST] = B.pretty(manifest)
    return B.write_zip(members)


def reseal(raw: bytes, **changes: Any) -> bytes:
    """An event record with payload fields changed and its digest and hash recomputed."""
    rec = loads(raw)
    rec["payload"].update(changes)
    rec["envelope"]["payload_digest"] = payload_digest(bytes.fromhex(rec["salt"]),
                                                       rec["payload"])
    rec["hash"] = envelope_hash(rec["envelope"])
    return canonical(rec)


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> County:
    """Two families whose claims were submitted on 2 April 2016; a late school return for
    W-1 arrived in May (after the claim, so it must not enter W-1's bundle or replay)."""
    c = County(tmp_path_factory.mktemp("county"), run_inprocess)
    c.init("Worcestershire")
    c.ingest(family("W-1", 5, into_work=True), now="2016-03-20T10:00:00Z")
    c.ingest(family("W-2", 5), now="2016-03-21T10:00:00Z")
    c.cli("claim", "submit", "W-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("claim", "submit", "W-2", "--on", "2016-03-31", now="2016-04-02T09:05:00Z")
    late = [t for t in terms("W-1-C1", 40, (2015,)) if t["term_start"] == "2016-01-04"]
    c.ingest({"attendance": late}, now="2016-05-10T09:00:00Z")
    c.cli("seal", now="2016-05-10T09:01:00Z")
    return c


@pytest.fixture(scope="module")
def bundle_file(county: County) -> Path:
    out = county.tmp / "W-1.zip"
    _, made, _ = county.cli("bundle", CLAIM, "--out", str(out), "--json",
                            now="2016-06-01T00:00:00Z")
    assert made["claim_id"] == CLAIM and made["family_events"] == 25
    return out


@pytest.fixture(scope="module")
def good(bundle_file: Path) -> bytes:
    return bundle_file.read_bytes()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CLAIMLEDGER")}


def _offline(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``claimledger`` in a fresh process, in an empty directory, with no CLAIMLEDGER_* set."""
    return subprocess.run(
        [sys.executable, "-c", "from claimledger.cli import main; main()", *args],
        cwd=tmp, env=_clean_env(), capture_output=True, text=True, timeout=60)


# --- the spot-checker's happy path ------------------------------------------------------------
def test_a_bundle_verifies_offline_in_a_fresh_process_with_no_ledger(
    county: County, bundle_file: Path, tmp_path: Path, run,
):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    pub = county.keys / signing.PUBLIC_NAME
    done = _offline(empty, "verify-bundle", str(bundle_file), "--pubkey", str(pub))
    assert done.returncode == 0, done.stderr
    assert "valid bundle for claim W-1/progress" in done.stdout
    assert "the key given with --pubkey" in done.stdout
    assert "claimable, progress route; matches the recorded decision" in done.stdout
    assert list(empty.iterdir()) == []  # nothing created: no ledger, no key directory

    code, out, err = run("verify-bundle", str(bundle_file), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["ok"] and d["claim_id"] == CLAIM and d["key_source"] == "bundled"
    assert any("pass --pubkey" in n for n in d["notes"])
    assert d["decision"]["claimable"] and d["decision"]["route"] == "progress"
    assert d["decision"]["known_at"] == "2016-04-02T09:00:00.000000Z"
    assert d["family_events"] == 25  # the May school return is not among them


def test_verifying_a_bundle_never_opens_a_database(
    good: bytes, bundle_file: Path, monkeypatch: pytest.MonkeyPatch, run,
):
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("verify-bundle tried to open a database")

    import sqlalchemy

    from claimledger import application

    monkeypatch.setattr(application.LedgerApp, "__init__", refuse)
    monkeypatch.setattr(application, "open_app", refuse)
    monkeypatch.setattr(sqlite3, "connect", refuse)
    monkeypatch.setattr(sqlalchemy, "create_engine", refuse)
    code, out, err = run("verify-bundle", str(bundle_file))
    assert code == 0 and "valid bundle" in out, err
    assert B.check_bundle(good).ok


def test_the_bundle_is_the_same_bytes_every_time(county: County, good: bytes):
    again = county.tmp / "again.zip"
    county.cli("bundle", CLAIM, "--out", str(again), now="2016-07-01T00:00:00Z")
    assert again.read_bytes() == good


def test_the_bundle_holds_what_the_decision_rests_on(good: bytes):
    m = members_of(good)
    manifest = json.loads(m[B.MANIFEST])
    assert manifest["claim_id"] == CLAIM
    assert sorted(e["name"] for e in manifest["members"]) == sorted(set(m) - {B.MANIFEST})
    types = [loads(b)["envelope"]["type"] for n, b in m.items() if n.startswith("events/")]
    assert types.count("Claim.Submitted") == 1 and types.count("PolicyVersion.Registered") == 1
    assert "Ledger.Initialised" in types
    assert loads(m[B.CHECKPOINT])["envelope"]["type"] == "Ledger.Checkpointed"
    policy = next(b for n, b in m.items() if n.startswith("policy/"))
    sub = next(loads(b) for n, b in m.items() if n.startswith("events/")
               and loads(b)["envelope"]["type"] == "Claim.Submitted")
    assert B.sha256_hex(policy) == sub["payload"]["policy_sha256"]
    assert json.loads(m[B.DECISION]) == sub["payload"]["decision"]
    # every event record carries salt and payload, so its digest can be recomputed
    for n, b in m.items():
        if n.startswith("events/"):
            rec = loads(b)
            assert payload_digest(bytes.fromhex(rec["salt"]), rec["payload"]) == \
                rec["envelope"]["payload_digest"]
            assert n.replace("events/", "proofs/") in m


# --- any changed byte is caught and named -------------------------------------------------------
GROUPS = ["manifest.json", "decision.json", "checkpoint.json", "events/", "proofs/", "keys/",
          "policy/"]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("group", GROUPS)
def test_a_flipped_byte_in_each_member_is_caught_and_names_that_member(good: bytes, group: str):
    """Each member, a byte flipped at its start, middle and end; the archive's CRCs are
    rewritten, as a forger would, so only the bundle's own checks stand in the way."""
    m = members_of(good)
    names = [n for n in m if n == group or (group.endswith("/") and n.startswith(group))]
    assert names
    for name in names:
        for at in sorted({0, len(m[name]) // 2, len(m[name]) - 1}):
            result = B.check_bundle(B.write_zip({**m, name: _flip(m[name], at)}))
            assert not result.ok, f"{name} byte {at} flipped went unnoticed"
            assert {f.member for f in result.findings} == {name}, (name, at, result.reasons)


def test_a_flipped_byte_in_the_raw_archive_names_the_member(good: bytes):
    """Without rewriting the CRCs: a changed content byte is caught by the archive itself."""
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        infos = z.infolist()
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode())
        result = B.check_bundle(_flip(good, start + info.file_size // 2))
        assert not result.ok and info.filename in result.failed_members, info.filename


def test_a_changed_zip_header_names_the_member(good: bytes):
    """Bytes outside any member's content (modification times in the local and central
    headers) are checked too: the archive must be the canonical one for its members."""
    m = members_of(good)
    regions = bundle_check._archive_regions(m)
    local, central = regions[:len(m)], regions[len(m):2 * len(m)]
    for (lo, _, name), (cd, _, same) in list(zip(local, central, strict=True))[::3]:
        assert name == same
        for at in (lo + 10, cd + 12):  # the modification time in the local / central header
            result = B.check_bundle(_flip(good, at))
            assert not result.ok and result.failed_members == {name}, result.reasons
    result = B.check_bundle(_flip(good, len(good) - 22 + 8))  # end record: entry count
    assert not result.ok


def test_any_byte_of_the_archive_changed_anywhere_fails_without_raising(good: bytes):
    """Sampled over the whole file (headers, contents, central directory, end record)."""
    rng = random.Random(6)
    for at in sorted(rng.sample(range(len(good)), 120)):
        result = B.check_bundle(_flip(good, at))
        assert not result.ok and result.findings, f"byte {at} flipped went unnoticed"


def test_every_changed_byte_exits_1_naming_the_member_through_the_cli(
    good: bytes, tmp_path: Path, run,
):
    m = members_of(good)
    name = next(n for n in m if n.startswith("events/") and "family" in n)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(B.write_zip({**m, name: m[name].replace(b"asb_incident", b"asb_incidenT")
                                 if b"asb_incident" in m[name] else _flip(m[name], 5)}))
    code, out, err = run("verify-bundle", str(bad))
    assert code == 1
    assert f"claimledger: {name}: " in err and "INVALID" in out


# --- keys ------------------------------------------------------------------------------------
def test_a_bundle_checked_against_another_key_fails(bundle_file: Path, tmp_path: Path, run):
    signing.generate_keypair(tmp_path / "other")
    other = tmp_path / "other" / signing.PUBLIC_NAME
    code, _, err = run("verify-bundle", str(bundle_file), "--pubkey", str(other))
    assert code == 1
    assert "claimledger: checkpoint.json: signed with key" in err
    assert "not the trusted key" in err


def test_a_checkpoint_re_signed_with_another_key_fails(good: bytes, county: County,
                                                        tmp_path: Path):
    m = members_of(good)
    cp = loads(m[B.CHECKPOINT])["payload"]
    ledger_id = json.loads(next(b for n, b in m.items() if n.startswith("events/")
                                and b'"Ledger.Initialised"' in b))["payload"]["ledger_id"]
    forger = signing.generate_keypair(tmp_path / "forger")
    forger_id = signing.key_id(signing.public_raw(forger))

    def signed(key_id: str) -> str:
        st = checkpoint_statement(ledger_id, cp["tree_size"], cp["root"], cp["prev_checkpoint"],
                                  cp["signed_at"], key_id)
        return signing.sign(forger, canonical(st)).hex()

    # the same key id, a forger's signature
    forged = rebuild({**m, B.CHECKPOINT: reseal(m[B.CHECKPOINT], signature=signed(cp["key_id"]))})
    result = B.check_bundle(forged)
    assert not result.ok and result.failed_members == {B.CHECKPOINT}
    assert "signature does not verify" in result.reasons[0]

    # the forger's key id and public key added: not a key the ledger's own events register
    forged = rebuild({**m, B.CHECKPOINT: reseal(m[B.CHECKPOINT], key_id=forger_id,
                                                signature=signed(forger_id)),
                      f"keys/{forger_id}.pub": signing.public_raw(forger).hex().encode() + b"\n"})
    result = B.check_bundle(forged)
    assert not result.ok and B.CHECKPOINT in result.failed_members
    assert any("not the ledger's registered active key" in r for r in result.reasons)
    assert f"keys/{forger_id}.pub" in result.failed_members

    # and the genuine bundle with the council's published key passes
    pub = signing.load_public_hex((county.keys / signing.PUBLIC_NAME).read_text(), "pub")
    ok = B.check_bundle(good, trusted_key=pub)
    assert ok.ok and ok.key_source == "--pubkey"


# --- completeness and the replay ----------------------------------------------------------------
def test_leaving_out_an_inconvenient_record_fails(good: bytes):
    """The family's events are its stream from genesis to the claim: a gap is a finding."""
    m = members_of(good)
    incident = next(n for n, b in sorted(m.items())
                    if n.startswith("events/") and b'"Family.IncidentRecorded"' in b)
    del m[incident], m[incident.replace("events/", "proofs/")]
    result = B.check_bundle(rebuild(m))
    assert not result.ok
    assert any("jumps to version" in r and "not all in the bundle" in r for r in result.reasons)


def test_a_decision_that_does_not_follow_from_its_evidence_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    """Software that recorded a reason the evidence does not give: the bundle is genuine and
    signed, but re-deriving the decision from it shows the difference."""
    from claimledger.evaluate import replay
    from claimledger.evaluate.decide import Decision

    c = County(tmp_path, run_inprocess)
    c.init("Worcestershire")
    c.ingest(family("W-9", 5), now="2016-03-20T10:00:00Z")
    real = replay.decide

    def embellished(*a: Any, **k: Any) -> Decision:
        d = real(*a, **k)
        return Decision(**{**{f: getattr(d, f) for f in d.__dataclass_fields__},
                           "reasons": (*d.reasons, "employment verified by DWP")})

    monkeypatch.setattr(replay, "decide", embellished)  # the software that submits
    c.cli("claim", "submit", "W-9", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    monkeypatch.undo()
    out = tmp_path / "W-9.zip"
    c.cli("bundle", "W-9/progress", "--out", str(out))
    pub = signing.load_public_hex((c.keys / signing.PUBLIC_NAME).read_text(), "pub")
    result = B.check_bundle(out.read_bytes(), trusted_key=pub)
    assert not result.ok and result.failed_members == {B.DECISION}
    assert "re-deriving it from the bundled events and policy gives a different reasons" in \
        result.reasons[0]


def test_a_family_record_after_the_claim_but_under_the_same_checkpoint_is_bundled_as_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    """Another writer appended a record between the claim and its seal: the bundle carries it
    with its proof, showing it came after the claim, and the replay leaves it out."""
    from claimledger import application

    c = County(tmp_path, run_inprocess)
    c.init("Worcestershire")
    c.ingest(family("W-3", 5), now="2016-03-20T10:00:00Z")
    monkeypatch.setattr(application.LedgerApp, "seal",
                        lambda self: {"sealed": False, "tree_size": 0})
    c.cli("claim", "submit", "W-3", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    monkeypatch.undo()
    late = [t for t in terms("W-3-C1", 40, (2015,)) if t["term_start"] == "2016-01-04"]
    c.ingest({"attendance": late}, now="2016-04-02T09:00:00Z")
    c.cli("seal", now="2016-04-02T09:00:01Z")
    out = tmp_path / "W-3.zip"
    _, made, _ = c.cli("bundle", "W-3/progress", "--out", str(out), "--json")
    assert made["events"] == made["family_events"] + 4  # claim, policy, key, next record
    result = B.check_bundle(out.read_bytes())
    assert result.ok, result.reasons
    assert result.decision is not None and result.decision["claimable"]

    m = members_of(out.read_bytes())
    nxt = max(n for n in m if n.startswith("events/") and "family" in n)
    forged = rebuild({**m, nxt: reseal(m[nxt], sessions_absent=0)})
    assert nxt in B.check_bundle(forged).failed_members


def test_an_erased_family_cannot_be_bundled(tmp_path: Path):
    c = County(tmp_path, run_inprocess)
    c.init("Worcestershire")
    c.ingest(family("W-4", 5), now="2016-03-20T10:00:00Z")
    c.cli("claim", "submit", "W-4", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("erase", "W-4", "--reason", "subject access: erasure", now="2016-05-01T00:00:00Z",
          actor="admin1")
    code, _, err = c.cli("bundle", "W-4/progress", "--out", str(tmp_path / "x.zip"), ok=False)
    assert code == 1 and "erased" in err


def test_not_a_zip_and_an_unknown_claim(tmp_path: Path, county: County, run):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    code, _, err = run("verify-bundle", str(junk))
    assert code == 1 and "(archive): not a zip archive" in err
    code, _, err = county.cli("bundle", "W-404/progress", "--out", str(tmp_path / "x.zip"),
                              ok=False)
    assert code == 2 and "no claim 'W-404/progress'" in err


def test_bundles_on_every_backend(tmp_path: Path, db_url: str, run):
    """The same bundle from a SQLite or a PostgreSQL ledger verifies."""
    c = County(tmp_path, run, db=db_url)
    c.init("Worcestershire")
    c.ingest(family("W-5", 5), now="2016-03-20T10:00:00Z")
    c.cli("claim", "submit", "W-5", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    out = tmp_path / "W-5.zip"
    c.cli("bundle", "W-5/progress", "--out", str(out))
    assert B.check_bundle(out.read_bytes()).ok


def test_a_bundle_signed_after_a_key_rotation_is_trusted_through_the_endorsement(
    tmp_path: Path,
):
    """The council published its first key; later it rotated. A claim signed under the new key
    verifies against the published key through the rotation the old key endorsed, and a claim
    signed before the rotation does not verify against the new key alone."""
    c = County(tmp_path, run_inprocess)
    c.init("Worcestershire")
    published = (c.keys / signing.PUBLIC_NAME).read_bytes()
    c.ingest(family("R-1", 5), now="2016-03-20T10:00:00Z")
    c.ingest(family("R-2", 5), now="2016-03-20T10:01:00Z")
    c.cli("claim", "submit", "R-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("keys", "rotate", "--reason", "annual", now="2016-04-03T09:00:00Z", actor="admin1")
    c.cli("claim", "submit", "R-2", "--on", "2016-03-31", now="2016-04-04T09:00:00Z")
    new = (c.keys / signing.PUBLIC_NAME).read_bytes()
    assert new != published
    old_key, new_key = (signing.load_public_hex(k.decode(), "k") for k in (published, new))

    for claim in ("R-1/progress", "R-2/progress"):
        c.cli("bundle", claim, "--out", str(tmp_path / f"{claim[:3]}.zip"))
    after = (tmp_path / "R-2.zip").read_bytes()
    r = B.check_bundle(after, trusted_key=old_key)
    assert r.ok, r.reasons
    assert any("through 1 key rotation(s)" in n for n in r.notes)
    assert B.check_bundle(after, trusted_key=new_key).ok
    before = (tmp_path / "R-1.zip").read_bytes()
    assert B.check_bundle(before, trusted_key=old_key).ok
    r = B.check_bundle(before, trusted_key=new_key)
    assert not r.ok and "nor a key it endorsed" in r.reasons[0]
