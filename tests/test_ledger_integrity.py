"""The ledger proves its own integrity, on SQLite and on PostgreSQL.

Story: an authority initialises its ledger, registers three families, seals twice and
records one more incident. Then someone with write access to the database tampers with
it in each way an auditor worries about; `verify` must name the first failing event and
the kind of failure, and exit 1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from claimledger.application import Settings, open_app
from claimledger.domain.family import Family
from claimledger.errors import ConflictError
from claimledger.ledger import signing
from claimledger.ledger.canonical import canonical, loads
from claimledger.ledger.envelope import stream_uuid
from claimledger.ledger.keychain import checkpoint_statement
from ledger_story import add_family, build, reseal, signed_by_another_key


def verify_cli(run: Callable[..., tuple[int, str, str]], s: Settings) -> tuple[int, dict]:
    code, out, _ = run("--db", s.db, "--key-dir", str(s.key_dir), "verify", "--json")
    return code, json.loads(out)


def test_intact_ledger_verifies(settings_for, run):
    build(settings_for)
    code, report = verify_cli(run, settings_for())
    assert code == 0
    assert report["ok"] and report["checkpoints"] == 2
    assert report["events"] == 16 and report["unsealed_events"] == 1
    assert report["failure"] is None


def _position_of(raw, stream: str, version: int) -> int:
    for pos, _, _, _, state in raw.rows():
        env = loads(state)["envelope"]
        if env["stream"] == stream and env["version"] == version:
            return pos
    raise AssertionError(f"{stream}#{version} not found")


def test_one_payload_byte_edited(settings_for, run, raw):
    """A family's payload is sealed (encrypted): one changed byte fails authentication."""
    build(settings_for)
    pos = _position_of(raw, "family/F-2", 2)
    state = next(r[4] for r in raw.rows() if r[0] == pos)
    rec = loads(state)
    sealed = rec["sealed"]
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    raw.set_state(pos, state.replace(sealed.encode(), flipped.encode()))
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["event"], f["kind"], f["position"]) == ("family/F-2#2", "edited", pos)
    assert "sealed payload fails authentication" in f["detail"]


def test_one_clear_payload_byte_edited(settings_for, run, raw):
    """The ledger's own events are in the clear: a changed byte breaks the payload digest."""
    build(settings_for)
    pos = _position_of(raw, "ledger/main", 1)
    state = next(r[4] for r in raw.rows() if r[0] == pos)
    raw.set_state(pos, state.replace(b'"authority":"Worcestershire"',
                                     b'"authority":"Worcestershirf"'))
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["event"], f["kind"], f["position"]) == ("ledger/main#1", "edited", pos)
    assert "payload digest mismatch" in f["detail"]


def test_event_deleted(settings_for, run, raw):
    build(settings_for)
    pos = _position_of(raw, "family/F-1", 2)
    raw.delete(pos)
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["event"], f["kind"]) == ("family/F-1#3", "deleted")
    assert "jumps from version 1 to 3" in f["detail"]


def test_forged_event_inserted(settings_for, run, raw):
    marks = build(settings_for)
    # Make room at position 5 and slip in a perfectly chained new family stream.
    top = raw.rows()[-1][0]
    for p in range(top, 4, -1):
        raw.move(p, p + 1)
    raw.forge(5, "family/F-FORGED", 1, "Family.Registered", {"family_ref": "F-FORGED"},
              recorded_at="2016-01-01T09:00:00.000000Z", salt=b"\x01" * 16)
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert f["kind"] == "inserted"
    assert f["position"] == marks["cp1"] + 1 and f["event"] == "ledger/main#2"


def test_two_events_swapped(settings_for, run, raw):
    build(settings_for)
    a, b = _position_of(raw, "family/F-3", 2), _position_of(raw, "family/F-3", 3)
    rows = {r[0]: r for r in raw.rows()}
    raw.set_state(a, rows[b][4])
    raw.set_state(b, rows[a][4])
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["position"], f["kind"]) == (a, "reordered")
    assert f["event"] == "family/F-3#3"


def test_events_of_two_streams_swapped_break_the_merkle_root(settings_for, run, raw):
    marks = build(settings_for)
    a, b = _position_of(raw, "family/F-1", 4), _position_of(raw, "family/F-2", 1)
    rows = {r[0]: r for r in raw.rows()}
    tmp = 10_000
    raw.move(a, tmp)
    raw.move(b, a)
    raw.move(tmp, b)
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["position"], f["kind"]) == (marks["cp1"], "reordered")
    assert "Merkle root" in f["detail"]
    assert rows  # the swap moved whole rows, each still self-consistent


