"""``<run>/report.html`` (:mod:`sweepspec.report`): one self-contained page that fetches nothing,
escapes whatever a user wrote, embeds every plot, and renders in a real headless Chromium."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from sweepspec.plots import Plots, write_plots
from sweepspec.records import TrialRecord
from sweepspec.report import render_report, write_report
from sweepspec.run.rundir import RunDir
from sweepspec.spec.read import LoadedSpec
from tests.conftest import unavailable
from tests.test_plots import COST, MIXED, PNG, fake_run, load, trade_off

HOSTILE = '<script>alert("spec")</script> see https://example.com/x.png'
ERROR = (
    'Traceback (most recent call last):\n  File "t.py"\nValueError: <img src=x onerror=alert(1)>'
)
#: attributes that make a browser fetch something
FETCHING = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background"}


class Page(HTMLParser):
    """Every start tag of a page with its attributes, and the text of its <style> blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RunDir, LoadedSpec, list[TrialRecord], Plots]:
    """A two-metric run whose names, description, choices and errors are hostile HTML, with
    its plots drawn."""
    tmp = tmp_path_factory.mktemp("report")
    metrics = {"loss": "min", COST: "min"}
    loaded = load(
        tmp,
        description=HOSTILE,
        objective={"metric": None, "mode": None, "metrics": metrics},
    )
    rundir, records = fake_run(tmp, MIXED, metrics=tuple(metrics))
    trade_off(records)
    for r in records:
        r.params["optimizer"] = (
            "<svg onload=alert(2)>" if r.params["optimizer"] == "sgd" else "adam"
        )
        if r.state == "FAILED":
            r.error = ERROR
    return rundir, loaded, records, write_plots(rundir, loaded.spec, records)


def test_the_report_embeds_every_plot_and_fetches_nothing(run: Any) -> None:
    rundir, loaded, records, plots = run
    path = write_report(rundir, loaded, records, plots.files, meta={"elapsed_s": 75.0})
    assert path == rundir.path / "report.html"
    page = parse(path.read_text(encoding="utf-8"))
    tags = [t for t, _ in page.tags]
    assert not {"script", "link", "iframe", "object", "embed", "base", "frame"} & set(tags)
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)  # no event handler got through
            if name in FETCHING:
                assert value.startswith(("data:", "#")), (tag, name, value[:60])
    assert not any("url(" in s or "@import" in s for s in page.styles)
    (csp,) = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "default-src 'none'" in csp
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == len(plots.files) >= 8
    for img in images:
        assert base64.b64decode(img["src"].split(",", 1)[1]).startswith(PNG)
    assert "pareto.png" in {img["alt"] for img in images}


def test_what_a_user_wrote_is_escaped(run: Any) -> None:
    _, loaded, records, plots = run
    text = render_report(loaded, records, plots.files)
    for raw in ('<script>alert("spec")', "<img src=x onerror", "<svg onload", "<b>cost</b>"):
        assert raw not in text
    assert "&lt;script&gt;alert(&quot;spec&quot;)&lt;/script&gt;" in text  # description + spec
    assert "&lt;b&gt;cost&lt;/b&gt; $x^$" in text  # the metric's name, in the table
    assert "ValueError: &lt;img src=x onerror=alert(1)&gt;" in text  # the error's last line
    assert "&lt;svg onload=alert(2)&gt;" in text


def test_the_summary_counts_and_the_best_trials(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    _, records = fake_run(tmp_path, ["COMPLETE", "PRUNED", "COMPLETE", "FAILED"])
    text = render_report(loaded, records, meta={"num_samples": 10, "elapsed_s": 3725.0})
    assert "4 of 10 finished (2 complete, 1 pruned, 1 failed)" in text
    assert "1h02m05s" in text
    best = min((r for r in records if r.state == "COMPLETE"), key=lambda r: r.metrics["loss"])
    assert f"#{best.trial_id}: loss = {best.metrics['loss']:.6g}" in text
    assert text.count('<tr class="best">') == 1
    assert "no plots were drawn" in text


def test_a_run_without_trials_still_has_a_report(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    rundir = RunDir(tmp_path / "runs" / "empty")
    plots = write_plots(rundir, loaded.spec, [])
    assert plots.files == [] and plots.notes
    path = write_report(rundir, loaded, [], plots.files, notes=plots.notes)
    text = path.read_text(encoding="utf-8")
    assert "No trial ran yet." in text and "none yet (no complete trial)" in text
    assert "no trial has a value yet" in text


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser's path (``$CHROMIUM`` or on PATH); looked up before the run is drawn."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    unavailable("chromium is not installed (scripts/chromium installs Debian's package)")


def test_the_report_renders_in_headless_chromium(chromium: str, run: Any, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib.image import imread

    rundir, loaded, records, plots = run
    path = write_report(rundir, loaded, records, plots.files, notes=plots.notes)
    shot = tmp_path / "shot.png"
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2400",
            path.as_uri(),
        ],
        env={
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "XDG_CACHE_HOME": str(home),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 50_000
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    background = pixels[5, 5]
    drawn = np.any(np.abs(pixels - background) > 0.05, axis=-1).mean()
    assert drawn > 0.1, f"only {drawn:.1%} of the page differs from its background"
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, tables and plots, not a blank or one-colour page
