"""A spot-checker who kept an earlier checkpoint confirms the ledger only grew since.

The checker keeps ``tree_size`` and ``root`` of a signed checkpoint (``checkpoint list
--json``). Later the council hands over an RFC 9162 consistency proof to its newest
checkpoint; the checker verifies it offline against what they kept. A ledger that grew
passes; a ledger whose early events were rewritten and re-sealed with the council's own key
fails, even though it is internally consistent again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimledger.audit.checkpoints import check_consistency
from claimledger.ledger import signing
from conftest import RawDB
from county import County
from test_bundle import family


@pytest.fixture
def county(tmp_path: Path, run) -> County:
    c = County(tmp_path, run)
    c.init("Worcestershire")
    c.ingest(family("W-1", 5), now="2016-03-20T10:00:00Z")
    c.cli("seal", now="2016-03-20T10:05:00Z")
    return c


def keep_latest(c: County) -> Path:
    """What the spot-checker writes down: the latest checkpoint's size and root."""
    _, listed, _ = c.cli("checkpoint", "list", "--json")
    kept = c.tmp / "kept.json"
    kept.write_text(json.dumps(listed["checkpoints"][-1]))
    return kept


def test_a_grown_ledger_is_consistent_with_the_checkpoint_kept(tmp_path: Path, db_url: str, run):
    county = County(tmp_path, run, db=db_url)
    county.init("Worcestershire")
    county.ingest(family("W-1", 5), now="2016-03-20T10:00:00Z")
    county.cli("seal", now="2016-03-20T10:05:00Z")
    kept = keep_latest(county)
    county.ingest(family("W-2", 5), now="2016-03-21T10:00:00Z")
    county.cli("claim", "submit", "W-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    _, listed, _ = county.cli("checkpoint", "list", "--json")
    sizes = [c["tree_size"] for c in listed["checkpoints"]]
    assert len(sizes) == 2 and sizes[0] < sizes[1]

    proof = county.tmp / "proof.json"
    county.cli("checkpoint", "prove", str(sizes[0]), "--out", str(proof))
    pub = county.keys / signing.PUBLIC_NAME
    code, out, _ = county.run_cli("checkpoint", "verify-consistency", str(proof),
                                  "--kept", str(kept), "--pubkey", str(pub))
    assert code == 0, out
    assert f"the checkpoint of {sizes[1]} events" in out and "--pubkey" in out

    # the same proof, asked of explicit sizes and checked with the kept numbers on the line
    _, doc, _ = county.cli("checkpoint", "prove", str(sizes[0]), str(sizes[1]))
    assert json.loads(doc) == json.loads(proof.read_text())
    k = json.loads(kept.read_text())
    code, out, _ = county.run_cli("checkpoint", "verify-consistency", str(proof), "--size",
                                  str(k["tree_size"]), "--root", k["root"], "--json")
    assert code == 0 and json.loads(out)["key_source"] == "bundled"


def test_a_rewritten_and_re_sealed_ledger_fails_the_proof(county: County):
    """Someone with the database and the signing key deletes W-1's later records, writes a
    different history and seals again. `verify` on the council's side passes (the chains and
    checkpoints are consistent again); the checker's kept checkpoint exposes it."""
    kept = keep_latest(county)
    raw = RawDB(county.db)
    incident = next(pos for pos, _, _, topic, _ in raw.rows() if "IncidentRecorded" in topic)
    raw.delete_from(incident)
    raw.execute("DELETE FROM merkle_tiles")  # and the stored tiles, which seal would refuse
    history = family("W-1", 5)
    history["incidents"] = history["incidents"][:3]  # fewer incidents than the police recorded
    county.ingest(history, now="2016-03-20T10:06:00Z")
    county.ingest(family("W-2", 5), now="2016-03-20T10:06:30Z")
    county.cli("seal", now="2016-03-20T10:07:00Z")
    code, out, _ = county.cli("verify", ok=False)
    assert code == 0 and "intact" in out  # consistent again, on the council's side

    k = json.loads(kept.read_text())
    _, listed, _ = county.cli("checkpoint", "list", "--json")
    latest = listed["checkpoints"][-1]["tree_size"]
    assert latest > k["tree_size"]
    proof = county.tmp / "proof.json"
    county.cli("checkpoint", "prove", str(k["tree_size"]), str(latest), "--out", str(proof))
    pub = county.keys / signing.PUBLIC_NAME
    code, out, err = county.run_cli("checkpoint", "verify-consistency", str(proof), "--kept",
                                    str(kept), "--pubkey", str(pub))
    assert code == 1
    assert "NOT CONSISTENT" in out and "were rewritten" in err

    # a forger who also edits the proof's stated first root gains nothing: the kept root rules
    doc = json.loads(proof.read_text())
    doc["first"]["root"] = k["root"]
    r = check_consistency(json.dumps(doc).encode(), k["tree_size"], k["root"],
                          trusted_key=bytes.fromhex(pub.read_text()))
    assert not r.ok and any("prefix" in x or "expected" in x for x in r.reasons)


def test_a_tampered_proof_or_another_key_fails(county: County, tmp_path: Path):
    kept = json.loads(keep_latest(county).read_text())
    county.ingest(family("W-2", 5), now="2016-03-21T10:00:00Z")
    county.cli("seal", now="2016-03-21T10:05:00Z")
    _, doc, _ = county.cli("checkpoint", "prove", str(kept["tree_size"]))
    pub = bytes.fromhex((county.keys / signing.PUBLIC_NAME).read_text())
    assert check_consistency(doc.encode(), kept["tree_size"], kept["root"], trusted_key=pub).ok

    d = json.loads(doc)
    d["proof"][0] = ("0" if d["proof"][0][0] != "0" else "1") + d["proof"][0][1:]
    r = check_consistency(json.dumps(d).encode(), kept["tree_size"], kept["root"])
    assert not r.ok and any("consistency" in x for x in r.reasons)

    signing.generate_keypair(tmp_path / "other")
    other = bytes.fromhex((tmp_path / "other" / signing.PUBLIC_NAME).read_text())
    r = check_consistency(doc.encode(), kept["tree_size"], kept["root"], trusted_key=other)
    assert not r.ok and "not the trusted key" in r.reasons[0]


def test_prove_refuses_sizes_it_cannot_prove(county: County):
    _, listed, _ = county.cli("checkpoint", "list", "--json")
    size = listed["checkpoints"][-1]["tree_size"]
    code, _, err = county.cli("checkpoint", "prove", str(size + 1), ok=False)
    assert code == 2 and f"between 1 and {size}" in err
    code, _, err = county.cli("checkpoint", "prove", "1", str(size - 1), ok=False)
    assert code == 2 and f"no checkpoint of tree size {size - 1}" in err
    code, out, _ = county.cli("checkpoint", "list")
    assert f"{size} events  root {listed['checkpoints'][-1]['root']}" in out
