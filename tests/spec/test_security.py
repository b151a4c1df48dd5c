"""validate is safe on hostile specs: no code runs, no process starts, nothing is written,
no user module is imported, and pathological inputs are refused quickly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweepspec.cli import main
from sweepspec.errors import SweepspecError
from sweepspec.load import load_text

REPO = Path(__file__).resolve().parents[2]

HEAD = """\
sweepspec: 1
objective:
  function: train:main
  metric: loss
  mode: min
"""
SPACE = "space:\n  lr: {loguniform: [1.0e-5, 1.0e-1]}\n  name: {choice: [a, b]}\n"


def python(code: str, *, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_tag_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        HEAD + f"space:\n  lr: !!python/object/apply:os.system ['touch {marker}']\n",
        encoding="utf-8",
    )
    assert main(["validate", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert "YAML tags are not allowed" in out
    assert "Traceback" not in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/new:os.system [echo pwned]",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!timestamp 2001-12-14",
        "!<tag:yaml.org,2002:python/object/apply:os.system> [echo]",
    ],
)
def test_every_tag_is_refused(payload: str) -> None:
    with pytest.raises(SweepspecError, match="YAML tag") as info:
        load_text(HEAD + SPACE + f"description: {payload}\n", "evil.yaml")
    assert info.value.problems[0].location.line == 9


AUDIT = """\
import json, os, sys

events = []
WATCHED = ("subprocess.Popen", "os.system", "socket.connect", "os.exec", "os.posix_spawn",
           "os.spawn", "os.fork", "os.forkpty", "ctypes.dlopen", "pickle.find_class",
           "os.startfile", "webbrowser.open")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def hook(event, args):
    if event in WATCHED or event.startswith(("socket.", "subprocess.", "ctypes.")):
        events.append([event, repr(args)[:300]])
    elif event == "open":
        path, mode, flags = (list(args) + [None, None])[:3]
        if isinstance(mode, str):
            writes = any(c in mode for c in "wax+")
        else:
            writes = isinstance(flags, int) and bool(flags & WRITE_FLAGS)
        if writes:
            events.append([event, repr(args)[:300]])


sys.addaudithook(hook)  # before sweepspec is imported: imports are watched too

from sweepspec.cli import main

codes = [main(["validate", "sweeps"]), main(["validate", "tests/data/invalid"]),
         main(["validate", "tests/data/valid"])]
