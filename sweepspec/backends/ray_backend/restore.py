"""Resuming a Ray experiment: square ``ledger.jsonl`` with Ray's last snapshot, restore the
tuner, or, when Ray's state cannot be used, go on from the ledger alone.

Ray snapshots its experiment state every few seconds and after every step in which a trial
saved a checkpoint (``schedulers.SnapshotOnCheckpoint``), not after every trial it adds, so a
killed driver leaves trials that the last snapshot does not know. :func:`reconcile` squares
the ledger with it:

- a trial the snapshot knows that ended after it is run again by Ray, recognised by its trial
  id: its trainable returns the recorded result without running the objective, it is never
  recorded twice, and the searcher is told that result again;
- a trial the snapshot does not know that had ended is kept: it counts against the budget and
  is told to the searcher (``SpecSearch.adopt``), which does not run a replayed proposal of
  its config again;
- a trial the snapshot does not know that was running is dropped and started over.

Ray's state cannot be used when ``tune/`` is missing while trials had run, or when it is
damaged (a file torn by a crash of the machine or by an older sweepspec, which let Ray write
it in place: :mod:`.atomic_fs`). Ray itself would then start the whole experiment over,
silently; here it is set aside (``tune.damaged-<time>/``) and the sweep goes on from the
ledger: every trial that ended is kept, as if the snapshot knew none (:func:`set_aside`).
What is lost is only the trials in flight and the scheduler's state (an ASHA rung, a PBT
population), which the next trials build again.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepspec.backends.ray_backend.atomic_fs import atomic_local_fs
from sweepspec.backends.ray_backend.ledger_file import LedgerFile

if TYPE_CHECKING:
    from sweepspec.backends.ray_backend.callback import SweepCallback
    from sweepspec.backends.ray_backend.stopper import SpecStopper

__all__ = ["StateDamaged", "has_state", "reconcile", "restore", "set_aside", "snapshot_trial_ids"]


class StateDamaged(Exception):
    """Ray's experiment state cannot be restored; the message says why."""


def has_state(path: Path) -> bool:
    """Whether ``path`` holds a Ray experiment to restore (its ``tuner.pkl``)."""
    from ray import tune

    return bool(tune.Tuner.can_restore(str(path)))


def snapshot_trial_ids(path: Path) -> set[str]:
    """The Ray trial ids in the experiment state that ``Tuner.restore`` will load (the newest
    file, as Ray picks it; empty when there is none yet). Raises :class:`StateDamaged` when
    that file cannot be read whole (Ray would start the experiment over)."""
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint

    newest = _find_newest_experiment_checkpoint(str(path))
    if newest is None:
        return set()
    try:
        state = json.loads(Path(newest).read_text(encoding="utf-8"))
        ids = {str(json.loads(trial)["trial_id"]) for trial, _meta in state["trial_data"]}
        if not isinstance(state["runner_data"], dict):
            raise TypeError("runner_data")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateDamaged(f"{Path(newest).name} cannot be read ({type(exc).__name__})") from None
    _check_searcher_state(path)
    return ids


def _check_searcher_state(path: Path) -> None:
    """The searcher's newest saved state, which Ray loads too (Ray starts over, silently, when
    it cannot): it must be there and unpickle. Ray writes it beside each experiment state, but
    copies the files into ``tune/`` one by one: a driver killed during its first copy leaves an
    experiment state without it, which Ray "restores" into a search algorithm that knows no
    experiment (it fails at the first new trial, or starts over)."""
    from ray import cloudpickle

    for pattern in ("search_gen_state-*.json", "searcher-state-*.pkl"):
        found = sorted(path.glob(pattern))
        if not found:
            raise StateDamaged(f"has no {pattern.replace('*', '<time>')} beside its experiment")
        try:
            with open(found[-1], "rb") as fh:
                cloudpickle.load(fh)  # this run's own file, written by Ray
        except Exception as exc:  # whatever a damaged pickle raises
            raise StateDamaged(f"{found[-1].name} cannot be read ({type(exc).__name__})") from None


def reconcile(known: set[str], ledger_file: LedgerFile) -> tuple[list[dict[str, Any]], int]:
    """Square ``ledger.jsonl`` with the trials Ray's last snapshot ``known`` (see the module):
    the trials it does not know that were running get a ``drop`` event (they start over).
    Returns the end events of those it does not know that had ended (they are kept: counted
    against ``num_samples`` and told to the searcher, which never saw them) and how many
    were dropped."""
    events = ledger_file.events()
    ends = ledger_file.ends()
    adopted = [e for ray_id, e in ends.items() if ray_id not in known]
    settled = known | ends.keys() | {e["ray_id"] for e in events if e.get("event") == "drop"}
    lost = [e["ray_id"] for e in events if e.get("event") == "start" and e["ray_id"] not in settled]
    for ray_id in lost:
        ledger_file.append({"event": "drop", "ray_id": ray_id}, sync=True)
    return adopted, len(lost)


def restore(
    path: Path,
    trainable: Any,
    ledger_file: LedgerFile,
    *,
    callback_factory: Callable[[SpecStopper], SweepCallback],
    num_samples: int,
    concurrency: int | None,
    deadline: float | None,
) -> Any:
    """``Tuner.restore`` of the experiment at ``path``, with this session's callback and
    budget (``num_samples``, deadline, concurrency: Ray would restore the old ones). Raises
    :class:`StateDamaged` when Ray's state cannot be restored (nothing changed yet)."""
    from ray import tune

    for torn in path.glob(".*.tmp"):  # a copy that a crash cut short (atomic_fs)
        torn.unlink(missing_ok=True)
    known = snapshot_trial_ids(path)
    try:
        tuner = tune.Tuner.restore(
            str(path),
            trainable,
            param_space={},
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
            storage_filesystem=atomic_local_fs(),
        )
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
    ) as exc:
        raise StateDamaged(
            f"cannot be restored by Ray ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    inner = getattr(tuner, "_local_tuner", None)
    if inner is None:  # Ray Client: the restored callbacks and budget are used as saved
        return tuner
    adopted, dropped = reconcile(known, ledger_file)
    if adopted or dropped:
        print(
            f"resume: {len(adopted)} trial(s) ended after Ray's last snapshot and are kept "
            f"from ledger.jsonl; {dropped} trial(s) that were running then start over",
            file=sys.stderr,
            flush=True,
        )
    run_config = inner._run_config
    stopper = run_config.stop
    callback = callback_factory(stopper)
    callback.restored = known
    run_config.callbacks = [callback]
    inner._tune_config.time_budget_s = None
    search_alg = inner._tune_config.search_alg
    if hasattr(search_alg, "override"):
        search_alg.override(num_samples - len(adopted), concurrency, deadline)
        search_alg.adopt(adopted)
        callback.generator = search_alg
    return tuner


def set_aside(path: Path, ledger_file: LedgerFile, why: str) -> list[dict[str, Any]]:
    """Ray's state at ``path`` cannot be used (``why``): move it aside and go on from the
    ledger alone. Returns the end events of every trial that ended (kept, as
    :func:`reconcile` keeps those a snapshot does not know); the trials that were running
    start over."""
    where = ""
    if path.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        shutil.move(str(path), str(aside))
        where = f" (kept in {aside.name}/)"
    adopted, dropped = reconcile(set(), ledger_file)
    print(
        f"resume: the Ray experiment state {why}{where}; the sweep goes on from "
        f"ledger.jsonl: {len(adopted)} trial(s) that ended are kept, {dropped} that were "
        "running start over",
        file=sys.stderr,
        flush=True,
    )
    return adopted
