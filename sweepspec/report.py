"""One self-contained HTML page of a run, ``<run>/report.html``, written by ``sweepspec results``
for a person or a CI artifact: a summary (counts, best trial, run time), the top trials, the
failures, every plot (embedded as base64 PNG) and the spec text.

Nothing is fetched: no script, no stylesheet or font from elsewhere, images as ``data:`` URLs,
and a Content-Security-Policy that forbids anything else. Every value a user controls (spec
text, names, parameter values, error messages) is escaped.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sweepspec.plots import PLOT_TITLES
from sweepspec.records import STATES, TrialRecord, best_trials, is_finite_number
from sweepspec.run.rundir import RunDir, atomic_write
from sweepspec.spec.read import LoadedSpec
from sweepspec.units import format_duration

__all__ = ["render_report", "write_report"]

PNG = b"\x89PNG\r\n\x1a\n"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; margin: 0;
       color: #1d2430; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 14px 0 10px; border-bottom: 2px solid #d9dde3; }
.sub { color: #5b6573; margin: 0 0 18px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 4px 18px 16px;
          margin-bottom: 18px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 14px 0 0; }
dt { font-weight: bold; color: #44505f; }
dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9em; margin-top: 10px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: right;
         white-space: nowrap; }
th { background: #eef1f4; position: sticky; top: 0; }
td.text, th.text { text-align: left; white-space: normal; }
tr.best td { background: #fff4d6; font-weight: bold; }
.state { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 0.85em; }
.COMPLETE { background: #d8ecff; } .PRUNED { background: #e4e4e4; }
.FAILED { background: #ffd9d6; } .RUNNING { background: #dbf5dd; }
figure { margin: 18px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { color: #44505f; font-weight: bold; margin-bottom: 6px; }
pre { background: #f1f3f5; padding: 10px 12px; overflow-x: auto; font-size: 0.85em;
      white-space: pre-wrap; word-break: break-word; }
.note { color: #5b6573; }
"""


def e(value: Any) -> str:
    """``value`` as HTML text (quotes too: safe inside attributes)."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


def write_report(
    rundir: RunDir,
    loaded: LoadedSpec,
    records: Sequence[TrialRecord],
    plots: Sequence[Path] = (),
    *,
    notes: Sequence[str] = (),
    meta: Mapping[str, Any] | None = None,
    top: int = 10,
) -> Path:
    """Write ``<run>/report.html`` (atomically) and return its path. ``plots``: the PNG files
    to embed (:func:`sweepspec.plots.write_plots`), ``notes``: why a plot is missing,
    ``meta``: the run's ``meta.json`` (run time, budget), ``top``: rows of the trials table."""
    path = rundir.report
    atomic_write(path, render_report(loaded, records, plots, notes=notes, meta=meta, top=top))
    return path


def render_report(
    loaded: LoadedSpec,
    records: Sequence[TrialRecord],
    plots: Sequence[Path] = (),
    *,
    notes: Sequence[str] = (),
    meta: Mapping[str, Any] | None = None,
    top: int = 10,
) -> str:
    """The report as one HTML document (see :func:`write_report`)."""
    spec = loaded.spec
    directions: dict[str, str] = dict(spec.objective.directions)
    meta = meta or {}
    title = f"{spec.run_name}: sweep report"
    body = [
        f"<h1>{e(spec.run_name)}</h1>",
        f'<p class="sub">{e(spec.description or "")}'
        f"{' · ' if spec.description else ''}sweepspec report, generated "
        f"{e(_now())} · backend {e(spec.backend.type)}</p>",
        _summary(records, directions, meta),
        _top_table(records, directions, [p.path for p in spec.sampled_params()], top),
        _failures(records),
        _plots(plots, notes),
        _spec(loaded),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{STYLE}</style></head>\n"
        "<body><main>\n" + "\n".join(part for part in body if part) + "\n</main></body></html>\n"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _summary(
    records: Sequence[TrialRecord], directions: Mapping[str, str], meta: Mapping[str, Any]
) -> str:
    counts = {s: sum(1 for r in records if r.state == s) for s in STATES}
    finished = counts["COMPLETE"] + counts["PRUNED"] + counts["FAILED"]
    budget = meta.get("num_samples")
    of = f" of {e(budget)}" if isinstance(budget, int) else ""
    states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n and s != "RUNNING")
    running = f"; {counts['RUNNING']} running" if counts["RUNNING"] else ""
    rows = [("trials", f"{finished}{of} finished ({states or 'none'}){running}")]
    rows.append(("objective", ", ".join(f"{e(m)} ({e(d)})" for m, d in directions.items())))
    best = best_trials(records, directions)
    if len(directions) == 1 and best:
        b = best[0]
        params = ", ".join(f"{e(k)} = {e(fmt(v))}" for k, v in b.params.items())
        metric = next(iter(directions))
        rows.append(("best trial", f"#{e(b.trial_id)}: {e(metric)} = {e(fmt(b.metrics[metric]))}"))
        rows.append(("its parameters", params or "(none sampled)"))
    elif best:
        rows.append(
            (
                "Pareto front",
                f"{len(best)} trial(s): " + ", ".join(f"#{e(b.trial_id)}" for b in best),
            )
        )
    else:
        rows.append(("best trial", "none yet (no complete trial)"))
    rows.extend(_times(records, meta))
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<section><h2>Summary</h2><dl>{items}</dl></section>"


