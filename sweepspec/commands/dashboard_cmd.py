"""``sweepspec dashboard SPEC``: optuna-dashboard on the spec's run, served on 127.0.0.1 (by
default) until Ctrl-C, while the sweep runs or after it.

It reads the run's Optuna storage, which the backend that made the run opens (the journal in
the run directory, repaired first if a crash damaged it, or the spec's database); a backend
that keeps none (its ``optuna_storage`` is None) is refused. The dashboard is read-only: a
request that would change the study (delete it, tell a trial, write a note) is answered 403,
since the sweep's records are sweepspec's to write. optuna-dashboard is an optional extra
(``pip install 'sweepspec[dashboard]'``), imported only here."""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import sys
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from sweepspec.backends import backend_named, open_run
from sweepspec.errors import Problem, SweepspecError
from sweepspec.load import load_spec
from sweepspec.run.view import RunView

__all__ = ["main", "read_only"]

EXTRA = "optuna_dashboard"
#: what a read-only dashboard answers
READS = ("GET", "HEAD", "OPTIONS")


def main(args: argparse.Namespace) -> int:
    if importlib.util.find_spec(EXTRA) is None:
        raise SweepspecError(
            Problem(
                "the dashboard needs optuna-dashboard, which is not installed: "
                "pip install 'sweepspec[dashboard]'",
                code="missing-package",
            )
        )
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    view = open_run(loaded)
    if view.changed:
        print(view.warning(args.spec), file=sys.stderr)
    storage = _storage(view)
    name = str(view.meta.get("study_name") or view.spec.spec.run_name)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        raise SweepspecError(
            Problem(f"the run's storage holds no sweep {name!r}", code="no-study")
        ) from None
    import optuna_dashboard

    server = _listen(args.host, args.port, read_only(optuna_dashboard.wsgi(storage)))
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"optuna-dashboard of {view.spec.spec.run_name!r} at "
        f"http://{host}:{server.server_port}/dashboard/studies/{study_id} (Ctrl-C to stop)",
        flush=True,
    )
    try:
        server.serve_forever()  # Ctrl-C: KeyboardInterrupt, which the CLI turns into exit 130
    finally:
        server.server_close()
    return 0


def _storage(view: RunView) -> Any:
    """The run's Optuna storage, opened by the backend that made the run."""
    backend = backend_named(str(view.meta.get("backend") or view.spec.spec.backend.type))
    storage = backend.optuna_storage(view.spec, view.rundir)
    if storage is None:
        raise SweepspecError(
            Problem(
                f"the dashboard reads Optuna storages, and the run of "
                f"{view.spec.spec.run_name!r} was made by the {backend.name} backend, which "
                "keeps none; `sweepspec status` and `sweepspec results` (report.html) show it",
                code="unsupported",
            )
        )
    return storage


def read_only(app: WSGIApplication) -> WSGIApplication:
    """``app`` answering only requests that read (a write is refused with 403)."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in READS:
            return app(environ, start_response)
        body = json.dumps({"reason": "sweepspec serves the dashboard read-only"}).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return guarded


class _Server(ThreadingMixIn, WSGIServer):
    """A request per thread (the page asks for several at once); none outlives the server."""

    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _listen(host: str, port: int, app: WSGIApplication) -> WSGIServer:
    server_class = _Server6 if ":" in host else _Server
    try:
        return make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as exc:
        raise SweepspecError(
            Problem(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                "--port (or --host)",
                code="io",
            )
        ) from None
