"""The integrity primitives against published vectors and the reference encoder."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from claimledger.errors import IntegrityError
from claimledger.ledger import merkle
from claimledger.ledger.canonical import canonical

VECTORS = json.loads(
    (Path(__file__).resolve().parent / "data" / "rfc6962.json").read_text()
)
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves_hex"]]


@pytest.mark.parametrize("n", range(len(VECTORS["roots"])))
def test_roots_match_certificate_transparency(n):
    assert merkle.root_of_leaf_hashes(LEAVES[:n]).hex() == VECTORS["roots"][n]
    f = merkle.Frontier()
    for leaf in LEAVES[:n]:
        f.append(leaf)
    assert f.root().hex() == VECTORS["roots"][n]
    assert merkle.Frontier.from_json(f.to_json()).root() == f.root()


@pytest.mark.parametrize(
    "case", VECTORS["inclusion_proofs"], ids=lambda c: f"{c['leaf']}of{c['tree_size']}"
)
def test_inclusion_proofs_match_and_verify(case):
    i, n = case["leaf"] - 1, case["tree_size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert merkle.inclusion_proof(i, LEAVES[:n]) == proof
    root = bytes.fromhex(VECTORS["roots"][n])
    merkle.verify_inclusion(i, n, LEAVES[i], proof, root)
    with pytest.raises(IntegrityError):
        merkle.verify_inclusion(i, n, merkle.leaf_hash(b"forged"), proof, root)


@pytest.mark.parametrize(
    "case", VECTORS["consistency_proofs"], ids=lambda c: f"{c['first']}to{c['second']}"
)
def test_consistency_proofs_match_and_verify(case):
    m, n = case["first"], case["second"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert merkle.consistency_proof(m, LEAVES[:n]) == proof
    old, new = bytes.fromhex(VECTORS["roots"][m]), bytes.fromhex(VECTORS["roots"][n])
    merkle.verify_consistency(m, n, old, new, proof)
    if m < n:
        with pytest.raises(IntegrityError):
            merkle.verify_consistency(m, n, merkle.leaf_hash(b"rewritten"), new, proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_generated_proofs_verify_for_every_size(n, data):
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    root = merkle.root_of_leaf_hashes(leaves)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    merkle.verify_inclusion(i, n, leaves[i], merkle.inclusion_proof(i, leaves), root)
    m = data.draw(st.integers(min_value=1, max_value=n))
    merkle.verify_consistency(
        m, n, merkle.root_of_leaf_hashes(leaves[:m]), root, merkle.consistency_proof(m, leaves)
    )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_fast_canonical_json_equals_rfc8785(value):
    """orjson with sorted keys gives RFC 8785 bytes for float-free data (DEVELOPERS.md)."""
    assert canonical(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6), st.text(max_size=12),
       st.binary(min_size=16, max_size=16))
def test_stored_records_composed_from_parts_are_canonical(payload, actor, salt):
    """Ingest and the mapper compose a stored record from the canonical bytes of its
    envelope and payload instead of encoding it again: the result must be exactly
    canonical() of the whole record (and so RFC 8785), clear or sealed."""
    from claimledger.ledger.envelope import plaintext, record_state, seal, sealed_state

    sealed = seal(stream="family/F-17", version=3, type_="Family.ScoreRecorded",
                  recorded_at="2016-03-31T09:00:00.000000Z", actor=actor,
                  prev_hash="0" * 64, salt=salt, payload=payload)
    assert sealed.envelope_bytes == canonical(sealed.envelope)
    assert record_state(sealed) == rfc8785.dumps(
        {"envelope": sealed.envelope, "hash": sealed.hash, "salt": sealed.salt,
         "payload": payload})
    assert plaintext(sealed.salt, sealed.payload_bytes) == rfc8785.dumps(
        {"salt": sealed.salt, "payload": payload})
    assert sealed_state(sealed, b"bm9uY2UrY2lwaGVydGV4dA==") == rfc8785.dumps(
        {"envelope": sealed.envelope, "hash": sealed.hash, "sealed": "bm9uY2UrY2lwaGVydGV4dA=="})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6), st.text(max_size=12),
       st.text(max_size=12), st.text(max_size=20), st.integers(1, 2**40),
       st.binary(min_size=16, max_size=16), st.sampled_from(["0" * 64, "ab" * 32]))
def test_composed_envelopes_equal_seal(payload, actor, stream, type_, version, salt, prev):
    """Ingest's Sealer composes each envelope from pre-encoded parts: the bytes, hash, salt
    and payload bytes must be exactly those seal() makes (any actor, stream or type text,
    quotes, control characters and non-BMP characters included)."""
    from claimledger.ledger.envelope import Sealer, seal

    at = "2016-03-31T09:00:00.000000Z"
    want = seal(stream=stream, version=version, type_=type_, recorded_at=at, actor=actor,
                prev_hash=prev, salt=salt, payload=payload)
    sealer = Sealer(recorded_at=at, actor=actor)
    got = sealer.seal(Sealer.stream_part(stream), version, type_, prev, salt, payload)
    assert got == (want.envelope_bytes, want.hash, want.salt, want.payload_bytes)
    assert got[0] == rfc8785.dumps(want.envelope)


def _decoded(decode, text):
    try:
        return decode(text)
    except ValueError as e:  # binascii.Error is a ValueError
        return type(e)


BASE64_TEXT = st.one_of(
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),  # what writers make
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n -_*é",
            max_size=24),
)


@settings(max_examples=500, deadline=None)
@given(BASE64_TEXT)
def test_ciphertexts_decode_exactly_as_binascii_reads_them(text):
    """Sealed payloads' base64 goes through pybase64 when it is strict base64 and through
    ``binascii.a2b_base64`` otherwise: whatever the text (stray characters, extra padding,
    non-ASCII), the bytes, or the failure, must be a2b_base64's, or a forged ciphertext
    could read one way in verify and another in every reader."""
    from claimledger.crypto import unbase64

    assert _decoded(unbase64, text) == _decoded(binascii.a2b_base64, text)
