"""The spec stage's reader, text -> Spec: YAML with positions, ``extends:``, command-line
overrides, OmegaConf interpolation and pydantic validation. The only module of the spec stage
that reads YAML (through :mod:`sweepspec.spec.source`).

Every problem comes back as a :class:`~sweepspec.errors.SweepspecError` whose problems carry the
file, line, column and key path; all problems of a file are reported at once. The checks that
follow (the spec's cross-field ones, the feasibility sample, the backend's) are run by
:func:`sweepspec.load.load_spec`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sweepspec.errors import KeyPath, Location, Problem, SweepspecError
from sweepspec.spec.base import NAME_PATTERN
from sweepspec.spec.interpolation import check_interpolations, escape_env, has_interpolation
from sweepspec.spec.root import FORMAT_VERSION, Spec
from sweepspec.spec.source import MAX_BYTES, SourceMap, load_yaml

__all__ = ["LoadedSpec", "read_file", "read_spec", "read_text"]


MAX_EXTENDS_DEPTH = 32


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec with where it came from."""

    spec: Spec
    path: Path | None
    text: str
    resolved: dict[str, Any]
    source: SourceMap
    overrides: tuple[str, ...] = ()
    feasible_share: float | None = None
    notes: tuple[str, ...] = field(default=())

    @contextmanager
    def located(self) -> Iterator[None]:
        """Errors raised inside (while running the spec) that name a key path but no place
        are located in the spec's file."""
        try:
            yield
        except SweepspecError as exc:
            raise exc.located(self.source.locate) from None

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the spec (objective files, extends) start from."""
        return self.path.parent if self.path is not None else Path.cwd()


def read_spec(path: str | Path, overrides: Sequence[str] = ()) -> LoadedSpec:
    """Read, merge, resolve and validate the spec file at ``path`` into a Spec."""
    path = Path(path)
    raw = read_file(path, Location(str(path)))
    return read_text(raw, str(path), overrides, spec_path=path)


def read_text(
    text: str | bytes,
    file: str = "<string>",
    overrides: Sequence[str] = (),
    *,
    spec_path: Path | None = None,
) -> LoadedSpec:
    """Like :func:`read_spec` for text already in memory (``file`` names it in errors)."""
    from sweepspec.spec.validate import validate_model

    data, source = _load_document(text, file)
    verbatim = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    base_dir = spec_path.parent if spec_path is not None else Path.cwd()
    data, source, overrides = _override_extends(data, source, overrides)
    data, source = _apply_extends(data, source, base_dir, seen=(file,))
    data, source = _apply_overrides(data, source, overrides)
    data = _resolve(data, source)
    if data.get("name") is None:  # absent or `name: null`
        data["name"] = _default_name(spec_path, file)
    spec = validate_model(data, source)
    return LoadedSpec(spec, spec_path, verbatim, data, source, tuple(overrides))


def read_file(path: Path, where: Location) -> bytes:
    """The bytes of the spec file at ``path``: a regular file (a FIFO, a device or a socket is
    refused without being read, so nothing can block or stream forever), of at most
    ``MAX_BYTES`` (one byte more is read to tell; a larger file is refused unread)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SweepspecError(Problem("no such file", location=where, code="io")) from None
    except IsADirectoryError:
        raise SweepspecError(Problem("is a directory, not a spec file", location=where)) from None
    except OSError as exc:
        msg = f"cannot read: {exc.strerror or exc}"
        raise SweepspecError(Problem(msg, location=where, code="io")) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SweepspecError(Problem("is a directory, not a spec file", location=where))
        if not stat.S_ISREG(info.st_mode):
            kind = _file_kind(info.st_mode)
            raise SweepspecError(
                Problem(f"is {kind}, not a regular file: not read", location=where, code="io")
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise SweepspecError(
                Problem(
                    f"file is too large (more than {MAX_BYTES} bytes; a spec is smaller)",
                    location=where,
                    code="too-large",
                )
            )
        return b"".join(chunks)
    except OSError as exc:
        msg = f"cannot read: {exc.strerror or exc}"
        raise SweepspecError(Problem(msg, location=where, code="io")) from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _load_document(text: str | bytes, file: str) -> tuple[dict[str, Any], SourceMap]:
    data, source = load_yaml(text, file)
    root = Location(file, 1, 1)
    if data is None:
        raise SweepspecError(
            Problem(
                "the file is empty; a spec starts with `sweepspec: 1`", location=root, code="empty"
            )
        )
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SweepspecError(
            Problem(
                f"a spec is a mapping of keys, but this file holds a {kind}",
                location=root,
                code="not-a-mapping",
            )
        )
    return data, source


def check_version(data: dict[str, Any], source: SourceMap, *, required: bool = True) -> None:
    """Check ``sweepspec: <version>`` before anything else (a newer format is not 40 errors)."""
    if "sweepspec" not in data:
        if not required:
            return
        raise SweepspecError(
            Problem(
                f"missing the format version: add `sweepspec: {FORMAT_VERSION}` at the top",
                path="sweepspec",
                location=source.locate(()),
                code="version",
            )
        )
    version = data["sweepspec"]
    where = source.locate(("sweepspec",))
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise SweepspecError(
            Problem(
                f"this spec is format {version}, which needs a newer sweepspec "
                f"(this one reads format {FORMAT_VERSION}); upgrade sweepspec",
                path="sweepspec",
                location=where,
                code="version",
            )
        )
    if type(version) is not int or version != FORMAT_VERSION:  # not True, not 1.0
        raise SweepspecError(
            Problem(
                f"the format version must be {FORMAT_VERSION}, but got {version!r}",
                path="sweepspec",
                location=where,
                code="version",
            )
        )


def _override_extends(
    data: dict[str, Any], source: SourceMap, overrides: Sequence[str]
) -> tuple[dict[str, Any], SourceMap, list[str]]:
    """``extends=base.yaml`` on the command line chooses the base (it is applied before every
    other override, as the file's own ``extends`` would be); ``extends=null`` drops it."""
    rest: list[str] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "extends":
            where = Location(f"override '{item}'")
            text = value.strip()
            if text in ("", "null", "~"):
                data.pop("extends", None)
            else:
                data["extends"] = text
            source = source.merged(SourceMap.single(where, [("extends",)]))
        else:
            rest.append(item)
    return data, source, rest


def _apply_extends(
    data: dict[str, Any], source: SourceMap, base_dir: Path, seen: tuple[str, ...]
) -> tuple[dict[str, Any], SourceMap]:
    # the top file states its version, unless it extends a base that does
    check_version(data, source, required=len(seen) == 1 and "extends" not in data)
    target = data.pop("extends", None)
    if target is None:
        return data, source
    where = source.locate(("extends",))
    if not isinstance(target, str) or not target:
        raise SweepspecError(
            Problem("extends takes a path to a YAML file", path="extends", location=where)
        )
    base_path = (base_dir / target).resolve()
    if not _allowed_base(target, base_path, base_dir):
        raise SweepspecError(
            Problem(
                f"extends takes a relative path to a .yaml/.yml file inside the spec's "
                f"directory or the current directory, but got {target!r}",
                path="extends",
                location=where,
                code="extends",
            )
        )
    if str(base_path) in seen:
        raise SweepspecError(
            Problem(
                f"extends loops back to {target!r}",
                path="extends",
                location=where,
                code="extends-cycle",
            )
        )
    if len(seen) > MAX_EXTENDS_DEPTH:
        raise SweepspecError(
            Problem(
                f"extends chains more than {MAX_EXTENDS_DEPTH} files; a base of a base ... "
                f"that deep is not supported (here at {target!r})",
                path="extends",
                location=where,
                code="extends-depth",
            )
        )
    if not base_path.is_file():
        raise SweepspecError(
            Problem(
                f"extends names {target!r}, which is not a file",
                path="extends",
                location=where,
                code="extends",
            )
        )
    display = _display_path(base_path)
    base_data, base_source = _load_document(read_file(base_path, Location(display)), display)
    base_data, base_source = _apply_extends(
        base_data, base_source, base_path.parent, (*seen, str(base_path))
    )
    from omegaconf import OmegaConf

    replace_whole(base_data, data)
    merged = OmegaConf.to_container(OmegaConf.merge(_omega(base_data), _omega(data)), resolve=False)
    return cast(dict[str, Any], merged), base_source.merged(source)


_LEAF_KEYS = ("uniform", "loguniform", "int", "choice", "grid", "value")


def replace_whole(base: dict[str, Any], patch: dict[str, Any]) -> None:
    """Drop from ``base`` what ``patch`` replaces as a whole rather than merges into: a space
    leaf given as a distribution or ``{value: ...}`` (``loguniform`` over ``uniform`` is a new
    leaf, not both), and a scheduler or backend of another ``type``."""
    for key in ("scheduler", "backend"):
        new, old = patch.get(key), base.get(key)
        if (
            isinstance(new, dict)
            and isinstance(old, dict)
            and new.get("type", old.get("type")) != old.get("type")
        ):
            del base[key]
    if isinstance(patch.get("space"), dict) and isinstance(base.get("space"), dict):
        _replace_leaves(base["space"], patch["space"])


def _replace_leaves(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if key not in base:
            continue
        if not isinstance(value, dict) or any(k in value for k in _LEAF_KEYS):
            del base[key]
        elif isinstance(base[key], dict):
            _replace_leaves(base[key], value)


def _allowed_base(target: str, resolved: Path, base_dir: Path) -> bool:
    """A base is a YAML file under the spec's directory or the working directory: a spec from
    a pull request must not make validate read (and echo parts of) arbitrary files."""
    if Path(target).is_absolute() or resolved.suffix not in (".yaml", ".yml"):
        return False
    roots = (base_dir.resolve(), Path.cwd().resolve())
    return any(resolved.is_relative_to(root) for root in roots)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _omega(data: dict[str, Any]) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.create(data, flags={"allow_objects": False})


def _apply_overrides(
    data: dict[str, Any], source: SourceMap, overrides: Sequence[str]
) -> tuple[dict[str, Any], SourceMap]:
    if not overrides:
        return data, source
    from omegaconf import OmegaConf

    problems: list[Problem] = []
    cfg = _omega(data)
    for item in overrides:
        where = Location(f"override '{item}'")
        key, sep, _ = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w]*(\.[\w]+)*", key.strip()):
            problems.append(
                Problem(
                    "an override is key.path=value, e.g. trials.num_samples=10",
                    location=where,
                    code="override",
                )
            )
            continue
        try:
            patch = OmegaConf.from_dotlist([item])
            base = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=False))
            replace_whole(base, cast(dict[str, Any], OmegaConf.to_container(patch, resolve=False)))
            cfg = OmegaConf.merge(_omega(base), patch)
        except Exception as exc:  # omegaconf raises many types for bad dotlists
            problems.append(
                Problem(
                    f"cannot apply: {_first_line(exc)}", path=key, location=where, code="override"
                )
            )
            continue
        paths: list[KeyPath] = [tuple(key.strip().split("."))]
        # a prefix the file lacks (an unknown key) is located at the override, too, and so is
        # the mapping it sets a key of (``space.x.uniform=[1,0]``: space.x is now invalid)
        prefixes = [paths[0][:n] for n in range(1, len(paths[0]))]
        paths += [p for p in prefixes if source.value(p) is None or len(p) == len(paths[0]) - 1]
        source = source.merged(SourceMap.single(where, paths + _subpaths(patch, paths[0])))
    if problems:
        raise SweepspecError(problems)
    merged = OmegaConf.to_container(cfg, resolve=False)
    return cast(dict[str, Any], merged), source


