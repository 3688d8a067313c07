"""FLOP counting against hand counts (spec E11) and the profile command."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from mirstd.metrics.efficiency import count_flops, count_params, gemm_rate, profile_model
from mirstd.models.base import SegmentMethod


def _e11_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 1, 1))


def test_e11_conv_flops():
    total, per = count_flops(_e11_net(), torch.rand(1, 3, 16, 16))
    assert total == 2 * (3 * 8 * 9 * 16 * 16 + 8 * 16 * 16) == 114_688
    assert per["Sequential.0"] == 110_592 and per["Sequential.3"] == 4_096


def test_e11_linear_bmm_flops():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(30, 64, bias=False)

        def forward(self, x, a, b):
            return self.lin(x).sum() + torch.bmm(a, b).sum()

    total, _ = count_flops(M(), (torch.rand(2, 5, 30), torch.rand(4, 7, 3), torch.rand(4, 3, 6)))
    assert total == 39_408


class _Clip(SegmentMethod):
    """Tiny clip model: Conv3d over T=5 collapsing time, a 1x1 head, and an unused branch."""

    in_channels = 3
    num_frames = 5

    def __init__(self, width=4):
        super().__init__()
        self.enc = nn.Conv3d(3, width, (5, 3, 3), padding=(0, 1, 1))
        self.head = nn.Conv2d(width, 1, 1)
        self.unused = nn.Linear(3, 3)

    def forward(self, clip):
        return self.head(self.enc(clip)[:, :, 0])


def test_params_used_and_profile():
    torch.set_num_threads(1)
    m = _Clip()
    p = count_params(m, torch.rand(1, 3, 5, 16, 16))
    assert p == {"params_total": 4 * 3 * 45 + 4 + 4 + 1 + 12, "params_used": 4 * 3 * 45 + 4 + 4 + 1}
    rep = profile_model(m, (1, 3, 5, 16, 16), warmup=1, iters=3, gemm=False)
    assert rep["flops"] == 2 * (4 * 3 * 45 * 256 + 4 * 256) and rep["macs"] * 2 == rep["flops"]
    assert rep["latency_ms_median"] > 0 and rep["iters"] == 3 and rep["dtype"] == "float32"


def test_gemm_rate_positive():
    assert gemm_rate("cpu", n=128, repeats=2) > 1e6


def test_profile_cli_matches_hand_count(tmp_path, capsys):
    from mirstd.cli import main
    from mirstd.models import registry

    name = "_test_tiny_clip"
    registry._load_families()
    assert name not in registry._REGISTRY
    registry._REGISTRY[name] = lambda width=4: _Clip(width)
    try:
        out = tmp_path / "prof.json"
        rc = main(
            [
                "profile",
                f"model={name}",
                "imgsz=16",
                "frames=5",
                "model_args.width=2",
                "warmup=1",
                "iters=2",
                "threads=1",
                f"out={out}",
            ]
        )
        assert rc == 0
        rep = json.loads(out.read_text())
        assert rep["flops"] == 2 * (2 * 3 * 45 * 256 + 2 * 256)
        assert rep["input_shape"] == [1, 3, 5, 16, 16] and rep["model_kwargs"] == {"width": 2}
        assert "FLOPs (FlopCounterMode, = 2xMACs)" in capsys.readouterr().out
        assert rep["gemm_flops_per_s"] > 0 and 0 < rep["achieved_fraction"]
    finally:
        registry._REGISTRY.pop(name, None)
    with pytest.raises(ValueError, match="unknown model"):
        registry.create(name)