def _times(records: Sequence[TrialRecord], meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    elapsed = meta.get("elapsed_s")
    if is_finite_number(elapsed):
        rows.append(("run time", e(format_duration(float(elapsed)))))
    starts = [m for m in (_moment(r.started_at) for r in records) if m is not None]
    ends = [m for m in (_moment(r.ended_at) for r in records) if m is not None]
    if starts and ends:
        first, last = min(starts), max(ends)
        span = format_duration((last - first).total_seconds())
        rows.append(("trials ran", f"{e(_utc(first))} to {e(_utc(last))} ({e(span)})"))
    trial_time = sum(r.duration_s for r in records if is_finite_number(r.duration_s))
    if trial_time:
        rows.append(("trial time (sum)", e(format_duration(trial_time))))
    return rows


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ranked(records: Sequence[TrialRecord], directions: Mapping[str, str]) -> list[TrialRecord]:
    """Complete trials first (only they can be best), then pruned ones, each by the first
    metric; the rest after them."""
    metric, mode = next(iter(directions.items()))

    def key(r: TrialRecord) -> tuple[int, float]:
        value = r.metrics.get(metric)
        rank = {"COMPLETE": 0, "PRUNED": 1}.get(r.state, 2)
        if not is_finite_number(value):
            return (rank + 3, 0.0)
        return (rank, -float(value) if mode == "max" else float(value))

    return sorted(records, key=key)


def _top_table(
    records: Sequence[TrialRecord],
    directions: Mapping[str, str],
    params: Sequence[str],
    top: int,
) -> str:
    if not records:
        return '<section><h2>Trials</h2><p class="note">No trial ran yet.</p></section>'
    shown = _ranked(records, directions)[:top]
    front = {b.trial_id for b in best_trials(records, directions)}
    head = ["#", "trial", "state", *(f"{m} ({d})" for m, d in directions.items()), *params]
    head += ["iterations", "duration", "attempts"]
    cells = "".join(f"<th>{e(h)}</th>" for h in head)
    rows = []
    for i, r in enumerate(shown, start=1):
        mark = " ★" if r.trial_id in front else ""
        values = [
            str(i),
            e(r.trial_id) + mark,
            f'<span class="state {e(r.state)}">{e(r.state.lower())}</span>',
            *(e(fmt(r.metrics.get(m))) for m in directions),
            *(e(fmt(r.params.get(p))) for p in params),
            e(r.iterations),
            e(format_duration(r.duration_s)) if is_finite_number(r.duration_s) else "",
            e(r.attempts),
        ]
        row = "".join(f"<td>{v}</td>" for v in values)
        rows.append(f'<tr class="best">{row}</tr>' if mark else f"<tr>{row}</tr>")
    what = "the best trial" if len(directions) == 1 else "on the Pareto front"
    return (
        f"<section><h2>Top {len(shown)} of {len(records)} trials</h2>"
        f'<p class="note">★ {what}; complete trials first, then pruned ones by their last '
        f'reported value.</p><div class="scroll"><table><thead><tr>{cells}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _failures(records: Sequence[TrialRecord]) -> str:
    failed = [r for r in records if r.state == "FAILED"]
    if not failed:
        return ""
    rows = []
    for r in failed:
        text = r.error or "(no message)"
        first = text.strip().splitlines()[-1] if text.strip() else text
        detail = (
            f"<details><summary>{e(first)}</summary><pre>{e(text)}</pre></details>"
            if "\n" in text.strip()
            else e(first)
        )
        cells = f"<td>{e(r.trial_id)}</td><td>{e(r.attempts)}</td>"
        rows.append(f'<tr>{cells}<td class="text">{detail}</td></tr>')
    return (
        f'<section><h2>Failed trials ({len(failed)})</h2><div class="scroll"><table>'
        '<thead><tr><th>trial</th><th>attempts</th><th class="text">error</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _plots(plots: Sequence[Path], notes: Sequence[str]) -> str:
    figures = []
    for path in plots:
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        if not blob.startswith(PNG):
            continue
        caption = PLOT_TITLES.get(path.stem.split("-")[0], path.stem)
        if "-" in path.stem:
            caption += f" (part {path.stem.rsplit('-', 1)[1]})"
        data = base64.b64encode(blob).decode("ascii")
        figures.append(
            f"<figure><figcaption>{e(caption)}</figcaption>"
            f'<img alt="{e(path.name)}" src="data:image/png;base64,{data}"></figure>'
        )
    extra = "".join(f"<li>{e(n)}</li>" for n in notes)
    if not figures and not extra:
        extra = "<li>no plots were drawn</li>"
    listed = f'<ul class="note">{extra}</ul>' if extra else ""
    return f"<section><h2>Plots</h2>{listed}{''.join(figures)}</section>"


def _spec(loaded: LoadedSpec) -> str:
    where = f" ({e(loaded.path)})" if loaded.path else ""
    overrides = (
        f"<p>Overrides: <code>{e(' '.join(loaded.overrides))}</code></p>"
        if loaded.overrides
        else ""
    )
    return f"<section><h2>Spec{where}</h2>{overrides}<pre>{e(loaded.text)}</pre></section>"