def test_tail_truncated_after_a_checkpoint(settings_for, run, raw):
    marks = build(settings_for)
    raw.delete_from(marks["cp2"])  # the last checkpoint and everything after it
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert f["kind"] == "truncated"
    assert "witnessed checkpoint of tree size" in f["detail"]


def test_events_under_a_checkpoint_truncated(settings_for, run, raw):
    marks = build(settings_for)
    for p in range(marks["cp2"] - 4, marks["cp2"]):  # F-3's four events, signed by cp2
        raw.delete(p)
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["position"], f["kind"]) == (marks["cp2"], "truncated")
    assert "covers 14 events but only 10 precede it" in f["detail"]


def test_checkpoint_signature_replaced(settings_for, run, raw):
    marks = build(settings_for)
    state = next(r[4] for r in raw.rows() if r[0] == marks["cp1"])
    raw.set_state(marks["cp1"], reseal(state, signature="ab" * 64))
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["position"], f["kind"]) == (marks["cp1"], "bad signature")
    assert f["event"] == "ledger/main#2"


def test_checkpoint_signed_with_another_key(settings_for, run, raw):
    marks = build(settings_for)
    state = next(r[4] for r in raw.rows() if r[0] == marks["cp1"])
    ledger_id = loads(raw.rows()[0][4])["payload"]["ledger_id"]
    raw.set_state(marks["cp1"], signed_by_another_key(state, ledger_id))
    code, report = verify_cli(run, settings_for())
    assert code == 1
    f = report["failure"]
    assert (f["position"], f["kind"]) == (marks["cp1"], "bad signature")
    assert "not a key of this ledger" in f["detail"]


def test_naive_edit_of_a_signature_is_caught_as_an_edit(settings_for, run, raw):
    marks = build(settings_for)
    state = next(r[4] for r in raw.rows() if r[0] == marks["cp1"])
    p = loads(state)["payload"]["signature"]
    raw.set_state(marks["cp1"], state.replace(p.encode(), ("0" * len(p)).encode()))
    code, report = verify_cli(run, settings_for())
    assert code == 1 and report["failure"]["kind"] == "edited"


def test_concurrent_appends_to_one_family_conflict_and_retry(settings_for):
    build(settings_for)
    s = settings_for(now="2016-04-01T09:00:00Z")
    first, second = open_app(s), open_app(s)
    fam_a, fam_b = first.find(Family, "F-2"), second.find(Family, "F-2")
    assert fam_a is not None and fam_b is not None and fam_a.version == fam_b.version
    for app, fam, day in ((first, fam_a, "2016-03-01"), (second, fam_b, "2016-03-02")):
        fam.record(Family.IncidentRecorded, app.context(), file_sha256="1" * 64, row=2,
                   row_key=day, member_ref="F-2-C0", occurred_on=day, kind="police_callout",
                   serious=False, source="police")
    first.commit(fam_a)
    with pytest.raises(ConflictError, match="retry"):
        second.commit(fam_b)
    # The loser reloads and retries; the chain never forks.
    retry = open_app(s)
    fam = retry.find(Family, "F-2")
    assert fam is not None and fam.version == fam_a.version
    fam.record(Family.IncidentRecorded, retry.context(), file_sha256="1" * 64, row=2,
               row_key="2016-03-02", member_ref="F-2-C0", occurred_on="2016-03-02",
               kind="police_callout", serious=False, source="police")
    retry.commit(fam)
    assert retry.verify().ok


