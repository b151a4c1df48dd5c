"""How fast is ``sweepspec validate``?

Generates 60 varied specs (the example sweeps verbatim, plus variants with other budgets,
seeds, names and extra parameters) into a temporary directory, then measures

* the whole process ``python -m sweepspec validate <dir>`` (subprocess, interpreter start-up and
  imports included): median of 5 runs after one untimed warm-up run;
* the same process split up: bare interpreter start-up (``python -c pass``) and
  ``import sweepspec.commands.validate_cmd`` (median of 5 each);
* in process, ``load_spec`` on each spec: a first pass (lazy imports included), then each spec
  warm (best of 3), split into reading the YAML, the feasibility sample and the rest.

Goal (from the issue): 60 specs in well under 1.5 s in all.

    python benchmarks/validate_speed.py            # print a markdown table
    python benchmarks/validate_speed.py --write    # also update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = ROOT / "sweeps"
DOC = ROOT / "docs" / "benchmarks.md"
N_SPECS = 60
RUNS = 5
GOAL_S = 1.5
MODELINE = "# yaml-language-server: $schema=../schemas/sweepspec-v1.json\n"


def _sources() -> list[Path]:
    return sorted(p for p in SWEEPS.glob("*.yaml") if not p.name.startswith("_"))


def _plain(path: Path) -> dict[str, Any]:
    """The spec's plain data, read with sweepspec's own YAML 1.2 reader."""
    from sweepspec.spec.source import load_yaml

    data, _ = load_yaml(path.read_bytes(), str(path))
    assert isinstance(data, dict)
    return data


def _variant(data: dict[str, Any], stem: str, k: int) -> dict[str, Any]:
    """A valid variant of a valid spec: another name, budget, seed and more parameters."""
    out = dict(data)
    out["name"] = f"{stem.replace('_', '-')}-v{k}"
    trials = dict(out.get("trials") or {})
    trials["num_samples"] = 5 + 7 * k
    out["trials"] = trials
    searcher = dict(out.get("searcher") or {})
    if searcher.get("type") != "grid":
        searcher["seed"] = 100 + k
    out["searcher"] = searcher
    space = dict(out.get("space") or {})
    # Finite parameters (so a grid searcher stays valid), one of them nested and conditional.
    for i in range(2 * k):
        space[f"extra_{i}"] = {"int": [1, 8 + i]}
    space["extra_group"] = {
        "depth": {"choice": [1, 2, 3]},
        "gate": {"int": [0, 4], "when": "extra_group.depth >= 2"},
    }
    out["space"] = space
    return out


def generate(directory: Path, count: int = N_SPECS) -> list[Path]:
    """Write ``count`` valid specs (and the ``_*.yaml`` bases they extend) into ``directory``."""
    for base in SWEEPS.glob("_*.yaml"):
        shutil.copy(base, directory / base.name)
    written: list[Path] = []
    sources = _sources()
    for k in range(3):
        for src in sources:
            if len(written) == count:
                return written
            target = directory / f"{src.stem}_{k}.yaml"
            if k == 0:
                shutil.copy(src, target)  # verbatim: comments, flow style, interpolation
            else:
                text = yaml.safe_dump(
                    _variant(_plain(src), src.stem, k), sort_keys=False, width=100
                )
                target.write_text(MODELINE + text)
            written.append(target)
    if len(written) < count:
        raise SystemExit(f"only {len(written)} specs from {len(sources)} sources; add sweeps")
    return written


def _time_process(argv: list[str], runs: int, *, cpu: list[float] | None = None) -> list[float]:
    """Wall times of ``runs`` runs of ``argv``; CPU times (user + sys) go to ``cpu``."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
    return times


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(directory: Path, files: list[Path]) -> dict[str, Any]:
    py = sys.executable
    validate = [py, "-m", "sweepspec", "validate", str(directory)]
    _time_process(validate, 1)  # warm-up: disk cache, .pyc files
    whole_cpu: list[float] = []
    whole = _time_process(validate, RUNS, cpu=whole_cpu)
    bare = _time_process([py, "-c", "pass"], RUNS)
    imports = _time_process([py, "-c", "import sweepspec.commands.validate_cmd"], RUNS)
    omegaconf = _time_process([py, "-c", "import omegaconf"], RUNS)

    from sweepspec.load import load_spec
    from sweepspec.spec.source import load_yaml

    t0 = time.perf_counter()
    for f in files:  # first pass: includes lazy imports (omegaconf for extends/interpolation)
        load_spec(f)
    first_pass = time.perf_counter() - t0
    per_spec, yaml_s, no_feasibility = [], [], []
    for f in files:
        raw = f.read_bytes()
        per_spec.append(_best(lambda f=f: load_spec(f)))
        no_feasibility.append(_best(lambda f=f: load_spec(f, feasibility=False)))
        yaml_s.append(_best(lambda raw=raw, f=f: load_yaml(raw, str(f))))
    return {
        "whole": whole,
        "whole_cpu": whole_cpu,
        "bare": bare,
        "imports": imports,
        "omegaconf": omegaconf,
        "first_pass": first_pass,
        "per_spec": per_spec,
        "yaml": yaml_s,
        "no_feasibility": no_feasibility,
    }


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{nproc} CPUs (nproc) of {cpu}; Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}; "
        f"{load} when the benchmark started"
    )


