"""MLflow tracking: a sweep as one parent run, every finished trial as a child run, exactly once.

The sweep is one parent run (tagged ``sweepspec.sweep_id``, started when the run directory was
made); each finished trial is a child run that starts and ends when the trial did, with its
sampled parameters, state and attempt count, and every ``trial.report`` at its step (read from
``reports/<trial id>.jsonl``: MLflow draws the learning curves), then the final metrics at
the last step. The parent holds the best trial's metrics (a Pareto front: each objective's best
value on the front), logged again as the best changes (its step: the trials finished by then),
the run's budget as the tag ``sweepspec.num_samples`` (a tag, not a parameter: MLflow
parameters never change, and a resumed run may extend the budget), and at the end of each
session the run directory's files as artifacts: ``spec.yaml``, ``spec.resolved.yaml``,
``trials.csv``, ``best.yaml``, ``summary.json``, ``report.html`` and ``plots/`` (replaced by
a later session's or ``sweepspec results``' copies).

Both backends call :meth:`MlflowSync.sync` with the run's trial records while the sweep runs and
:meth:`MlflowSync.close` at its end; ``sweepspec results`` calls ``close`` too. Which trials
MLflow already holds is read back from MLflow itself (the ``sweepspec.trial_id`` tags under the
parent run), so a crash at any moment loses nothing and a resumed sweep never logs a trial
twice: a child run left unfinished by a crash between its creation and its last write is
deleted and logged again.

A tracking server that is down does not stop the sweep: the error is printed once, and the
trials are logged by the next sync (the next results write, the next session or
``sweepspec results``). mlflow is imported lazily, only when a spec names it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sweepspec.credentials import mask_url, resolve_env, scrub
from sweepspec.errors import Problem, SweepspecError
from sweepspec.records import TrialRecord, best_trials, is_finite_number
from sweepspec.run.history import read_reports
from sweepspec.run.rundir import RunDir
from sweepspec.search.plan import trial_count
from sweepspec.spec.root import Spec

__all__ = ["MlflowSync", "check_tracking", "tracker_for", "trial_metrics"]

SWEEP_TAG = "sweepspec.sweep_id"
TRIAL_TAG = "sweepspec.trial_id"
ROLE_TAG = "sweepspec.role"
NUM_SAMPLES_TAG = "sweepspec.num_samples"
BEST_TAG = "sweepspec.best_trial"  # the best trial's id; a Pareto front's ids, comma-separated
FINISHED = ("COMPLETE", "PRUNED", "FAILED")
#: Trial state -> MLflow run status (a pruned trial ended early on purpose: KILLED).
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAILED": "FAILED"}
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length
MAX_TAG = 8000
#: MLflow's limits on one ``log_batch``: metrics, and parameters and tags together
BATCH_METRICS = 1000
BATCH_PARAMS = 100
#: the keys of a report line (:mod:`sweepspec.run.history`) that are not metrics
REPORT_KEYS = ("step", "time_s", "attempt")


def check_tracking(spec: Spec) -> None:
    """Fail before anything starts when the spec names MLflow but it is not installed."""
    import importlib.util

    if spec.tracking is None or spec.tracking.mlflow is None:
        return

    if importlib.util.find_spec("mlflow") is None:
        raise SweepspecError(
            Problem(
                "tracking.mlflow needs MLflow, which is not installed: "
                "pip install 'sweepspec[mlflow]'",
                "tracking.mlflow",
                code="missing-dependency",
            )
        )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _ms(moment: str | None) -> int | None:
    """An ISO 8601 moment (a record's ``started_at``/``ended_at``) in epoch milliseconds."""
    if not moment:
        return None
    try:
        return int(datetime.fromisoformat(moment).timestamp() * 1000)
    except ValueError:
        return None


def trial_metrics(
    record: TrialRecord, reports: Sequence[Mapping[str, Any]], now: int
) -> list[tuple[str, float, int, int]]:
    """What a trial's child run logs, as ``(key, value, timestamp ms, step)``: each finite
    number of each report at its step (stamped at the trial's start plus the report's
    ``time_s``), then each final metric at the last step (stamped at the trial's end) unless
    the last report of that metric already holds it there. Other values are left out."""
    start, end = _ms(record.started_at), _ms(record.ended_at)
    out: list[tuple[str, float, int, int]] = []
    last: dict[str, tuple[int, float]] = {}
    for item in reports:
        step = int(item["step"])
        offset = item.get("time_s")
        stamp = now if start is None else start + int(1000 * float(offset or 0.0))
        stamp = min(stamp, end) if end is not None else stamp
        metrics = {k: v for k, v in item.items() if k not in REPORT_KEYS}
        for key, value in sorted(_flatten(metrics).items()):
            if is_finite_number(value):
                out.append((key, float(value), stamp, step))
                last[key] = (step, float(value))
    final_step = max([record.iterations, *(step for step, _ in last.values())])
    for key, value in sorted(_flatten(record.metrics).items()):
        if is_finite_number(value) and last.get(key) != (final_step, float(value)):
            out.append((key, float(value), now if end is None else end, final_step))
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MlflowSync:
    """Logs a sweep's finished trials to MLflow, each exactly once, and the sweep's best
    metrics and files on its parent run."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        sweep_id: str,
        sweep_name: str,
        *,
        sweep_params: Mapping[str, Any] | None = None,
        sweep_tags: Mapping[str, str] | None = None,
        display_uri: str | None = None,
        rundir: RunDir | None = None,
        directions: Mapping[str, str] | None = None,
        started: float | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        #: what messages show: the spec's URI (``${oc.env:...}`` unresolved), masked
        self.display_uri = mask_url(display_uri or tracking_uri)
        #: set on the sweep's parent run at every connection (they may change: an extension)
        self.sweep_tags = dict(sweep_tags or {})
        self.experiment = experiment
        self.sweep_id = sweep_id
        self.sweep_name = sweep_name
        self.sweep_params = dict(sweep_params or {})
        #: where the trials' reports and the run's files are (None: final metrics only)
        self.rundir = rundir
        #: the objective's metrics and modes: what makes the best trial shown on the parent
        self.directions = dict(directions or {})
        #: when the sweep started (``time.time()``): the parent run's start
        self.started = started
        self._client: Any = None
        self._experiment_id: str | None = None
        self._parent: str | None = None
        self._logged: set[str] = set()
        self._best: tuple[str, ...] = ()  # the best trials last logged on the parent
        self._lock = threading.Lock()
        self._warned = False
        self._warned_files = False
        self._thread: threading.Thread | None = None

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._client is not None:
            return
        if self.tracking_uri.startswith("file:") or "://" not in self.tracking_uri:
            # MLflow 3 keeps its file store in maintenance mode behind this switch; the user named
            # a file URI explicitly, so honour it.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        # A server that is down must not hold the end of a sweep for minutes (MLflow's default
        # is 7 retries with exponential back-off); the user's own settings win.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        import logging

        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # "creating database tables" is not news to a user
            logging.getLogger(name).setLevel(logging.WARNING)

        client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = client.get_experiment_by_name(self.experiment)
        if exp is None:
            exp_id = client.create_experiment(self.experiment)
        else:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            exp_id = exp.experiment_id
        self._experiment_id = exp_id
        self._parent = self._find_or_create_parent(client, exp_id)
        for key, value in self.sweep_tags.items():
            client.set_tag(self._parent, key, value[:MAX_TAG])
        self._logged = self._already_logged(client, exp_id)
        self._best = ()  # another process may have logged since: log the best once more
        self._client = client

    def _search(self, client: Any, exp_id: str, filter_string: str) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = client.search_runs(
                [exp_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _find_or_create_parent(self, client: Any, exp_id: str) -> str:
        found = self._search(
            client,
            exp_id,
            f"tags.`{SWEEP_TAG}` = '{self.sweep_id}' and tags.`{ROLE_TAG}` = 'sweep'",
        )
        if found:
            return str(found[0].info.run_id)
        run = client.create_run(
            exp_id,
            start_time=None if self.started is None else int(self.started * 1000),
            run_name=self.sweep_name,
            tags={SWEEP_TAG: self.sweep_id, ROLE_TAG: "sweep"},
        )
        run_id = str(run.info.run_id)
        from mlflow.entities import Param

        params = [Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(self.sweep_params.items())]
        for batch in _chunks(params, BATCH_PARAMS):
            client.log_batch(run_id, params=batch)
        return run_id

    def _already_logged(self, client: Any, exp_id: str) -> set[str]:
        done: set[str] = set()
        for run in self._search(
            client,
            exp_id,
            f"tags.`{SWEEP_TAG}` = '{self.sweep_id}' and tags.`{ROLE_TAG}` = 'trial'",
        ):
            trial_id = run.data.tags.get(TRIAL_TAG)
            if trial_id is None:
                continue
            if run.info.status == "RUNNING" or trial_id in done:
                client.delete_run(run.info.run_id)  # torn by a crash, or a duplicate: log again
                continue
            done.add(trial_id)
        return done

    # -- logging ------------------------------------------------------------------------------

    def sync(self, records: Iterable[TrialRecord], *, final: bool = False) -> int:
        """Log the finished trials MLflow does not hold yet, and the best trial's metrics on
        the parent run when it changed; returns how many trials were logged.

        Never raises for a tracking failure: it is reported once on stderr and retried on the
        next call. ``final`` also logs the run directory's files on the parent run and marks
        it finished."""
        todo = list(records)
        with self._lock:
            try:
                self._connect()
                n = 0
                for record in todo:
                    if (
                        record.state in FINISHED
                        and record.trial_id not in self._logged
                        and (final or not record.paused)  # a paused trial may run on
                    ):
                        self._log_trial(record)
                        self._logged.add(record.trial_id)
                        n += 1
                self._log_best(todo, final=final)
            except Exception as exc:  # a server down, a full disk: the sweep goes on
                if not self._warned:
                    self._warned = True
                    print(
                        f"warning: MLflow tracking at {self.display_uri} failed "
                        f"({_reason(exc)}); trials are kept in the run directory and logged "
                        "by the next sync",
                        file=sys.stderr,
                        flush=True,
                    )
                self._client = None  # reconnect (and re-read what is logged) next time
                return 0
            if final:
                self._finish()
            return n

    def sync_in_background(self, records: Iterable[TrialRecord]) -> None:
        """Start a sync on a daemon thread unless one is still going (the next call catches up):
        the driver never waits on a slow tracking server."""
        if self._thread is not None and self._thread.is_alive():
            return
        todo = list(records)
        self._thread = threading.Thread(
            target=self.sync, args=(todo,), name="sweepspec-mlflow", daemon=True
        )
        self._thread.start()

    def close(self, records: Iterable[TrialRecord]) -> int:
        """Wait for a background sync, then log what is left, the run's files, and finish the
        sweep's run."""
        if self._thread is not None:
            self._thread.join()
        return self.sync(records, final=True)

    def _finish(self) -> None:
        """The run directory's files onto the parent run, which is then marked finished. Files
        that cannot be stored (a server without an artifact store) are warned about once;
        the trials stay logged."""
        try:
            self._log_files()
        except Exception as exc:
            if not self._warned_files:
                self._warned_files = True
                print(
                    f"warning: MLflow at {self.display_uri} could not store the run's files "
                    f"as artifacts ({_reason(exc)}); the trials are logged",
                    file=sys.stderr,
                    flush=True,
                )
        try:
            self._client.set_terminated(self._parent, "FINISHED")
        except Exception as exc:
            self._client = None
            if not self._warned:
                self._warned = True
                print(f"warning: MLflow tracking failed ({_reason(exc)})", file=sys.stderr)

    def _log_files(self) -> None:
        rd = self.rundir
        if rd is None:
            return
        files = (rd.spec_file, rd.resolved_spec, rd.trials_csv, rd.best_yaml, rd.summary, rd.report)
        for path in files:
            if path.is_file():
                self._client.log_artifact(self._parent, str(path))
        if rd.plots.is_dir() and any(p.is_file() for p in rd.plots.iterdir()):
            self._client.log_artifacts(self._parent, str(rd.plots), artifact_path="plots")

    def _log_best(self, records: Sequence[TrialRecord], *, final: bool) -> None:
        """The best trial's metrics on the parent run (several objectives: each one's best
        value on the Pareto front), at the step of the trials finished so far, when the best
        changed since this process last logged it (or at the end of a session)."""
        if not self.directions:
            return
        best = best_trials(records, self.directions)
        ids = tuple(r.trial_id for r in best)
        if not best or (ids == self._best and not final):
            return
        from mlflow.entities import Metric, RunTag

        if len(best) == 1:
            values = {k: v for k, v in _flatten(best[0].metrics).items() if is_finite_number(v)}
        else:
            pick = {"max": max, "min": min}
            values = {
                name: pick[mode](float(r.metrics[name]) for r in best)
                for name, mode in self.directions.items()
            }
        step = sum(1 for r in records if r.state in FINISHED)
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in sorted(values.items())]
        tags = [RunTag(BEST_TAG, ",".join(ids)[:MAX_TAG])]
        for i, batch in enumerate(_chunks(metrics, BATCH_METRICS)):
            self._client.log_batch(self._parent, metrics=batch, tags=tags if i == 0 else ())
        self._best = ids

    def _log_trial(self, record: TrialRecord) -> None:
        from mlflow.entities import Metric, Param

        assert self._experiment_id is not None and self._parent is not None
        client = self._client
        tags = {
            SWEEP_TAG: self.sweep_id,
            ROLE_TAG: "trial",
            TRIAL_TAG: record.trial_id,
            "mlflow.parentRunId": self._parent,
            "sweepspec.state": record.state,
            "sweepspec.attempts": str(record.attempts),
        }
        if record.error:
            tags["sweepspec.error"] = record.error[-MAX_TAG:]
        run = client.create_run(
            self._experiment_id,
            start_time=_ms(record.started_at),
            run_name=f"trial-{record.trial_id}",
            tags=tags,
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        reports = read_reports(self.rundir, record.trial_id) if self.rundir else []
        metrics = [Metric(*m) for m in trial_metrics(record, reports, now)]
        if record.duration_s is not None:
            metrics.append(Metric("sweepspec.duration_s", float(record.duration_s), now, 0))
        params = [Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(_flatten(record.params).items())]
        for batch in _chunks(params, BATCH_PARAMS):
            client.log_batch(run_id, params=batch)
        for batch in _chunks(metrics, BATCH_METRICS):
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id, STATUS[record.state], end_time=_ms(record.ended_at))