def test_bad_database_url_exits_2(run, tmp_path):
    for url in ("nosuch://x", "sqlite:///" + str(tmp_path / "missing-dir" / "l.sqlite"),
                "postgresql://nobody@127.0.0.1:1/nodb"):
        code, _, err = run("--db", url, "--key-dir", str(tmp_path / "k"), "init")
        assert code == 2, url
        assert err.count("\n") == 1 and "claimledger:" in err
    assert not (tmp_path / "k" / "signing.key").exists()


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=30))
def test_a_plain_sqlite_url_is_read_as_sqlalchemy_reads_it(path):
    """Plain SQLite file URLs are read without importing SQLAlchemy (a fifth of a second of
    every command's start-up); what is read must be SQLAlchemy's own reading, and anything
    it would read otherwise (a query, an escape) goes to SQLAlchemy."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from claimledger.store import sqlite_file

    for url in ("sqlite:///" + path, "sqlite:////" + path, "sqlite://" + path, path):
        fast = sqlite_file(url)
        if fast is None:
            continue
        try:
            u = make_url(url)
        except ArgumentError:
            raise AssertionError(f"{url!r}: SQLAlchemy refuses what was read as {fast!r}") \
                from None
        assert (u.get_backend_name(), u.database or "") == ("sqlite", fast), url


def test_missing_key_exits_2_and_writes_nothing(settings_for, run, raw, tmp_path):
    build(settings_for)
    before = raw.rows()
    s = settings_for(now="2016-05-01T00:00:00Z")
    code, _, err = run("--db", s.db, "--key-dir", str(tmp_path / "nokeys"), "--now",
                       "2016-05-01T00:00:00Z", "seal")
    assert code == 2 and "signing key not found" in err
    assert raw.rows() == before


def test_clock_earlier_than_the_ledger_exits_2_and_writes_nothing(settings_for, run, raw):
    build(settings_for)
    before = raw.rows()
    s = settings_for()
    code, _, err = run("--db", s.db, "--key-dir", str(s.key_dir), "--now",
                       "2015-12-31T23:59:59Z", "seal")
    assert code == 2
    assert "earlier than the ledger's last recorded_at 2016-03-01T09:00:00.000000Z" in err
    assert raw.rows() == before


def test_init_refuses_to_overwrite_a_key(settings_for, run, tmp_path):
    s = settings_for()
    assert run("--db", s.db, "--key-dir", str(s.key_dir), "init")[0] == 0
    key = s.key_dir / "signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    other = f"sqlite:///{tmp_path}/other.sqlite"
    code, _, err = run("--db", other, "--key-dir", str(s.key_dir), "init")
    assert code == 2 and "refusing to overwrite" in err


def test_concurrent_writer_families_are_independent(settings_for):
    """Appends to different families never conflict."""
    build(settings_for)
    s = settings_for(now="2016-04-01T09:00:00Z")
    a, b = open_app(s), open_app(s)
    add_family(a, "F-10")
    add_family(b, "F-11")
    assert a.verify().ok
    assert uuid.UUID(str(stream_uuid("family/F-10")))


def test_key_rotation_keeps_every_old_checkpoint_verifying(settings_for, run, raw):
    """The authority rotates its signing key; checkpoints before and after all verify."""
    build(settings_for)
    s = settings_for(now="2016-04-01T00:00:00Z")
    old_pub = (s.key_dir / "signing.pub").read_text()
    code, out, err = run("--db", s.db, "--key-dir", str(s.key_dir), "--now",
                         "2016-04-01T00:00:00Z", "keys", "rotate", "--reason", "annual", "--json")
    assert code == 0, err
    rotated = json.loads(out)
    assert (s.key_dir / "signing.pub").read_text() != old_pub
    assert (s.key_dir / f"signing-{rotated['previous_key_id'][:16]}.key").exists()
    app = open_app(settings_for(now="2016-04-02T00:00:00Z"))
    add_family(app, "F-20")
    cp = app.seal()
    assert cp["key_id"] == rotated["key_id"]
    code, report = verify_cli(run, settings_for())
    assert code == 0 and report["checkpoints"] == 3

    # A checkpoint signed afterwards with the retired key is refused.
    state = next(r[4] for r in raw.rows() if r[0] == cp["checkpoint_position"])
    p = loads(state)["payload"]
    old = signing.load_private(s.key_dir / f"signing-{rotated['previous_key_id'][:16]}.key")
    ledger_id = loads(raw.rows()[0][4])["payload"]["ledger_id"]
    stmt = checkpoint_statement(ledger_id, p["tree_size"], p["root"], p["prev_checkpoint"],
                                p["signed_at"], rotated["previous_key_id"])
    raw.set_state(cp["checkpoint_position"], reseal(
        state, key_id=rotated["previous_key_id"], signature=old.sign(canonical(stmt)).hex()))
    code, report = verify_cli(run, settings_for())
    assert code == 1 and report["failure"]["kind"] == "bad signature"
    assert "retired key" in report["failure"]["detail"]


def test_a_rotation_not_endorsed_by_the_old_key_is_refused(settings_for, run, raw):
    build(settings_for)
    s = settings_for(now="2016-04-01T00:00:00Z")
    assert run("--db", s.db, "--key-dir", str(s.key_dir), "--now", "2016-04-01T00:00:00Z",
               "keys", "rotate")[0] == 0
    pos = raw.rows()[-1][0]
    state = raw.rows()[-1][4]
    assert loads(state)["envelope"]["type"] == "Ledger.KeyRotated"
    mallory = Ed25519PrivateKey.generate()
    pub = signing.public_raw(mallory)
    raw.set_state(pos, reseal(state, public_key=pub.hex(), key_id=signing.key_id(pub)))
    code, report = verify_cli(run, settings_for())
    assert code == 1 and report["failure"]["kind"] == "bad signature"
    assert "not endorsed by the previous key" in report["failure"]["detail"]
