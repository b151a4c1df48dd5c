"""``sweepspec diff A B`` / ``sweepspec diff --rev REV A``: what changes between two specs that
matters for review: ranges widened or narrowed, parameters added or removed, choices added or
dropped, the budget as a factor, whether a run of the old spec can resume as the new one, and
what the new spec's existing run (if any) would do: resume, extend, or be refused.

``--rev REV`` compares a spec with its version at a git revision (``origin/main`` in a pull
request); its ``extends:`` bases are read at that revision too. ``--format github`` writes
Markdown for a pull-request comment; ``--exit-code`` exits 1 when the specs differ."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sweepspec.commands.status_cmd import spec_changes
from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.load import LoadedSpec, load_spec, load_text
from sweepspec.run.rundir import RunDir, changed_sections, fingerprint
from sweepspec.search.plan import trial_count
from sweepspec.spec.space import Param

__all__ = ["Change", "diff_specs", "main"]

GROUPS = {
    "space": ("space", "derived", "constraints", "try_first"),
    "objective": ("objective",),
    "search": ("searcher", "scheduler"),
    "budget": ("trials", "stop", "resources", "total trials"),
    "backend": ("backend", "storage", "tracking"),
}
#: budget keys whose change is shown as a factor
FACTORS = (
    "trials.num_samples",
    "trials.timeout",
    "stop.sweep.time_budget",
    "resources.max_concurrent",
    "backend.workers",
)
RANGES = ("uniform", "loguniform", "int")
VALUES = ("choice", "grid")


@dataclass(frozen=True)
class Change:
    """One change: its key path, the value before and after (None: absent) and a note
    (``widened``, ``x4``, ``added``...)."""

    path: str
    before: Any
    after: Any
    note: str = ""

    @property
    def group(self) -> str:
        top = self.path.split(".")[0]
        return next((g for g, keys in GROUPS.items() if top in keys), "other")

    def text(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.before is None:
            return f"{self.path}: added {_show(self.after)}{note}"
        if self.after is None:
            return f"{self.path}: removed (was {_show(self.before)})"
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}{note}"


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


# -- what changed ------------------------------------------------------------------------------


def diff_specs(a: LoadedSpec, b: LoadedSpec) -> list[Change]:
    """Every change from ``a`` to ``b``: the space parameter by parameter, everything else
    key by key (of the resolved specs)."""
    changes = _space_changes(a.spec.params(), b.spec.params())
    da, db = a.spec.dump(), b.spec.dump()
    da.pop("space", None)
    db.pop("space", None)
    _walk(da, db, "", changes)
    count_a, count_b = trial_count(a.spec), trial_count(b.spec)
    plain = (a.spec.trials.num_samples, b.spec.trials.num_samples)
    if count_a != count_b and (count_a, count_b) != plain:  # grid points multiply num_samples
        changes.append(Change("total trials", count_a, count_b, _factor(count_a, count_b)))
    return changes


def _space_changes(old: list[Param], new: list[Param]) -> list[Change]:
    before = {p.path: p for p in old}
    after = {p.path: p for p in new}
    out: list[Change] = []
    for path in [*before, *(p for p in after if p not in before)]:
        key = f"space.{path}"
        if path not in after:
            out.append(Change(key, _leaf(before[path]), None))
        elif path not in before:
            out.append(Change(key, None, _leaf(after[path])))
        else:
            out += _param_change(key, before[path], after[path])
    return out


def _leaf(p: Param) -> Any:
    node = p.node
    dump = getattr(node, "model_dump", None)  # a distribution, or {value: ...}
    return dump(mode="json", exclude_none=True, exclude_defaults=True) if dump else node


def _param_change(key: str, a: Param, b: Param) -> list[Change]:
    la, lb = _leaf(a), _leaf(b)
    if la == lb:
        return []
    if a.kind != b.kind or a.kind == "fixed":
        return [Change(key, la, lb, f"{a.kind} -> {b.kind}" if a.kind != b.kind else "")]
    out: list[Change] = []
    if la[a.kind] != lb[a.kind]:
        note = _range_note(la[a.kind], lb[a.kind]) if a.kind in RANGES else ""
        if a.kind in VALUES:
            note = _values_note(la[a.kind], lb[a.kind])
        out.append(Change(f"{key}.{a.kind}", la[a.kind], lb[a.kind], note))
    rest_a = {k: v for k, v in la.items() if k != a.kind}
    rest_b = {k: v for k, v in lb.items() if k != a.kind}
    _walk(rest_a, rest_b, key, out)
    return out


def _range_note(a: list[float], b: list[float]) -> str:
    (lo_a, hi_a), (lo_b, hi_b) = a, b
    if lo_b <= lo_a and hi_b >= hi_a:
        return "widened"
    if lo_b >= lo_a and hi_b <= hi_a:
        return "narrowed"
    return "shifted"


def _values_note(a: list[Any], b: list[Any]) -> str:
    added = [_show(v) for v in b if v not in a]
    dropped = [_show(v) for v in a if v not in b]
    parts = ([f"added {', '.join(added)}"] if added else []) + (
        [f"dropped {', '.join(dropped)}"] if dropped else []
    )
    return "; ".join(parts) or "reordered"


def _walk(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if path else str(key)
            _walk(a.get(key), b.get(key), sub, out)
    elif a != b:
        out.append(Change(path, a, b, _factor(a, b) if path in FACTORS else ""))


def _factor(a: Any, b: Any) -> str:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)) or not a:
        return ""
    return f"x{b / a:.3g}"


# -- what it means for a run -------------------------------------------------------------------


def _compatibility(a: LoadedSpec, b: LoadedSpec) -> list[str]:
    """The sections whose change means a run of ``a`` cannot resume as ``b``."""
    changed = changed_sections(fingerprint(a), fingerprint(b))
    if a.spec.backend.type != b.spec.backend.type:
        changed.append(f"backend {a.spec.backend.type} -> {b.spec.backend.type}")
    return changed


def _existing_run(b: LoadedSpec) -> dict[str, Any]:
    """What ``sweepspec run`` of ``b`` would do with its existing run directory."""
    rundir = RunDir.for_spec(b)
    if not rundir.exists():
        return {"dir": str(rundir.path), "verdict": "new", "changed": []}
    meta = rundir.read_meta()
    changed = spec_changes(b, meta)
    if changed:
        return {"dir": str(rundir.path), "verdict": "refused", "changed": changed}
    old, new = meta.get("num_samples"), trial_count(b.spec)  # None: a run made before it
    verdict = "extend" if isinstance(old, int) and new > old else "resume"
    return {"dir": str(rundir.path), "verdict": verdict, "changed": [], "trials": [old, new]}


def _run_text(run: dict[str, Any]) -> str:
    where = run["dir"]
    verdict = run["verdict"]
    if verdict == "new":
        return f"no run at {where} yet: `sweepspec run` starts a new one"
    if verdict == "refused":
        return (
            f"the run at {where} would be refused ({', '.join(run['changed'])} changed): "
            "run with --fresh (start over) or --warm-start"
        )
    old, new = run["trials"]
    if verdict == "extend":
        return f"the run at {where} would be extended ({old} -> {new} trials)"
    if old is not None and new < old:
        return f"the run at {where} would resume with a smaller budget ({old} -> {new} trials)"
    return f"the run at {where} would resume ({new} trials)"


# -- a spec at a git revision ------------------------------------------------------------------

YAML = (".yaml", ".yml")


def load_at_revision(path: Path, rev: str) -> tuple[LoadedSpec | None, str]:
    """The spec at ``path`` as it is at the git revision ``rev`` (None: it does not exist
    there), and its label (``REV:path/in/repo.yaml``). Its ``extends:`` bases are read at
    ``rev`` too: the YAML files of the revision under the spec's directory and the current
    directory (where bases may live) are laid out in a temporary directory, and the spec is
    loaded there, from the mirror of the current directory."""
    if rev.startswith("-"):
        raise _usage(f"--rev takes a git revision, but got {rev!r}")
    spec_file = path.resolve()
    top = Path(_git(["rev-parse", "--show-toplevel"], spec_file.parent).decode().strip())
    try:
        rel = spec_file.relative_to(top)
    except ValueError:
        raise SweepspecError(
            Problem(f"not inside the git repository {top}", location=Location(str(path)))
        ) from None
    label = f"{rev}:{rel.as_posix()}"
    _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], top, what=f"revision {rev!r}")
    cwd = Path.cwd().resolve()
    here = cwd.relative_to(top) if cwd.is_relative_to(top) else None
    roots = sorted({rel.parent.as_posix(), *([here.as_posix()] if here is not None else [])})
    files = _yaml_files(top, rev, roots)
    if rel.as_posix() not in files:
        return None, label
    with tempfile.TemporaryDirectory(prefix="sweepspec-diff-") as tmp:
        root = Path(tmp)
        for name, blob in _blobs(top, files).items():
            target = root / name
            if not target.resolve().is_relative_to(root.resolve()):
                continue  # a path git would not hold anyway
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        mirror = root / here if here is not None else None
        if mirror is not None:
            mirror.mkdir(parents=True, exist_ok=True)
        with contextlib.chdir(mirror) if mirror is not None else contextlib.nullcontext():
            raw = (root / rel).read_bytes()
            loaded = load_text(raw, label, spec_path=root / rel, feasibility=False)
    return loaded, label


def _git(args: list[str], cwd: Path, what: str = "", stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise SweepspecError(Problem("--rev needs git, which is not installed")) from None
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f"unknown {what}" if what else (reason[-1] if reason else f"git {args[0]} failed")
        raise SweepspecError(Problem(f"git: {detail}", code="git"))
    return proc.stdout


def _yaml_files(top: Path, rev: str, roots: list[str]) -> dict[str, str]:
    """path -> blob id of the regular YAML files of ``rev`` under ``roots``."""
    out = {}
    listing = _git(["ls-tree", "-r", "-z", rev, "--", *roots], top)
    for entry in listing.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, name = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[0] in ("100644", "100755") and name.endswith(YAML):
            out[name] = parts[2]
    return out


def _blobs(top: Path, files: dict[str, str]) -> dict[str, bytes]:
    """The contents of ``files`` (path -> blob id), read in one ``git cat-file --batch``."""
    names = list(files)
    data = _git(
        ["cat-file", "--batch"], top, stdin="".join(f"{files[n]}\n" for n in names).encode()
    )
    out: dict[str, bytes] = {}
    pos = 0
    for name in names:
        end = data.index(b"\n", pos)
        size = int(data[pos:end].split()[2])
        out[name] = data[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return out


# -- output ------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    a, b, labels = _sides(args)
    if a is None:
        return _new_file(args, labels)
    changes = diff_specs(a, b)
    incompatible = _compatibility(a, b)
    run = _existing_run(b)
    if args.format == "json":
        data = {
            "a": labels[0],
            "b": labels[1],
            "changed": bool(changes),
            "changes": [{**asdict(c), "group": c.group} for c in changes],
            "resumable": not incompatible,
            "incompatible": incompatible,
            "run": run,
        }
        print(json.dumps(data, indent=2, default=str))
    elif args.format == "github":
        print(_markdown(changes, incompatible, run, labels))
    else:
        print(_text(changes, incompatible, run))
    return 1 if args.exit_code and changes else 0


def _sides(args: argparse.Namespace) -> tuple[LoadedSpec | None, LoadedSpec, tuple[str, str]]:
    if args.rev is not None:
        if args.b is not None:
            raise _usage("diff --rev REV takes one spec: it compares it with its version at REV")
        b = load_spec(args.a, feasibility=False)
        a, label = load_at_revision(Path(args.a), args.rev)
        return a, b, (label, args.a)
    if args.b is None:
        raise _usage("diff takes two specs (A B), or one with --rev REV")
    return (
        load_spec(args.a, feasibility=False),
        load_spec(args.b, feasibility=False),
        (args.a, args.b),
    )


def _usage(message: str) -> SweepspecError:
    return SweepspecError(Problem(message, code="usage"), exit_code=2)


def _new_file(args: argparse.Namespace, labels: tuple[str, str]) -> int:
    """The spec did not exist at the revision: all of it is new."""
    text = f"{labels[1]} is new: it does not exist at {args.rev}"
    if args.format == "json":
        print(json.dumps({"a": labels[0], "b": labels[1], "changed": True, "new": True}))
    else:
        print(text)
    return 1 if args.exit_code else 0


def _grouped(changes: list[Change]) -> dict[str, list[Change]]:
    out: dict[str, list[Change]] = {}
    for group in (*GROUPS, "other"):
        rows = [c for c in changes if c.group == group]
        if rows:
            out[group] = rows
    return out


def _text(changes: list[Change], incompatible: list[str], run: dict[str, Any]) -> str:
    if not changes:
        return f"no changes\n{_run_text(run)}"
    lines = []
    for group, rows in _grouped(changes).items():
        lines.append(f"{group}:")
        lines += [f"  {c.text()}" for c in rows]
    if incompatible:
        lines.append(f"a run of A cannot resume as B: {', '.join(incompatible)} changed")
    else:
        lines.append("a run of A can resume as B (space, objective, searcher, scheduler alike)")
    lines.append(_run_text(run))
    return "\n".join(lines)


def _markdown(
    changes: list[Change], incompatible: list[str], run: dict[str, Any], labels: tuple[str, str]
) -> str:
    lines = [f"Compared with `{_md(labels[0])}`:", ""]
    if not changes:
        return "\n".join([*lines, "No changes.", "", _md(_run_text(run))])
    lines += ["| | key | before | after | |", "| --- | --- | --- | --- | --- |"]
    for group, rows in _grouped(changes).items():
        for c in rows:
            before = "" if c.before is None else f"`{_md(_show(c.before))}`"
            after = "" if c.after is None else f"`{_md(_show(c.after))}`"
            note = c.note or ("added" if c.before is None else "removed" if c.after is None else "")
            lines.append(f"| {group} | `{_md(c.path)}` | {before} | {after} | {_md(note)} |")
    lines.append("")
    if incompatible:
        lines.append(
            f"**A run of the old spec cannot resume as this one** "
            f"({_md(', '.join(incompatible))} changed)."
        )
    else:
        lines.append("A run of the old spec can resume as this one.")
    lines += ["", _md(_run_text(run))]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell (and outside one)."""
    return text.replace("|", "\\|").replace("\n", " ")