def _reason(exc: Exception) -> str:
    """An error as a warning shows it: its type and first line, credentials masked."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {scrub(text)}"


def tracker_for(spec: Spec, meta: Mapping[str, Any], rundir: RunDir) -> MlflowSync | None:
    """The spec's MLflow tracker, or None when it names none. ``meta`` is the run directory's
    meta.json (its ``sweep_id`` tells this sweep's runs from an earlier ``--fresh`` one's; its
    ``num_samples``, the run's budget, goes into the parent run's ``sweepspec.num_samples``
    tag, which follows an extended run; its ``created``, the parent run's start). ``rundir``
    holds the trials' reports and the files logged on the parent run."""
    cfg = spec.tracking.mlflow if spec.tracking else None
    if cfg is None:
        return None
    check_tracking(spec)
    sweep_id = str(meta.get("sweep_id") or f"{spec.run_name}-{meta.get('created', 0)}")
    created = meta.get("created")
    return MlflowSync(
        resolve_env(cfg.tracking_uri, "tracking.mlflow.tracking_uri"),
        cfg.experiment or spec.run_name,
        sweep_id,
        spec.run_name,
        sweep_params={
            "backend": spec.backend.type,
            "searcher": spec.searcher.type,
            "scheduler": spec.scheduler.type,
            "objective": spec.objective.function,
        },
        sweep_tags={NUM_SAMPLES_TAG: str(meta.get("num_samples") or trial_count(spec))},
        display_uri=cfg.tracking_uri,
        rundir=rundir,
        directions=spec.objective.directions,
        started=float(created) if isinstance(created, int | float) else None,
    )
