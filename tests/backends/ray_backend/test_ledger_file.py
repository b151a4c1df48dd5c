"""The Ray backend's exactly-once ledger file, as a trainable reads it (no Ray started)."""

from __future__ import annotations

import json
from pathlib import Path

from sweepspec.backends.ray_backend.ledger_file import LedgerFile


def test_end_of_finds_the_first_end_of_one_trial(tmp_path: Path) -> None:
    ledger = LedgerFile(tmp_path / "ledger.jsonl")
    assert ledger.end_of("aaaa0001") is None  # no file yet
    ledger.append({"event": "start", "ray_id": "aaaa0001", "trial_id": "0"}, sync=False)
    # another trial whose params happen to contain the first one's id
    ledger.append(
        {"event": "end", "ray_id": "bbbb0002", "state": "COMPLETE", "params": {"s": "aaaa0001"}},
        sync=False,
    )
    assert ledger.end_of("aaaa0001") is None  # started, not ended
    ledger.append({"event": "end", "ray_id": "aaaa0001", "state": "PRUNED"}, sync=True)
    ledger.append({"event": "end", "ray_id": "aaaa0001", "state": "COMPLETE"}, sync=False)
    with open(ledger.path, "a", encoding="utf-8") as fh:
        fh.write('{"event": "end", "ray_id": "cccc0003", "sta')  # torn by a kill
    end = ledger.end_of("aaaa0001")
    assert end is not None and end["state"] == "PRUNED"  # the first end is final
    assert ledger.end_of("bbbb0002") == json.loads(ledger.path.read_text().splitlines()[1])
    assert ledger.end_of("cccc0003") is None
    assert ledger.ends().keys() == {"aaaa0001", "bbbb0002"}


def test_a_dropped_trial_leaves_the_ledger(tmp_path: Path) -> None:
    ledger = LedgerFile(tmp_path / "ledger.jsonl")
    ledger.append({"event": "start", "ray_id": "a1", "trial_id": "0", "params": {}}, sync=False)
    ledger.append({"event": "start", "ray_id": "b2", "trial_id": "1", "params": {}}, sync=False)
    ledger.append({"event": "end", "ray_id": "a1", "trial_id": "0", "state": "COMPLETE"}, sync=True)
    assert ledger.ledger().in_flight == {"1"}
    ledger.append({"event": "drop", "ray_id": "b2"}, sync=True)
    folded = ledger.ledger()
    assert set(folded.records) == {"0"} and not folded.in_flight
    assert folded.finished == 1
    # the dropped trial's id goes to the trial that replaces it: ids stay dense
    assert ledger.trial_ids() == {"a1": "0"}
    ledger.append({"event": "start", "ray_id": "c3", "trial_id": "1", "params": {}}, sync=False)
    ledger.append({"event": "end", "ray_id": "c3", "trial_id": "1", "state": "COMPLETE"}, sync=True)
    folded = ledger.ledger()
    assert {t: r.state for t, r in folded.records.items()} == {"0": "COMPLETE", "1": "COMPLETE"}
    assert ledger.trial_ids() == {"a1": "0", "c3": "1"}
