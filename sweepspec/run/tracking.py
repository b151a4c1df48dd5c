"""MLflow tracking: every finished trial of a sweep logged as an MLflow run, exactly once.

The sweep is one parent run (tagged ``sweepspec.sweep_id``); each finished trial is a child run
with its sampled parameters, final metrics (at ``step = iterations``), state and attempt count.
Both backends call :meth:`MlflowSync.sync` with the run's trial records while the sweep runs and
once at its end; ``sweepspec results`` calls it too. Which trials MLflow already holds is read
back from MLflow itself (the ``sweepspec.trial_id`` tags under the parent run), so a crash at
any moment loses nothing and a resumed sweep never logs a trial twice: a child run left
unfinished by a crash between its creation and its last write is deleted and logged again.

A tracking server that is down does not stop the sweep: the error is printed once, and the
trials are logged by the next sync (the next results write, the next session or
``sweepspec results``). mlflow is imported lazily, only when a spec names it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sweepspec.credentials import mask_url, resolve_env, scrub
from sweepspec.errors import Problem, SweepspecError
from sweepspec.records import TrialRecord, is_finite_number
from sweepspec.search.plan import trial_count
from sweepspec.spec.root import Spec

__all__ = ["MlflowSync", "check_tracking", "tracker_for"]

SWEEP_TAG = "sweepspec.sweep_id"
TRIAL_TAG = "sweepspec.trial_id"
ROLE_TAG = "sweepspec.role"
NUM_SAMPLES_TAG = "sweepspec.num_samples"
FINISHED = ("COMPLETE", "PRUNED", "FAILED")
#: Trial state -> MLflow run status (a pruned trial ended early on purpose: KILLED).
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAILED": "FAILED"}
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length
MAX_TAG = 8000


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


class MlflowSync:
    """Logs a sweep's finished trials to MLflow, each exactly once."""

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
        self._client: Any = None
        self._experiment_id: str | None = None
        self._parent: str | None = None
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        self._warned = False
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
            run_name=self.sweep_name,
            tags={SWEEP_TAG: self.sweep_id, ROLE_TAG: "sweep"},
        )
        run_id = str(run.info.run_id)
        if self.sweep_params:
            from mlflow.entities import Param

            params = [Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(self.sweep_params.items())]
            client.log_batch(run_id, params=params)
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
        """Log the finished trials MLflow does not hold yet; returns how many were logged.

        Never raises for a tracking failure: it is reported once on stderr and retried on the
        next call. ``final`` also marks the sweep's parent run finished."""
        with self._lock:
            try:
                self._connect()
                n = 0
                for record in records:
                    if record.state in FINISHED and record.trial_id not in self._logged:
                        self._log_trial(record)
                        self._logged.add(record.trial_id)
                        n += 1
                if final and self._parent is not None:
                    self._client.set_terminated(self._parent, "FINISHED")
                return n
            except Exception as exc:  # a server down, a full disk: the sweep goes on
                if not self._warned:
                    self._warned = True
                    text = str(exc).splitlines()[0] if str(exc) else ""
                    print(
                        f"warning: MLflow tracking at {self.display_uri} failed "
                        f"({type(exc).__name__}: {scrub(text)}); "
                        "trials are kept in the run directory and logged by the next sync",
                        file=sys.stderr,
                        flush=True,
                    )
                self._client = None  # reconnect (and re-read what is logged) next time
                return 0

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
        """Wait for a background sync, then log what is left and finish the sweep's run."""
        if self._thread is not None:
            self._thread.join()
        return self.sync(records, final=True)

    def _log_trial(self, record: TrialRecord) -> None:
        import time

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
        run = client.create_run(self._experiment_id, run_name=f"trial-{record.trial_id}", tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(_flatten(record.params).items())]
        metrics = [
            Metric(k, float(v), now, record.iterations)
            for k, v in sorted(_flatten(record.metrics).items())
            if is_finite_number(v)
        ]
        if record.duration_s is not None:
            metrics.append(Metric("sweepspec.duration_s", float(record.duration_s), now, 0))
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id, STATUS[record.state])


def tracker_for(spec: Spec, meta: Mapping[str, Any]) -> MlflowSync | None:
    """The spec's MLflow tracker, or None when it names none. ``meta`` is the run directory's
    meta.json (its ``sweep_id`` tells this sweep's runs from an earlier ``--fresh`` one's; its
    ``num_samples``, the run's budget, goes into the parent run's ``sweepspec.num_samples``
    tag, which follows an extended run)."""
    cfg = spec.tracking.mlflow if spec.tracking else None
    if cfg is None:
        return None
    check_tracking(spec)
    sweep_id = str(meta.get("sweep_id") or f"{spec.run_name}-{meta.get('created', 0)}")
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
    )
