"""``sweepspec diff A B`` / ``sweepspec diff --rev REV A``: what changes between two specs that
matters for review: ranges widened or narrowed, parameters added or removed, choices added or
dropped, the budget as a factor, whether a run of the old spec can resume as the new one, and
what the new spec's existing run (if any) would do: resume, extend, or be refused.

``--rev REV`` compares a spec with its version at a git revision (``origin/main`` in a pull
request); its ``extends:`` bases are read at that revision too. ``--format github`` writes
Markdown for a pull-request comment; ``--exit-code`` exits 1 when the specs differ."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sweepspec.errors import Problem, SweepspecError
from sweepspec.load import LoadedSpec, load_spec, load_text
from sweepspec.run.rundir import made_with, spec_changes
from sweepspec.run.session import resume_verdict
from sweepspec.search.diff import GROUPS, Change, diff_specs, show
from sweepspec.spec.revision import files_at_revision

__all__ = ["main"]


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


def main(args: argparse.Namespace) -> int:
    a, b, labels = _sides(args)
    if a is None:
        return _new_file(args, labels)
    changes = diff_specs(a, b)
    incompatible = spec_changes(b, made_with(a))  # a run of A resumes as B when empty
    run = resume_verdict(b)
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
        a, label = _at_revision(Path(args.a), args.rev)
        return a, b, (label, args.a)
    if args.b is None:
        raise _usage("diff takes two specs (A B), or one with --rev REV")
    return (
        load_spec(args.a, feasibility=False),
        load_spec(args.b, feasibility=False),
        (args.a, args.b),
    )


def _at_revision(path: Path, rev: str) -> tuple[LoadedSpec | None, str]:
    """The spec at ``path`` as it is at ``rev`` (None: not there), its bases read there too,
    and its label."""
    with files_at_revision(path, rev) as (file, label):
        if file is None:
            return None, label
        return load_text(file.read_bytes(), label, spec_path=file, feasibility=False), label


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
            before = "" if c.before is None else f"`{_md(show(c.before))}`"
            after = "" if c.after is None else f"`{_md(show(c.after))}`"
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
