"""``mirstd bench`` at budget=smoke: per-method JSON, results.csv, env.json, report.html with plots and
thumbnails; resume keeps finished methods; bad keys are one line; the report renders in Chromium."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mirstd.report import bench, html
from mirstd.utils.config import ConfigError

METHODS = ["resunet", "tophat"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    t0 = time.perf_counter()
    report = bench.run_bench(protocol="table1", budget="smoke", methods=METHODS, out=out, seed=0)
    return report, time.perf_counter() - t0


def _csv_rows(path: Path, drop=("latency_ms",)) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def test_smoke_table1_writes_json_csv_html_and_pngs(smoke):
    report, seconds = smoke
    root = report.parent
    assert seconds < 90, f"smoke bench took {seconds:.0f} s"
    assert report.name == "report.html" and root.name == "table1"
    for m in METHODS:
        doc = json.loads((root / "methods" / f"{m}.json").read_text())
        assert doc["status"] == "ok" and doc["fingerprint"]["budget"] == "smoke"
        assert set(doc["groups"]) == {"low", "high", "all"}  # one test sequence of each mSCR class
        assert 0.0 <= doc["groups"]["all"]["iou"] <= 1.0 and doc["latency_ms"] > 0
        assert len(doc["thumbs"]) == 2 and (root / "thumbs" / doc["thumbs"][0]["file"]).is_file()
    deep = json.loads((root / "methods" / "resunet.json").read_text())
    assert deep["kind"] == "deep" and deep["params"] > 0 and deep["gflops"] > 0
    assert Path(deep["weights"]).is_file()  # best.pt chosen on the val split
    assert deep["fingerprint"]["spec"]["steps"] == 3
    rows = _csv_rows(root / "results.csv", drop=())
    assert [(r["method"], r["group"]) for r in rows] == [
        (m, g) for m in METHODS for g in ("low", "high", "all")
    ]
    assert rows[-1]["params"] == "0" and rows[-1]["gflops"] == ""  # classical: no FLOPs counted
    env = json.loads((root / "env.json").read_text())
    assert env["torch"] and env["mirstd"] and "commit" in env and env["cores"]
    text = report.read_text()
    assert text.count('<table class="sortable">') == 3 and "budget=smoke" in text
    for g in ("low", "high", "all"):
        for p in ("roc", "pdfa"):
            png = root / "plots" / f"{g}_{p}.png"
            assert png.stat().st_size > 1000 and f'src="plots/{g}_{p}.png"' in text
    assert 'src="thumbs/resunet_0.png"' in text and 'src="thumbs/tophat_1.png"' in text


def test_resume_recomputes_only_the_missing_method(smoke, tmp_path, monkeypatch):
    src = smoke[0].parent
    root = tmp_path / "moved" / "table1"  # a moved bench folder still resumes (no paths in the match)
    shutil.copytree(src, root)
    before = _csv_rows(root / "results.csv")
    kept = (root / "methods" / "tophat.json").stat().st_mtime_ns
    (root / "methods" / "resunet.json").unlink()
    calls = []
    real = bench._table1_method
    monkeypatch.setattr(bench, "_table1_method", lambda n, ctx: calls.append(n) or real(n, ctx))
    bench.run_bench(budget="smoke", methods=METHODS, out=root.parent, resume=True)
    assert calls == ["resunet"]
    assert (root / "methods" / "tophat.json").stat().st_mtime_ns == kept
    assert (root / "methods" / "resunet.json").is_file()
    assert _csv_rows(root / "results.csv") == before  # same seed, same recipe: the same tables
    # another seed, budget or recipe does not match a kept result
    doc = json.loads((root / "methods" / "tophat.json").read_text())
    fp = doc["fingerprint"]
    assert bench.load_result(root / "methods" / "tophat.json", fp) is not None
    for change in ({"seed": 1}, {"budget": "cpu"}, {"spec": {"model": "tophat", "k": 1}}):
        assert bench.load_result(root / "methods" / "tophat.json", {**fp, **change}) is None


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path, capsys):
    bench.run_bench(budget="smoke", methods=["resunet"], out=tmp_path, thumbs=0)
    root = tmp_path / "table1"
    before = _csv_rows(root / "results.csv")
    (root / "methods" / "resunet.json").unlink()  # as if killed after the training's last.pt
    capsys.readouterr()
    bench.run_bench(budget="smoke", methods=["resunet"], out=tmp_path, resume=True, thumbs=0)
    assert "train resunet: resumed" in capsys.readouterr().err
    assert _csv_rows(root / "results.csv") == before
    # another recipe (seed) cannot continue that run: it starts afresh
    bench.run_bench(budget="smoke", methods=["resunet"], out=tmp_path, resume=True, thumbs=0, seed=1)
    err = capsys.readouterr().err
    assert "not resuming" in err and "starting afresh" in err


def test_unknown_keys_and_values_name_the_closest(capsys):
    from mirstd.cli import main

    with pytest.raises(ConfigError, match="did you mean budget"):
        bench.main(["budgt=smoke"])
    with pytest.raises(ConfigError, match="did you mean cpu-quick"):
        bench.run_bench(budget="cpu_quick")
    with pytest.raises(ConfigError, match="did you mean tophat"):
        bench.run_bench(methods=["tophatt"])
    assert main(["bench", "protocl=table1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'protocl'" in err and "protocol" in err


def test_default_methods_per_budget():
    quick = bench.default_methods("table1", "cpu-quick")
    assert quick[:4] == ["pstfnet", "dnanet_dtum", "resunet", "dnanet"] and "tophat" in quick
    assert "ipi" not in quick and "ipi" in bench.default_methods("table1", "cpu")
    r = bench.train_recipe("dnanet_dtum", "cpu-quick", "synth:smoke", 0, None)
    assert r["model_args"]["channels"] == [4, 8, 16, 32, 64] and r["steps"] == 300
    assert "model_args" not in bench.train_recipe("dnanet", "gpu", "d", 0, None)  # paper widths


def test_ablation_variants_are_the_papers_switches():
    from mirstd.models import create

    assert bench.default_methods("ablation", "cpu") == list(bench.ABLATION_VARIANTS)
    r = bench.ablation_recipe("no_ptam_l12", "cpu-quick", "synth:smoke", 0, None)
    assert r["model"] == "pstfnet" and r["model_args"] == {"grid_size": 4, "ptam_levels": [2, 3]}
    assert r["steps"] == bench.BUDGET_SPECS["cpu-quick"]["ablation"]["steps"]
    # every row of Tables 3-6 names a variant, and every variant builds with its switches
    used = {v for _, rows in bench.ABLATION_TABLES.values() for v, _, _ in rows}
    assert used == set(bench.ABLATION_VARIANTS)
    n = {v: sum(p.numel() for p in create("pstfnet", **a["args"]).parameters())
         for v, a in bench.ABLATION_VARIANTS.items()}  # fmt: skip
    assert (
        n["pstfnet"] > n["no_mc"] and n["pstfnet"] > n["no_sa"] and n["pstfnet"] > n["ptam"] > n["backbone"]
    )
    assert n["no_ptam_l1"] > n["no_ptam_l12"] > n["no_ptam_l123"] > n["msfm"]
    with pytest.raises(ConfigError, match="did you mean no_sa"):
        bench.resolve_methods(["no_saa"], "ablation", "smoke")


def test_smoke_ablation_tables_in_the_papers_order(tmp_path):
    report = bench.run_bench(protocol="ablation", budget="smoke", methods=["pstfnet", "backbone", "no_sa"],
                             out=tmp_path, thumbs=0)  # fmt: skip
    root = report.parent
    doc = json.loads((root / "methods" / "no_sa.json").read_text())
    assert doc["status"] == "ok" and doc["label"] == "w/o SA"
    assert doc["fingerprint"]["spec"]["model_args"]["sa"] is False
    text = report.read_text()
    t3 = text.split('id="table3"')[1].split("</table>")[0]
    assert t3.index("Backbone (ResUNet)") < t3.index("PSTFNet") and "37.17" in t3 and "64.19" in t3
    t6 = text.split('id="table6"')[1].split("</table>")[0]
    assert t6.index("w/o SA") < t6.index("PSTFNet") and "w/o MC" not in t6  # not run: left out
    t4 = text.split('id="table4"')[1].split("</table>")[0]
    assert "PSTFNet" in t4 and "w/o PTAM L1" not in t4 and "w/o PTAM<" not in t4  # only PSTFNet ran
    md = bench.markdown_tables(root)
    assert "**Table 3 — components (all test sequences)**" in md and "| Backbone (ResUNet) |" in md


def test_smoke_smfnet_protocol_boxes_pr_and_paper_cost(tmp_path):
    report = bench.run_bench(protocol="smfnet", budget="smoke", out=tmp_path, thumbs=0)
    root = report.parent
    docs = {m: json.loads((root / "methods" / f"{m}.json").read_text()) for m in ("smfnet", "sstnet")}
    for d in docs.values():
        assert d["status"] == "ok" and d["kind"] == "deep"
        row = d["groups"]["all"]
        assert row["ap50"] is None or 0.0 <= row["ap50"] <= 1.0
        assert "pr" in d["curves"]["all"] and len(d["curves"]["all"]["pr"]["precision"]) == 101
        assert d["fingerprint"]["spec"]["model_args"]["width"] == 0.25
        assert d["paper_latency_input"] == [1, 3, 5, 512, 512]
    # the SMFNet README's claim: about a third of SSTNet's FLOPs (spec: 41.94 vs 122.87 GFLOPs)
    ratio = docs["smfnet"]["paper_gflops"] / docs["sstnet"]["paper_gflops"]
    assert 0.3 < ratio < 0.4, ratio
    assert 9.5e6 < docs["smfnet"]["paper_params"] < 1.0e7
    assert "AP50 %" in report.read_text() and (root / "plots" / "all_pr.png").is_file()


def test_detection_image_marks_hits_misses_and_false_alarms(tmp_path):
    frame = np.zeros((32, 32), np.float32)
    scores = np.zeros((32, 32), np.float32)
    scores[10, 10] = scores[25, 5] = 0.9  # a hit near GT (10, 10) and a false alarm
    gt = np.array([[10.4, 9.8], [20.0, 20.0]])  # (x, y): the second is missed
    counts = html.detection_image(frame, scores, None, gt, tmp_path / "t.png")
    assert counts == {"hits": 1, "misses": 1, "false_alarms": 1}
    assert (tmp_path / "t.png").stat().st_size > 100


def test_table_cells_format_and_sort_keys():
    assert html.cell(0.1234, "pct") == ("12.34", "0.1234")
    assert html.cell(2.5e-6, "fa") == ("2.50", "2.5e-06")
    assert html.cell(None, "pct") == ("–", "")
    t = html.table_html([("iou", "IoU %", "pct")], [{"method": "<b>", "iou": 0.5}])
    assert "&lt;b&gt;" in t and 'data-v="0.5"' in t


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("no chromium: apt-get install chromium")
    return exe


def _browser(exe: str, url: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        exe,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})  # fmt: skip


def test_report_renders_in_headless_chromium(smoke, tmp_path):
    exe = _chromium()
    report = smoke[0]
    # the console capture works: a page with a script error shows up as 'Uncaught' on stderr
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>notDefined();</script></body></html>")
    assert "Uncaught" in _browser(exe, bad.as_uri(), "--dump-dom").stderr
    r = _browser(exe, report.as_uri(), "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Uncaught" not in r.stderr, [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln]
    dom = r.stdout
    assert dom.count('<table class="sortable">') == 3 and dom.count("<img ") >= 6 + 4
    assert "ResUNet (single frame)" in dom and "Top-Hat" in dom
    # the sort script works: click the IoU header (ascending, then descending) and read the DOM back
    page = report.with_name("sorted_check.html")
    click = '<script>var h=document.querySelectorAll("table.sortable")[2].tHead.rows[0].cells[1];h.click();h.click();</script>'
    page.write_text(report.read_text().replace("</body>", click + "</body>"))
    try:
        sorted_dom = _browser(exe, page.as_uri(), "--dump-dom").stdout
    finally:
        page.unlink()
    all_table = sorted_dom.split('<table class="sortable">')[3]
    ious = [float(v) for v in _data_values(all_table, column=1)]
    assert ious == sorted(ious, reverse=True) and 'class="desc"' in all_table
    shot = tmp_path / "report.png"
    r = _browser(exe, report.as_uri(), f"--screenshot={shot}", "--window-size=1200,1600")
    assert r.returncode == 0 and "Uncaught" not in r.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000


def _data_values(table: str, column: int) -> list[str]:
    body = table.split("<tbody>")[1].split("</tbody>")[0]
    out = []
    for tr in body.split("<tr>")[1:]:
        cells = tr.split("<td")[1:]
        out.append(cells[column].split('data-v="')[1].split('"')[0])
    return out


def test_real_protocol_skips_methods_without_weights(tmp_path):
    from mirstd.data.protocols import find_real

    try:
        find_real("airground")
    except FileNotFoundError:
        pytest.skip("real:airground is not in any data root")
    report = bench.run_bench(protocol="real", budget="smoke", methods=["resunet", "tophat"], out=tmp_path)
    root = report.parent
    from mirstd.models.pretrained import pretrained_path

    res = json.loads((root / "methods" / "resunet.json").read_text())
    if pretrained_path("resunet") is None:
        assert res["status"] == "skipped" and "no shipped weights" in res["reason"]
        assert "no shipped weights" in report.read_text()
    top = json.loads((root / "methods" / "tophat.json").read_text())
    assert top["status"] == "ok" and top["groups"]["airground_test"]["frames"] == 2  # frames 0, 50 of 1 seq
    assert (root / "results.csv").is_file() and (root / "plots" / "airground_test_pd_fapf.png").is_file()


@pytest.mark.slow
def test_sigkill_then_resume_keeps_finished_methods(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "mirstd",
        "bench",
        "budget=smoke",
        f"out={tmp_path}",
        "methods=[tophat,resunet]",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = tmp_path / "table1" / "methods" / "tophat.json"
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while not done.is_file() and p.poll() is None and time.time() - t0 < 120:
            time.sleep(0.05)
        assert done.is_file()
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait(30)
    kept = done.stat().st_mtime_ns
    r = subprocess.run([*cmd, "resume=true"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "tophat: kept" in r.stderr and done.stat().st_mtime_ns == kept
    rows = _csv_rows(tmp_path / "table1" / "results.csv")
    assert [x["method"] for x in rows] == ["tophat"] * 3 + ["resunet"] * 3
    # the same tables as a bench that was never killed (latency is a measurement: not compared)
    ref = tmp_path / "uninterrupted"
    cmd_ref = [*cmd[:-2], f"out={ref}", cmd[-1]]
    r = subprocess.run(cmd_ref, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert rows == _csv_rows(ref / "table1" / "results.csv")
