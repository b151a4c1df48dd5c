"""A spec file as it is at a git revision (``sweepspec diff --rev REV``), with the files its
``extends:`` bases may come from: the regular YAML files of the revision under the spec's
directory and the current directory are laid out in a temporary directory, read from git in
one ``git cat-file --batch``. The caller loads the spec there (from the mirror of the current
directory, so relative bases resolve as they would at the revision)."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sweepspec.errors import Location, Problem, SweepspecError

__all__ = ["YAML", "files_at_revision"]

YAML = (".yaml", ".yml")


@contextlib.contextmanager
def files_at_revision(path: Path, rev: str) -> Iterator[tuple[Path | None, str]]:
    """(the spec at ``path`` as it is at the git revision ``rev``, in a temporary mirror of
    the revision's YAML files; None when it does not exist there) and its label
    (``REV:path/in/repo.yaml``). Inside, the current directory is the mirror of the current
    directory (when it is inside the repository); the mirror is removed on leaving."""
    if rev.startswith("-"):
        message = f"--rev takes a git revision, but got {rev!r}"
        raise SweepspecError(Problem(message, code="usage"), exit_code=2)
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
        yield None, label
        return
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
            yield root / rel, label


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
