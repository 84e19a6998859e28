"""verify in ranges and on several processes gives the very result of one pass.

Story: the ledger story (two checkpoints, three families) is tampered with in each way the
integrity tests use. `verify` over the whole ledger in one pass is the reference; `verify` in
one process in ranges of a few events, and on two processes in such ranges, must agree with
it exactly: counts, erased families and the failure (position, event, kind, detail). Ranges of
three to seven events split streams and checkpoints across range boundaries, and for each
tamper one range size makes the tampered event the first of its range.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from claimledger.application import Settings, open_app
from claimledger.ledger import merkle, signing
from claimledger.ledger import verify as verify_module
from claimledger.ledger.canonical import loads
from claimledger.ledger.verify import Combiner, RangeCheck, VerifyResult, _Tree
from claimledger.parallel_verify import jobs_for
from claimledger.protection import erase
from ledger_story import build, reseal, signed_by_another_key

RANGE_SIZES = (3, 5, 7)


def every_way(s: Settings, monkeypatch: pytest.MonkeyPatch, at: int | None = None
              ) -> tuple[VerifyResult, list[tuple[str, VerifyResult]]]:
    """The one-pass result (the whole story is one range), and (how, result) in ranges of a
    few events with one and with two processes; ``at``: a position to begin a range with."""
    assert _verified(s, lambda app: app.recorder.max_notification_id()) < verify_module.CHUNK
    reference = _verified(s, lambda app: app.verify(jobs=1))
    sizes = set(RANGE_SIZES)
    if at is not None and at > 2:
        sizes.add(at - 1)  # ranges 1..at-1, at..: the tampered event begins the second
    others = []
    for size in sorted(sizes):
        monkeypatch.setattr(verify_module, "CHUNK", size)
        for jobs in (1, 2):
            others.append((f"jobs={jobs}, ranges of {size}",
                           _verified(s, lambda app, j=jobs: app.verify(jobs=j))))
    monkeypatch.undo()
    return reference, others


def _verified(s: Settings, use: Callable[[Any], Any]) -> Any:
    """``use`` on an application closed straight after: left to the garbage collector, a
    PostgreSQL one could be collected on one of its own pool's threads, whose close() then
    tries to join that very thread (a PytestUnraisableExceptionWarning, now and then)."""
    app = open_app(s)
    try:
        return use(app)
    finally:
        app.close()


def assert_all_alike(reference: VerifyResult, others: list[tuple[str, VerifyResult]]) -> None:
    for how, result in others:
        assert result == reference, how


def _row(raw, stream: str, version: int) -> tuple[int, bytes]:
    for pos, _, _, _, state in raw.rows():
        env = loads(state)["envelope"]
        if env["stream"] == stream and env["version"] == version:
            return pos, state
    raise AssertionError(f"{stream}#{version} not found")


def _state(raw, pos: int) -> bytes:
    return next(r[4] for r in raw.rows() if r[0] == pos)


# Each tamper changes the story's database and returns (a position to begin a range with,
# the failure kind, the failing event or None).
Tamper = Callable[[Any, dict[str, int]], tuple[int | None, str, str | None]]


def sealed_payload_edited(raw, marks):
    pos, state = _row(raw, "family/F-2", 2)
    sealed = loads(state)["sealed"]
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    raw.set_state(pos, state.replace(sealed.encode(), flipped.encode()))
    return pos, "edited", "family/F-2#2"


def clear_payload_edited(raw, marks):
    pos, state = _row(raw, "ledger/main", 1)
    raw.set_state(pos, state.replace(b'"Worcestershire"', b'"Worcestershirf"'))
    return pos, "edited", "ledger/main#1"


def event_deleted(raw, marks):
    pos, _ = _row(raw, "family/F-1", 2)
    after, _ = _row(raw, "family/F-1", 3)
    raw.delete(pos)
    return after, "deleted", "family/F-1#3"


def forged_event_inserted(raw, marks):
    top = raw.rows()[-1][0]
    for p in range(top, 4, -1):
        raw.move(p, p + 1)
    raw.forge(5, "family/F-FORGED", 1, "Family.Registered", {"family_ref": "F-FORGED"},
              recorded_at="2016-01-01T09:00:00.000000Z", salt=b"\x01" * 16)
    return 5, "inserted", "ledger/main#2"


def two_events_of_a_stream_swapped(raw, marks):
    (a, sa), (b, sb) = _row(raw, "family/F-3", 2), _row(raw, "family/F-3", 3)
    raw.set_state(a, sb)
    raw.set_state(b, sa)
    return a, "reordered", "family/F-3#3"


def events_of_two_streams_swapped(raw, marks):
    (a, _), (b, _) = _row(raw, "family/F-1", 4), _row(raw, "family/F-2", 1)
    raw.move(a, 10_000)
    raw.move(b, a)
    raw.move(10_000, b)
    return marks["cp1"], "reordered", "ledger/main#2"


def tail_truncated(raw, marks):
    raw.delete_from(marks["cp2"])
    return None, "truncated", None


def events_under_a_checkpoint_truncated(raw, marks):
    for p in range(marks["cp2"] - 4, marks["cp2"]):
        raw.delete(p)
    return marks["cp2"], "truncated", "ledger/main#3"


def checkpoint_signature_replaced(raw, marks):
    raw.set_state(marks["cp1"], reseal(_state(raw, marks["cp1"]), signature="ab" * 64))
    return marks["cp1"], "bad signature", "ledger/main#2"


def checkpoint_signed_with_another_key(raw, marks):
    ledger_id = loads(raw.rows()[0][4])["payload"]["ledger_id"]
    raw.set_state(marks["cp1"], signed_by_another_key(_state(raw, marks["cp1"]), ledger_id))
    return marks["cp1"], "bad signature", "ledger/main#2"


def signature_edited_naively(raw, marks):
    state = _state(raw, marks["cp1"])
    sig = loads(state)["payload"]["signature"]
    raw.set_state(marks["cp1"], state.replace(sig.encode(), ("0" * len(sig)).encode()))
    return marks["cp1"], "edited", "ledger/main#2"


def an_early_deletion_and_a_late_edit(raw, marks):
    """Two tampers: the one earlier in the ledger is reported, whichever range finds what."""
    late, state = _row(raw, "family/F-1", 5)
    raw.set_state(late, state.replace(b'"sealed":"', b'"sealed":"AAAA'))
    pos, _ = _row(raw, "family/F-2", 3)
    after, _ = _row(raw, "family/F-2", 4)
    raw.delete(pos)
    return after, "deleted", "family/F-2#4"


def a_forged_event_late_and_out_of_order(raw, marks):
    """A forged event whose version skips one and whose time goes back: the version gap is
    found first, though in ranges only the time can be checked where the event lies."""
    top = raw.rows()[-1][0]
    raw.forge(top + 1, "family/F-3", 6, "Family.IndicatorRecorded", {"member_ref": "F-3-C0"},
              recorded_at="2016-01-15T09:00:00.000000Z", salt=b"\x02" * 16)
    return top, "deleted", "family/F-3#6"


TAMPERS: list[Tamper] = [
    sealed_payload_edited, clear_payload_edited, event_deleted, forged_event_inserted,
    two_events_of_a_stream_swapped, events_of_two_streams_swapped, tail_truncated,
    events_under_a_checkpoint_truncated, checkpoint_signature_replaced,
    checkpoint_signed_with_another_key, signature_edited_naively,
    an_early_deletion_and_a_late_edit, a_forged_event_late_and_out_of_order,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.__name__)
def test_a_tampered_ledger_fails_alike_in_ranges_and_processes(
    tamper: Tamper, settings_for, raw, monkeypatch,
):
    marks = build(settings_for)
    at, kind, event = tamper(raw, marks)
    reference, others = every_way(settings_for(), monkeypatch, at)
    assert reference.failure is not None and reference.failure.kind == kind
    if event is not None:
        assert reference.failure.event == event
    assert_all_alike(reference, others)


def test_an_intact_ledger_counts_alike_in_ranges_and_processes(settings_for, monkeypatch):
    build(settings_for)
    reference, others = every_way(settings_for(), monkeypatch)
    assert reference.ok and reference.to_dict() == {
        "ok": True, "events": 16, "streams": 4, "checkpoints": 2, "last_checkpoint_size": 14,
        "unsealed_events": 1, "unchecked_payloads": 0, "erased": [], "tiles": 14,
        "failure": None,
    }
    assert_all_alike(reference, others)


def test_without_the_master_key_sealed_payloads_are_counted_alike(
    settings_for, monkeypatch, tmp_path: Path,
):
    build(settings_for)
    monkeypatch.setenv("CLAIMLEDGER_MASTER_KEY_FILE", str(tmp_path / "no-such.key"))
    reference, others = every_way(settings_for(), monkeypatch)
    assert reference.ok and reference.unchecked_payloads == 13  # every family event
    assert_all_alike(reference, others)


def test_an_erased_family_is_listed_alike(settings_for, monkeypatch):
    build(settings_for)
    erase(open_app(settings_for(now="2016-04-01T00:00:00Z")), "F-2", "retention period ended")
    reference, others = every_way(settings_for(), monkeypatch)
    assert reference.ok and reference.erased_streams == ["family/F-2"]
    assert_all_alike(reference, others)


def test_an_erased_family_before_a_failure_is_listed_alike(settings_for, raw, monkeypatch):
    build(settings_for)
    erase(open_app(settings_for(now="2016-04-01T00:00:00Z")), "F-1", "retention period ended")
    pos, _ = _row(raw, "family/F-3", 2)
    raw.delete(pos)
    reference, others = every_way(settings_for(), monkeypatch, pos + 1)
    assert reference.failure is not None and reference.failure.kind == "deleted"
    assert reference.erased_streams == ["family/F-1"]
    assert_all_alike(reference, others)


def test_an_erased_family_whose_first_event_fails_is_listed_alike(
    settings_for, raw, monkeypatch,
):
    build(settings_for)
    erase(open_app(settings_for(now="2016-04-01T00:00:00Z")), "F-2", "retention period ended")
    pos, _ = _row(raw, "family/F-2", 1)
    after, _ = _row(raw, "family/F-2", 2)
    raw.delete(pos)
    reference, others = every_way(settings_for(), monkeypatch, after)
    assert reference.failure is not None
    assert (reference.failure.event, reference.failure.kind) == ("family/F-2#2", "deleted")
    assert reference.erased_streams == ["family/F-2"]  # opened (not) before the link failed
    assert_all_alike(reference, others)


def test_a_key_rotation_not_endorsed_fails_alike(settings_for, run, raw, monkeypatch):
    build(settings_for)
    s = settings_for(now="2016-04-01T00:00:00Z")
    assert run("--db", s.db, "--key-dir", str(s.key_dir), "--now", "2016-04-01T00:00:00Z",
               "keys", "rotate")[0] == 0
    pos, state = raw.rows()[-1][0], raw.rows()[-1][4]
    mallory = signing.public_raw(Ed25519PrivateKey.generate())
    raw.set_state(pos, reseal(state, public_key=mallory.hex(), key_id=signing.key_id(mallory)))
    reference, others = every_way(settings_for(), monkeypatch, pos)
    assert reference.failure is not None and reference.failure.kind == "bad signature"
    assert "not endorsed by the previous key" in reference.failure.detail
    assert_all_alike(reference, others)


def test_the_cli_reports_the_same_with_jobs(settings_for, run, raw, monkeypatch):
    marks = build(settings_for)
    events_under_a_checkpoint_truncated(raw, marks)
    monkeypatch.setattr(verify_module, "CHUNK", 4)
    s = settings_for()
    reports = []
    for jobs in ("1", "2"):
        code, out, _ = run("--db", s.db, "--key-dir", str(s.key_dir), "verify", "--jobs", jobs,
                           "--json")
        assert code == 1
        reports.append(json.loads(out))
    assert reports[0] == reports[1]
    assert reports[0]["failure"]["kind"] == "truncated"


def test_automatic_jobs_use_every_cpu_only_for_a_ledger_of_several_ranges(
    settings_for, monkeypatch,
):
    build(settings_for)
    app = open_app(settings_for())
    assert jobs_for(app) == 1
    monkeypatch.setattr(verify_module, "CHUNK", 5)
    assert jobs_for(app) == (os.cpu_count() or 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.lists(st.integers(1, 200), max_size=6), st.data())
def test_the_merkle_tree_grows_by_blocks_exactly_as_leaf_by_leaf(before, cuts, data):
    """verify's fold hashes aligned blocks of leaves a list at a time: whatever the tree's
    size when a range comes and wherever the range is cut (ledger events cut it), the
    frontier and the window's snapshots must be exactly merkle.Frontier's, leaf by leaf,
    and the tree at every size in the window must have Frontier's root."""
    total = before + sum(cuts)
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(total)]
    c = Combiner()
    c._grow(RangeCheck(leaves=b"".join(leaves[:before])), 0, before)
    rc = RangeCheck(leaves=b"".join(leaves[before:]))
    a = 0
    for n in cuts:
        c._grow(rc, a, a + n)
        a += n
    reference = merkle.Frontier()
    roots = []
    for leaf in leaves:
        reference.append(leaf)
        roots.append(reference.root())
    assert c.size == total
    assert c.tree.stack == [h for _, h in reference.stack or []]
    for size, stack in c.tree.snapshots:
        assert size % verify_module.SNAPSHOT_EVERY == 0
        assert _Tree.frontier(size, stack).root() == (roots[size - 1] if size else
                                                      merkle.EMPTY_ROOT)
    newest = c.tree.snapshots[-1][0]
    assert newest == total - total % verify_module.SNAPSHOT_EVERY
    size = data.draw(st.integers(max(newest - 2 * verify_module.SNAPSHOT_EVERY, 1), total)
                     ) if total else 0
    if size:
        assert c.tree.frontier_at(size, total).root() == roots[size - 1]
