"""Import the objective function named by ``objective.function`` (at run time only)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweepspec.errors import Problem, SweepspecError
from sweepspec.spec.objective import FORBIDDEN_MODULES

__all__ = ["Objective", "load_objective"]

Objective = Callable[..., Any]


def _fail(message: str) -> SweepspecError:
    return SweepspecError(Problem(message, "objective.function", code="objective"))


def load_objective(target: str, base_dir: Path) -> Objective:
    """The callable for ``module:function`` or ``path/file.py:function`` (relative to the spec)."""
    location, _, name = target.rpartition(":")
    if location.endswith(".py"):
        module = _user_code(location, lambda: _load_file(base_dir / location))
    else:
        module = _user_code(location, lambda: importlib.import_module(location))
    func = getattr(module, name, None)
    if func is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        from sweepspec.suggest import did_you_mean

        raise _fail(f"{location!r} has no function {name!r}{did_you_mean(name, names)}")
    if not callable(func):
        raise _fail(f"{target!r} is not callable")
    origin = getattr(func, "__module__", "") or ""
    if origin.split(".")[0] in FORBIDDEN_MODULES or getattr(func, "__module__", None) == "builtins":
        raise _fail(f"refusing to run {target!r}: it resolves to {origin}.{name}")
    _preload_heavy_modules()
    return func  # type: ignore[no-any-return]


def _preload_heavy_modules() -> None:
    """Import, once in the driver, what every trial would otherwise import for itself.

    Trials are forked from the driver, so a module imported here is free in every trial.
    torch's first optimizer imports ``torch._dynamo`` (seconds): do it before the fork."""
    if "torch" in sys.modules:
        # an optional speed-up: a torch build without it is fine
        with contextlib.suppress(Exception):
            importlib.import_module("torch._dynamo")


def _user_code(location: str, load: Callable[[], Any]) -> Any:
    """``load()``, whose failures are the user's code's, reported with its file and line: a
    SyntaxError, an exception raised while the module is imported, a missing module."""
    try:
        return load()
    except SweepspecError:
        raise
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else location
        raise _fail(f"{where}: the objective's code has a syntax error: {exc.msg}") from None
    except ImportError as exc:
        raise _fail(f"cannot import {location!r}: {exc}") from None
    except Exception as exc:  # the module raised while it was imported: the user's error
        frame = _last_user_frame(exc)
        where = f"{frame.filename}:{frame.lineno}" if frame else location
        text = f"{type(exc).__name__}: {exc}"[:300]
        raise _fail(f"{where}: importing {location!r} raised {text}") from None


def _last_user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback outside Python's import machinery."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
    return frames[-1] if frames else None


def _load_file(path: Path) -> Any:
    path = path.resolve()
    if not path.is_file():
        raise _fail(f"no such objective file: {path}")
    mod_name = f"sweepspec_objective_{path.stem}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise _fail(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]  # a later load tries again, instead of a half-run module
        raise
    return module
