"""The ledger's records count their states and list their COMPLETE trials as they are set, so
that a driver reads only what is new (a run of 10,000 trials asks every loop)."""

from __future__ import annotations

import random

from sweepspec.records import TrialRecord
from sweepspec.run.ledger import Records


def _fold(records: Records) -> list[str]:
    return [k for k, r in records.items() if r.state == "COMPLETE"]


def test_completed_lists_what_became_complete_and_a_reader_reads_only_that() -> None:
    records = Records()
    records["0"] = TrialRecord("0", "RUNNING")
    records["1"] = TrialRecord("1", "COMPLETE")
    records["0"] = TrialRecord("0", "COMPLETE")
    assert records.completed == ["1", "0"]  # in the order they became COMPLETE
    new, mark, anew = records.completed_since((-1, 0))
    assert (new, anew) == (["1", "0"], True)
    records["2"] = TrialRecord("2", "PRUNED")
    records["3"] = TrialRecord("3", "COMPLETE")
    new, mark, anew = records.completed_since(mark)
    assert (new, anew) == (["3"], False)
    assert records.completed == ["1", "0", "3"]
    copy = records.copy()
    copy["4"] = TrialRecord("4", "COMPLETE")
    assert records.completed == ["1", "0", "3"] and copy.completed[-1] == "4"
    generation = records.generation
    del records["1"]  # a record that leaves makes a reader start over
    assert records.generation != generation and records.completed == ["0", "3"]
    assert records.completed_since(mark) == (["0", "3"], (records.generation, 2), True)


def test_completed_equals_a_full_scan_whatever_is_set() -> None:
    rng = random.Random(0)
    records = Records()
    for _ in range(2000):
        key = str(rng.randrange(50))
        op = rng.random()
        if op < 0.1 and key in records:
            if rng.random() < 0.5:
                del records[key]
            else:
                records.pop(key)
        else:
            state = rng.choice(["RUNNING", "COMPLETE", "PRUNED", "FAILED"])
            records[key] = TrialRecord(key, state)
        if rng.random() < 0.05:
            records = records.copy()
        assert sorted(records.completed) == sorted(_fold(records))
        assert records.states["COMPLETE"] == len(records.completed)


def test_records_pickle_with_their_counts() -> None:
    """The Ray backend's callback is pickled with its ledger (tuner.pkl): a dict subclass's
    items are set before its attributes when it is unpickled."""
    import copy
    import pickle

    records = Records()
    records["0"] = TrialRecord("0", "COMPLETE")
    records["1"] = TrialRecord("1", "RUNNING")
    for again in (pickle.loads(pickle.dumps(records)), copy.deepcopy(records)):
        assert isinstance(again, Records) and dict(again) == dict(records)
        assert again.states == records.states and again.completed == ["0"] and again.top == 1
        again["2"] = TrialRecord("2", "FAILED")
        assert again.states["FAILED"] == 1