def _subpaths(patch: Any, prefix: KeyPath) -> list[KeyPath]:
    from omegaconf import OmegaConf

    node: Any = OmegaConf.to_container(patch, resolve=False)
    for key in prefix:
        node = node[key] if isinstance(node, dict) else None
    out: list[KeyPath] = []

    def walk(value: Any, path: KeyPath) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                out.append((*path, k))
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                out.append((*path, i))
                walk(v, (*path, i))

    walk(node, prefix)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _resolve(data: dict[str, Any], source: SourceMap) -> dict[str, Any]:
    """References resolved (only they are allowed: :mod:`sweepspec.spec.interpolation`
    checks that, and the size of the result, first); ``${oc.env:...}`` kept literal."""
    if not has_interpolation(data):
        return data
    check_interpolations(data, source)
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        resolved = OmegaConf.to_container(_omega(escape_env(data)), resolve=True)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "")
        path: KeyPath = tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", key) if p)
        raise SweepspecError(
            Problem(
                f"interpolation failed: {_first_line(exc)}",
                path=key,
                location=source.locate(path),
                code="interpolation",
            )
        ) from None
    return cast(dict[str, Any], resolved)


def _default_name(spec_path: Path | None, file: str) -> str:
    stem = spec_path.stem if spec_path is not None else Path(file).stem
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._") or "sweep"
    return name if re.fullmatch(NAME_PATTERN, name) else "sweep"


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)