seen = list(events)
open(os.devnull, "w").close()  # a control: the hook does see a write
print("AUDIT " + json.dumps({"codes": codes, "events": seen, "control": events[len(seen):]}))
"""


def test_validate_runs_no_process_socket_or_write() -> None:
    result = python(AUDIT)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("AUDIT "))
    report = json.loads(line.removeprefix("AUDIT "))
    assert report["codes"] == [0, 1, 0]
    assert report["events"] == []
    assert [event for event, _ in report["control"]] == ["open"]


def test_objective_module_is_never_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    package = tmp_path / "canary"
    package.mkdir()
    (package / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').write('canary ran')\n", encoding="utf-8"
    )
    (package / "sub.py").write_text("def main(config, trial):\n    return {}\n", encoding="utf-8")
    (tmp_path / "train.py").write_text(
        f"open({str(marker)!r}, 'w').write('train.py ran')\n", encoding="utf-8"
    )
    for function in ("canary.sub:main", "train.py:main"):
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            HEAD.replace("train:main", function) + SPACE + "searcher: {type: random}\n",
            encoding="utf-8",
        )
        code = (
            "import sys\n"
            "from sweepspec.cli import main\n"
            f"rc = main(['validate', {str(spec)!r}])\n"
            "mine = sorted(m for m in sys.modules if m.startswith(('canary', 'train')))\n"
            "print('RESULT', rc, mine)\n"
        )
        result = python(code, cwd=tmp_path, PYTHONPATH=str(tmp_path))
        assert "RESULT 0 []" in result.stdout, result.stdout + result.stderr
        assert not marker.exists(), function
    # a control: the canary does leave its marker when it is imported
    python("import canary.sub", cwd=tmp_path, PYTHONPATH=str(tmp_path))
    assert marker.read_text(encoding="utf-8") == "canary ran"


MALICIOUS = [
    "__import__('os').system('touch pwned')",
    "lr.__class__.__bases__[0].__subclasses__()",
    "(lambda: 1)() > 0",
    "[x for x in range(10**9)]",
    "9**9**9**9 > 1",
    "10**10**10 > 1",
    "name * 10**9 == 'a'",
    "open('/etc/passwd').read() == ''",
    "lr if True else 0",
    "globals()['__builtins__']",
    "eval('1') == 1",
    "getattr(lr, 'real') > 0",
    "lr[0] > 1",
    "f'{lr}' == '1'",
    "(lr := 1) > 0",
    "import os",
    "lr > 0; import os",
    "(" * 200 + "lr" + ")" * 200 + " > 0",
    "not " * 1000 + "lr",
    "lr" + " + lr" * 2000 + " > 0",
    "- " * 5000 + "lr > 0",
    "{1: 2} == lr",
    "... == lr",
    "lr @ lr > 0",
    "~lr > 0",
    "await lr",
    "lr.real > 0",
    "max(*[lr]) > 0",
    "min(lr, key=abs) > 0",
    "exp(1000) > 0",
    "lr / 0 > 1",
    "1e308 * 1e308 > lr",
    "name > 1",
    "().__class__",
    "type(lr)",
    "__builtins__",
    "vars()",
    "",
    "'" + "a" * 5000 + "'",
]


@pytest.mark.parametrize("where", ["constraints", "when", "derived"])
def test_malicious_expressions_are_located_errors(where: str) -> None:
    start = time.perf_counter()
    for expr in MALICIOUS:
        quoted = json.dumps(expr)
        if where == "constraints":
            text = HEAD + SPACE + f"constraints:\n  - {quoted}\n"
            line = 10
        elif where == "when":
            text = HEAD + SPACE + f"  x: {{uniform: [0, 1], when: {quoted}}}\n"
            line = 9
        else:
            text = HEAD + SPACE + f"derived:\n  d: {quoted}\n"
            line = 10
        with pytest.raises(SweepspecError) as info:
            load_text(text, "evil.yaml")
        problems = info.value.problems
        assert all(p.location.file == "evil.yaml" for p in problems), expr
        assert problems[0].location.line == line, (expr, problems)
        assert all(len(p.message) < 400 for p in problems), expr
    assert time.perf_counter() - start < 10


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "sweepspec: 1\ndescription:\n" + "".join(f"  {ln}\n" for ln in lines)


def test_alias_bomb_is_refused_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(SweepspecError) as info:
        load_text(_billion_laughs(), "bomb.yaml")
    assert time.perf_counter() - start < 1.0
    assert info.value.problems[0].code == "alias-bomb"
    assert info.value.problems[0].location.line >= 1


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(SweepspecError, match="recursive YAML alias"):
        load_text("sweepspec: 1\nspace: &s {x: *s}\n", "loop.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "sweepspec: 1\nspace: " + "[" * 5000 + "]" * 5000 + "\n",
        "sweepspec: 1\nspace: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        "sweepspec: 1\n" + "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n",
    ],
    ids=["flow-lists", "flow-maps", "block-maps"],
)
def test_deep_nesting_is_refused(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SweepspecError, match="nesting") as info:
        load_text(text, "deep.yaml")
    assert time.perf_counter() - start < 2.0
    assert info.value.problems[0].code == "too-deep"
    assert info.value.problems[0].location.line >= 1


def test_huge_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text(HEAD + SPACE + "description: " + "x" * 2_000_000 + "\n", encoding="utf-8")
    start = time.perf_counter()
    assert main(["validate", str(spec)]) == 1
    assert time.perf_counter() - start < 1.0
    out, _ = capsys.readouterr()
    assert "file is too large" in out
    assert len(out) < 300


def test_huge_values_are_not_echoed_whole() -> None:
    text = HEAD + SPACE + f"trials: {{num_samples: {'x' * 5000}, timeout: {'y' * 5000}}}\n"
    with pytest.raises(SweepspecError) as info:
        load_text(text, "big.yaml")
    assert len(info.value.problems) == 2
    assert all(len(p.message) < 300 for p in info.value.problems)
