"""``mirstd demo`` writes ``report.html`` beside ``report.md``: the same Table-1 (by mSCR group) and
real-data tables, the plot PNGs by relative path and the run's meta; it renders in headless Chromium."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from mirstd.report.demo import write_report

# a 1x1 PNG: the report only refers to the plot files, it never reads them
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class FakeDataset:
    num_frames = 8

    def __init__(self) -> None:
        self._test = [
            SimpleNamespace(name="seq_low", meta={"mSCR": 1.5}),
            SimpleNamespace(name="seq_high", meta={"mSCR": 4.0}),
        ]

    def split(self, name: str) -> list[SimpleNamespace]:
        assert name == "test"
        return self._test

    def __len__(self) -> int:
        return 5


def _res(iou: float, pd: float, fa: float, boxes: bool = False) -> dict[str, float]:
    if boxes:
        return {"iou[box_as_mask]": iou, "pd[centroid:box_as_mask]": pd, "fa[centroid:box_as_mask]": fa}
    return {"iou": iou, "niou": iou - 0.01, "pd[centroid]": pd, "fa[centroid]": fa, "auc[roc]": 0.9}


def _rows(tmp_path: Path) -> list[dict]:
    pst = {**_res(0.6123, 0.9, 2e-5), "ap50": 0.75, "frames": 16}
    pst["by_scr"] = {"low": _res(0.4567, 0.8, 3e-5), "high": _res(0.7012, 1.0, 1e-5)}
    top = {**_res(0.2, 0.5, 1e-4), "ap50": 0.1, "frames": 16}
    top["by_scr"] = {"low": _res(0.1, 0.4, 2e-4), "high": _res(0.3, 0.6, 5e-5)}
    smf = {**_res(0.5, 0.75, 2e-5, boxes=True), "ap50": 0.6, "frames": 16}
    smf["by_scr"] = {"low": _res(0.45, 0.7, 3e-5, boxes=True), "high": _res(0.55, 0.8, 1e-5, boxes=True)}
    return [
        {"key": "pstfnet", "label": "PSTFNet", "params": 12345, "results": pst, "pd_at_fa_low": 0.4321,
         "run": str(tmp_path / "runs" / "pstfnet")},
        {"key": "tophat", "label": "Top-Hat", "params": 0, "results": top, "pd_at_fa_low": float("nan"),
         "run": None},
        {"key": "smfnet", "label": "SMFNet (boxes)", "params": 999, "results": smf, "pd_at_fa_low": 0.5,
         "run": str(tmp_path / "runs" / "smfnet")},
    ]  # fmt: skip


def _write(tmp_path: Path, real: bool = True, quick: bool = True) -> Path:
    plots = []
    for name in ("roc.png", "pdfa.png", "low_roc.png", "low_pdfa.png"):
        (tmp_path / name).write_bytes(PNG)
        plots.append(tmp_path / name)
    real_rows = []
    if real:
        real_rows = [
            {"label": "PSTFNet", "results": {"pd[point]": 0.6543, "fa_per_frame[point]": 0.25,
                                             "fa[point]": 3e-6, "frames": 16}},
            {"label": "Top-Hat", "results": {"pd[point]": 0.3, "fa_per_frame[point]": 2.0,
                                             "fa[point]": 4e-5, "frames": 16}},
        ]  # fmt: skip
    timings = {"synthesise": 1.0, "train pstfnet": 12.5, "total": 42.0}
    md = write_report(
        tmp_path, _rows(tmp_path), real_rows, tmp_path / "airground-real" if real else None, 10, plots,
        timings, FakeDataset(), "demo", quick, seed=7, device="cpu",
    )  # fmt: skip
    assert md == tmp_path / "report.md" and md.is_file()
    return tmp_path / "report.html"


def test_demo_writes_html_report_with_tables_plots_and_meta(tmp_path):
    page = _write(tmp_path)
    assert page.is_file()
    text = page.read_text()
    # Table 1 by mSCR group, the real-data table, runs and timings: six sortable tables (+ the meta one)
    assert text.count('<table class="sortable">') == 6 and '<table class="meta">' in text
    for h in ('id="low"', 'id="high"', 'id="all"', 'id="real"', 'id="runs"', 'id="time"'):
        assert h in text
    for name in ("PSTFNet", "Top-Hat", "SMFNet (boxes)"):
        assert f">{name}</td>" in text
    low = text.split('id="low"')[1].split("<h2")[0]
    assert ">45.67</td>" in low and ">43.21</td>" in low  # IoU and Pd@Fa=1e-5 of the mSCR < 3 group
    assert ">70.12</td>" in text.split('id="high"')[1].split("<h2")[0]
    allg = text.split('id="all"')[1].split("<h2")[0]
    assert ">61.23</td>" in allg and ">75.00</td>" in allg and ">12,345</td>" in allg
    assert ">50.00</td>" in allg  # the box model's box-as-mask IoU, flagged in the notes
    assert "boxes filled as masks" in text and "SMFNet (boxes)." in text
    real = text.split('id="real"')[1].split("<h2")[0]
    assert (
        "airground-real" in text and ">65.43</td>" in real and ">0.250</td>" in real and ">3.00</td>" in real
    )
    # the run's meta: seed, versions, wall time, the quick-mode warning, the training recipes
    assert "<th>seed</th><td>7</td>" in text and "<th>demo wall time</th><td>42 s</td>" in text
    assert "<th>mirstd</th>" in text and "torch / numpy / python" in text and 'class="warn"' in text
    assert "<th>budget</th>" not in text and "<th>protocol</th>" not in text  # bench-only rows left out
    assert "training recipes" in text and "target_crop_prob" in text
    # every image refers to an existing file by a relative path; mSCR < 3 plots sit with that table
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert sorted(srcs) == ["low_pdfa.png", "low_roc.png", "pdfa.png", "roc.png"]
    for src in srcs:
        assert not Path(src).is_absolute() and (page.parent / src).is_file()
    assert "low_roc.png" in low and "low_roc.png" not in allg and 'src="roc.png"' in allg


def test_demo_html_without_real_data(tmp_path):
    text = _write(tmp_path, real=False, quick=False).read_text()
    assert 'id="real"' not in text and text.count('<table class="sortable">') == 5
    assert 'class="warn"' not in text


def test_demo_html_renders_in_headless_chromium(tmp_path):
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("chromium not on PATH (apt-get install chromium): DOM check of report.html skipped")
    page = _write(tmp_path)
    cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page.as_uri()]  # fmt: skip
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Uncaught" not in r.stderr, [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln]
    dom = r.stdout
    assert dom.count('<table class="sortable">') == 6 and dom.count("<img ") == 4
    assert "PSTFNet" in dom and "Top-Hat" in dom and "SMFNet (boxes)" in dom and ">45.67</td>" in dom
