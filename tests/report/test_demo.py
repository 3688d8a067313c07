"""The demo's whole path in quick mode: synth -> train -> score by mSCR -> real data -> report."""

import json
import math
import os
from pathlib import Path

import pytest

from mirstd.report.demo import pd_at_fa, run_demo, table1

SHARED = Path(os.environ.get("MIRSTD_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared"))


def test_pd_at_fa_interpolates_on_log_fa():
    curve = {"fa": [1e-6, 1e-4, 1e-2], "pd": [0.2, 0.6, 0.9]}
    assert pd_at_fa(curve, 1e-5) == pytest.approx(0.4)
    assert pd_at_fa(curve, 1e-4) == pytest.approx(0.6)
    assert math.isnan(pd_at_fa(curve, 1e-7))  # below the lowest reached Fa: unknown, not zero
    assert math.isnan(pd_at_fa(None, 1e-5))


def test_pd_at_fa_does_not_interpolate_from_a_zero_fa_point():
    # Fa = 0 at a high threshold, then 1e-3: at 1e-5 only the Fa = 0 point is reached (Pd 0.3); the
    # old log interpolation from a 1e-12 floor gave 0.77, a value the sweep never measured there.
    curve = {"fa": [1e-3, 0.0, 0.0, 1e-1], "pd": [0.9, 0.1, 0.3, 1.0]}
    assert pd_at_fa(curve, 1e-5) == pytest.approx(0.3)
    assert pd_at_fa(curve, 0.0) == pytest.approx(0.3)
    assert pd_at_fa(curve, 1e-3) == pytest.approx(0.9)
    assert pd_at_fa(curve, 1e-2) == pytest.approx(0.95)  # halfway in log10 between 1e-3 and 1e-1
    assert pd_at_fa(curve, 1.0) == pytest.approx(1.0)


def test_table1_marks_box_metrics_as_approximate():
    res = {"iou[box_as_mask]": 0.5, "pd[centroid:box_as_mask]": 0.75, "fa[centroid:box_as_mask]": 2e-5}
    row = {
        "label": "boxes",
        "params": 10,
        "results": res,
        "pd_at_fa_low": float("nan"),
        "pd_at_fa_high": 0.25,
    }
    text = table1([row])
    assert (
        "| boxes | 10 | – | – | – | – | – | – | ≈50.00 | ≈75.00 | ≈20.00 | – | 25.00 | – |"
        in text.splitlines()
    )


def test_quick_demo_writes_report(tmp_path):
    real = SHARED / "data" / "airground-real"
    report = run_demo(
        out=tmp_path, preset="smoke", quick=True, methods=["tophat", "resunet"],
        real=real if real.is_dir() else None, real_stride=50,
    )  # fmt: skip
    text = report.read_text()
    assert "| Top-Hat | 0 |" in text and "| ResUNet (single frame) |" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["label"] for r in data["rows"]] == ["Top-Hat", "ResUNet (single frame)"]
    tophat = data["rows"][0]["results"]
    assert 0.0 <= tophat["iou"] <= 1.0 and tophat["frames"] > 0 and 0.0 <= tophat["ap50"] <= 1.0
    assert (tmp_path / "runs" / "segment" / "resunet" / "weights" / "best.pt").is_file()
    assert (tmp_path / "pdfa.png").stat().st_size > 1000 and (tmp_path / "roc.png").is_file()
    if real.is_dir():
        assert data["real"][0]["results"]["frames"] == 16  # 8 sequences x key frames 0 and 50


def test_unknown_method_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "demo"
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['foo'\]; valid: pstfnet"):
        run_demo(out=out, methods=["foo"])
    assert not out.exists()


def test_quick_demo_pstfnet_starts_from_the_demos_resunet(tmp_path):
    import yaml

    run_demo(out=tmp_path, preset="smoke", quick=True, methods=["tophat", "pstfnet"], real=None)
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["label"] for r in data["rows"]] == ["Top-Hat", "PSTFNet"]  # the ResUNet has no row
    source = tmp_path / "runs" / "segment" / "resunet" / "weights" / "best.pt"
    stages = list(data["timings"])
    assert source.is_file() and stages.index("train resunet") < stages.index("train pstfnet")
    args = yaml.safe_load((tmp_path / "runs" / "segment" / "pstfnet" / "args.yaml").read_text())
    assert args["pretrained"] == str(source)
    assert data["rows"][1]["started_from"] == "resunet"
    assert "(started from the demo's resunet)" in (tmp_path / "report.md").read_text()