def render(result: dict[str, Any], count: int, command: str, machine: str) -> str:
    med = statistics.median
    whole = med(result["whole"])
    bare = med(result["bare"])
    imports = med(result["imports"])
    per = result["per_spec"]
    total = sum(per)
    yaml_total = sum(result["yaml"])
    feasibility = sum(max(a - b, 0.0) for a, b in zip(per, result["no_feasibility"], strict=True))
    rest = max(total - yaml_total - feasibility, 0.0)
    lazy = max(result["first_pass"] - total, 0.0)
    verdict = "meets" if whole < GOAL_S else "misses"
    rows = [
        (
            f"**`python -m sweepspec validate DIR`, {count} specs, whole process** "
            f"(median of {RUNS})",
            f"**{whole:.3f} s**",
            f"min {min(result['whole']):.3f} s, max {max(result['whole']):.3f} s",
        ),
        (
            "same, CPU time of the process (user + sys, median)",
            f"{med(result['whole_cpu']):.3f} s",
            "less sensitive than wall time to other load on the machine",
        ),
        (
            "... bare interpreter start-up (`python -c pass`)",
            f"{bare:.3f} s",
            "includes the editable-install `.pth` hook",
        ),
        (
            "... `import sweepspec.commands.validate_cmd`",
            f"{max(imports - bare, 0):.3f} s",
            "pydantic, PyYAML, and building the spec models",
        ),
        (
            "... the specs (the rest of the process)",
            f"{max(whole - imports, 0):.3f} s",
            f"{max(whole - imports, 0) / count * 1000:.1f} ms a spec",
        ),
        (
            "... of which `import omegaconf` (lazy: specs with extends or interpolation)",
            f"{max(med(result['omegaconf']) - bare, 0):.3f} s",
            "measured alone",
        ),
        (
            f"in process: `load_spec` x {count}, first pass",
            f"{result['first_pass']:.3f} s",
            f"~{lazy:.3f} s more than warm: lazy imports, first-use caches",
        ),
        (
            f"in process: `load_spec` x {count}, warm (best of 3 each)",
            f"{total:.3f} s",
            f"median {med(per) * 1000:.1f} ms, max {max(per) * 1000:.1f} ms a spec",
        ),
        (
            "... reading YAML (`spec.source.load_yaml`)",
            f"{yaml_total:.3f} s",
            f"{yaml_total / total:.0%}",
        ),
        (
            "... feasibility sample (1000 configs, specs with constraints)",
            f"{feasibility:.3f} s",
            f"{feasibility / total:.0%}",
        ),
        (
            "... extends, interpolation, pydantic, cross-field checks",
            f"{rest:.3f} s",
            f"{rest / total:.0%}",
        ),
    ]
    lines = [
        "## validate",
        "",
        f"Goal: {count} specs validated in well under {GOAL_S} s, whole process included. "
        f"Result: **{whole:.2f} s** ({verdict} the goal).",
        "",
        "| measurement | time | notes |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"Specs: {count} generated by `benchmarks/validate_speed.py` from `sweeps/` (each example "
        "verbatim, then variants with other names, budgets and seeds and up to 6 extra "
        "parameters, two in a nested group, one of them conditional).",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine}.",
        "",
    ]
    return "\n".join(lines)


def write_section(section: str, doc: Path = DOC) -> None:
    """Replace the ``## validate`` section of ``doc`` (creating the file if needed)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## validate\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the generated specs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    command = "python benchmarks/validate_speed.py" + (" --write" if args.write else "")
    machine = _machine()
    tmp = Path(tempfile.mkdtemp(prefix="sweepspec-bench-"))
    try:
        files = generate(tmp)
        result = measure(tmp, files)
    finally:
        if args.keep:
            print(f"specs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    section = render(result, len(files), command, machine)
    print(section)
    if args.write:
        write_section(section)
        print(f"updated {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
