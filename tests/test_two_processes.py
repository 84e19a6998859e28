"""Two processes append to the same family at once; the chain never forks.

Both writers load family F-2 at the same version, wait at a barrier, then append. The
database's unique (stream, version) key lets exactly one win; the other is told to retry,
does, and the ledger verifies with one unbroken chain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from claimledger.application import open_app
from claimledger.domain.family import Family
from ledger_story import build

WRITER = r"""
import json, sys, time
from pathlib import Path
from claimledger.application import Settings, open_app
from claimledger.domain.family import Family
from claimledger.errors import ConflictError

db, keys, name, gate = sys.argv[1:5]
s = Settings(db=db, key_dir=Path(keys), now="2016-04-01T00:00:00Z", actor=name)
app = open_app(s)
fam = app.find(Family, "F-2")
fam.record(Family.IncidentRecorded, app.context(), file_sha256="2" * 64, row=2,
           row_key=name, member_ref="F-2-C0", occurred_on="2016-03-01",
           kind="police_callout", serious=False, source=name)
Path(gate + "." + name).write_text("ready")
while not Path(gate).exists():
    time.sleep(0.005)
try:
    app.commit(fam)
    print(json.dumps({"writer": name, "result": "ok", "version": fam.version}))
except ConflictError as e:
    print(json.dumps({"writer": name, "result": "conflict", "error": str(e)}))
"""


def test_two_processes_one_wins_the_other_retries(settings_for, tmp_path: Path):
    build(settings_for)
    s = settings_for()
    gate = str(tmp_path / "go")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, s.db, str(s.key_dir), name, gate],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("writer-a", "writer-b")
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{gate}.{n}").exists() for n in ("writer-a", "writer-b")):
        assert time.monotonic() < deadline, [p.stderr.read() for p in procs if p.poll()]
        time.sleep(0.01)
    Path(gate).write_text("go")
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(r["result"] for r in results) == ["conflict", "ok"]
    loser = next(r for r in results if r["result"] == "conflict")
    assert "retry" in loser["error"]

    # The loser retries from the new head.
    app = open_app(settings_for(now="2016-04-01T00:00:01Z", actor=loser["writer"]))
    fam = app.find(Family, "F-2")
    assert fam is not None and fam.version == 5
    fam.record(Family.IncidentRecorded, app.context(), file_sha256="2" * 64, row=2,
               row_key=loser["writer"], member_ref="F-2-C0", occurred_on="2016-03-01",
               kind="police_callout", serious=False, source=loser["writer"])
    app.commit(fam)
    result = app.verify()
    assert result.ok, result.reasons
    versions = [r for _, r in app.stream_records("family/F-2")]
    assert [r["envelope"]["version"] for r in versions] == [1, 2, 3, 4, 5, 6]
    assert [r["envelope"]["prev_hash"] for r in versions[1:]] == [r["hash"] for r in versions[:-1]]
