"""The Merkle tree stored as tiles gives the proofs the leaves give, and is never trusted.

Pure properties first (tiles of several heights, so small trees have many levels and
partial tiles at every level), then the stored tiles of real ledgers on both backends: a
tampered tile is a verify finding and never reaches a bundle; a ledger written before tiles
were stored gets them from the next seal and then verifies the same.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from claimledger.audit import bundle as B
from claimledger.ledger import merkle
from claimledger.ledger.tiles import TileBuilder, TileCheck, TileReader
from conftest import RawDB
from county import County
from test_bundle import family


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def grow(leaves: list[bytes], cuts: list[int], height: int) -> dict:
    """Tiles as a writer stores them: appended in pieces (each piece a seal), the right
    edge reloaded from the store between pieces."""
    stored: dict = {}
    done = 0
    for cut in [*sorted(cuts), len(leaves)]:
        edge = [max((t for k, t in stored.items() if k[0] == lv), key=lambda t: t.index)
                for lv in sorted({k[0] for k in stored})]
        b = TileBuilder(edge, height=height)
        assert b.size == done
        piece = leaves[done:cut]
        b.append(b"".join(piece), list(range(done + 1, cut + 1)))
        for t in b.drain():
            stored[(t.level, t.index)] = t
        assert b.root() == merkle.root_of_leaf_hashes(leaves[:cut])
        done = max(done, cut)
    return stored


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), height=st.sampled_from([1, 2, 3, 8]),
       cuts=st.lists(st.integers(0, 300), max_size=4), seed=st.integers(0, 1000))
def test_proofs_from_tiles_equal_proofs_from_the_leaves(n, height, cuts, seed):
    leaves = leaves_of(n)
    stored = grow(leaves, [c for c in cuts if c <= n], height)
    rng = random.Random(seed)
    for size in {n, rng.randint(1, n)}:
        reader = TileReader(lambda lv, ix: stored.get((lv, ix)), size, height=height)
        assert reader.root() == merkle.root_of_leaf_hashes(leaves[:size])
        for i in {0, size - 1, rng.randrange(size)}:
            assert reader.inclusion(i) == merkle.inclusion_proof(i, leaves[:size]), (size, i)
        m = rng.randint(1, size)
        assert reader.consistency(m) == merkle.consistency_proof(m, leaves[:size]), (size, m)


def test_a_tree_of_seventy_thousand_leaves_has_a_partial_tile_at_level_two():
    n = 70_000  # 256 * 256 = 65,536: level 2 holds one entry, levels 0 and 1 partial tiles
    leaves = leaves_of(n)
    stored = grow(leaves, [65_536, 69_999], 8)
    assert {k for k in stored if k[0] == 2} == {(2, 0)}
    reader = TileReader(lambda lv, ix: stored.get((lv, ix)), n)
    for i in (0, 255, 256, 65_535, 65_536, 69_999):
        assert merkle.root_from_inclusion_proof(i, n, leaves[i], reader.inclusion(i)) \
            == merkle.root_of_leaf_hashes(leaves)
    assert reader.consistency(65_536) == merkle.consistency_proof(65_536, leaves)


def test_the_check_finds_a_changed_entry_and_changed_positions():
    leaves = leaves_of(600)
    stored = grow(leaves, [300], 8)
    check = TileCheck(lambda lv, ix: stored.get((lv, ix)), 600)
    check.feed(b"".join(leaves), list(range(1, 601)))
    assert check.finish(600) is None
    stored[(0, 1)].hashes = stored[(0, 1)].hashes[:32] + bytes(32) + stored[(0, 1)].hashes[64:]
    check = TileCheck(lambda lv, ix: stored.get((lv, ix)), 600)
    check.feed(b"".join(leaves), list(range(1, 601)))
    assert check.finish(600) == (
        258, "edited", "stored Merkle tile level 0 index 1 differs from the tree the events "
                       "give (entry 1)")
    stored = grow(leaves, [], 8)
    check = TileCheck(lambda lv, ix: stored.get((lv, ix)), 601)
    check.feed(b"".join(leaves), list(range(1, 601)))
    assert check.finish(600)[1:] == ("truncated", "the stored Merkle tiles hold 601 leaves "
                                              "but the ledger has 600 events")


# --- stored tiles of a real ledger --------------------------------------------------------------

def claimed(tmp_path: Path, run, db_url: str) -> County:
    c = County(tmp_path, run, db=db_url)
    c.init("Worcestershire")
    for k, ref in enumerate(("W-5", "W-6", "W-7")):
        c.ingest(family(ref, 5), now=f"2016-03-20T10:0{k}:00Z")
    c.cli("claim", "submit", "W-5", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    return c


def test_seal_stores_the_tiles_and_verify_checks_them(tmp_path: Path, db_url: str, run):
    c = claimed(tmp_path, run, db_url)
    _, out, _ = c.cli("verify", "--json")
    assert out["ok"] and out["tiles"] == out["last_checkpoint_size"] > 0


def test_a_tampered_tile_is_a_verify_finding_and_never_reaches_a_bundle(
        tmp_path: Path, db_url: str, run):
    c = claimed(tmp_path, run, db_url)
    raw = RawDB(c.db)
    row = raw.fetch("SELECT hashes FROM merkle_tiles WHERE level = 0 AND idx = 0")
    forged = bytes(row[0][0])
    forged = forged[:64] + bytes(32) + forged[96:]  # the third leaf's hash
    raw.execute(("UPDATE merkle_tiles SET hashes = ? WHERE level = 0 AND idx = 0"),
                (forged,))
    code, _, err = c.cli("verify", ok=False)
    assert code == 1
    assert "stored Merkle tile level 0 index 0 differs from the tree the events give " \
           "(entry 2)" in err
    code, _, err = c.cli("bundle", "W-5/progress", "--out", str(tmp_path / "b.zip"), ok=False)
    assert code == 1 and "the stored Merkle tiles do not prove" in err
    assert not (tmp_path / "b.zip").exists()
    code, _, err = c.cli("claim", "report", "W-5/progress", "--html",
                         str(tmp_path / "r.html"), ok=False)
    assert code == 1 and "the stored Merkle tiles do not prove claim W-5/progress" in err
    assert not (tmp_path / "r.html").exists()


def test_a_ledger_written_before_tiles_gets_them_from_seal(tmp_path: Path, db_url: str, run):
    c = claimed(tmp_path, run, db_url)
    _, before, _ = c.cli("verify", "--json")
    RawDB(c.db).execute("DROP TABLE merkle_tiles")
    _, out, _ = c.cli("verify", "--json")
    assert out["ok"] and out["tiles"] == 0
    code, _, err = c.cli("bundle", "W-5/progress", "--out", str(tmp_path / "b.zip"), ok=False)
    assert code == 2 and "run `claimledger seal` once" in err
    _, sealed, _ = c.cli("seal", "--json")  # over the last checkpoint's own event, too
    assert sealed["tiles_built"] == sealed["tree_size"] == before["events"]
    _, out, _ = c.cli("verify", "--json")
    assert out["ok"] and out["tiles"] == out["last_checkpoint_size"] == before["events"]
    c.cli("bundle", "W-5/progress", "--out", str(tmp_path / "b.zip"))
    assert B.check_bundle((tmp_path / "b.zip").read_bytes()).ok


def test_checkpoint_prove_reads_tiles_and_a_tampered_tile_stops_it(
        tmp_path: Path, db_url: str, run):
    c = claimed(tmp_path, run, db_url)
    c.ingest(family("W-8", 5), now="2016-04-03T10:00:00Z")
    c.cli("seal", now="2016-04-03T10:01:00Z")
    _, listed, _ = c.cli("checkpoint", "list", "--json")
    sizes = [cp["tree_size"] for cp in listed["checkpoints"]]
    proof = tmp_path / "p.json"
    c.cli("checkpoint", "prove", str(sizes[0]), str(sizes[-1]), "--out", str(proof))
    doc = json.loads(proof.read_text())
    assert doc["first"]["tree_size"] == sizes[0] and doc["proof"]
    raw = RawDB(c.db)
    hashes = bytes(raw.fetch("SELECT hashes FROM merkle_tiles WHERE level = 0")[0][0])
    raw.execute(("UPDATE merkle_tiles SET hashes = ? WHERE level = 0 AND idx = 0"),
                (bytes(32) + hashes[32:],))
    code, _, err = c.cli("checkpoint", "prove", str(sizes[0]), str(sizes[-1]),
                         "--out", str(tmp_path / "q.json"), ok=False)
    assert code == 1 and "Merkle tile" in err, err


def test_an_imported_ledger_has_its_tiles(tmp_path: Path, db_url: str, run):
    c = claimed(tmp_path, run, db_url)
    export = tmp_path / "ledger.jsonl"
    c.cli("export", "--out", str(export))
    other = f"sqlite:///{tmp_path}/copy.sqlite"
    code, _, err = run("--db", other, "--key-dir", str(c.keys), "import", str(export))
    assert code == 0, err
    code, out, err = run("--db", other, "--key-dir", str(c.keys), "verify", "--json")
    assert code == 0, err
    assert json.loads(out)["tiles"] == json.loads(out)["events"] > 0
    code, _, err = run("--db", other, "--key-dir", str(c.keys), "--actor", "auditor1",
                       "bundle", "W-5/progress", "--out", str(tmp_path / "b.zip"))
    assert code == 0, err


def test_an_application_role_keeps_working_after_the_owner_builds_the_tiles(
        tmp_path: Path, run):
    """PostgreSQL: a ledger set up with an application role before tiles were stored. The
    owner's next seal creates the tiles table and grants the role its rights, so the role
    verifies, bundles and seals as before."""
    import uuid

    import psycopg

    from conftest import _pg_admin_url, require_postgres

    require_postgres()
    name, role = "t_" + uuid.uuid4().hex[:12], "app_" + uuid.uuid4().hex[:8]
    admin = _pg_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
    db = admin.rsplit("/", 1)[0] + "/" + name
    try:
        owner = County(tmp_path, run, db=db)
        owner.cli("init", "--authority", "Worcestershire", "--app-role", role,
                  now="2015-01-01T00:00:00Z", actor="robin")
        app = County(tmp_path, run, db=db.replace("postgres@", f"{role}@"))
        app.ingest(family("W-5", 5), now="2016-03-20T10:00:00Z")
        app.cli("claim", "submit", "W-5", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
        RawDB(db).execute("DROP TABLE merkle_tiles")  # as it was before tiles were stored
        code, _, err = app.cli("seal", now="2016-04-03T09:00:00Z", ok=False)
        assert code == 2 and "as the ledger's owner" in err
        owner.cli("seal", now="2016-04-03T09:01:00Z", actor="robin")
        _, out, _ = app.cli("verify", "--json")
        assert out["ok"] and out["tiles"] > 0
        app.cli("bundle", "W-5/progress", "--out", str(tmp_path / "b.zip"))
        app.cli("seal", now="2016-04-03T09:02:00Z")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
