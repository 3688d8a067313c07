"""Streaming with cached per-frame features equals the full-clip forward on every frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirstd.infer.predictor import Predictor
from mirstd.infer.stream import Stream, supports_stream
from mirstd.models.registry import create

SMALL = {
    "pstfnet": {"channels": (4, 8, 16, 32), "num_frames": 3, "grid_size": 4},
    "dtum": {"channels": (4, 8, 8, 16), "feat_channels": 8, "num_frames": 3},
}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: threading only costs time on a shared CPU
    yield
    torch.set_num_threads(n)


def _randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def _model(name: str, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    m = create(name, **SMALL[name]).eval()
    _randomise_bn(m)
    return m.to(dtype)


def _full_clip(frames: list[torch.Tensor], t: int, i: int, pad: str) -> torch.Tensor:
    first = frames[0] if pad == "repeat" else torch.zeros_like(frames[0])
    seq = [first] * (t - 1) + frames
    return torch.stack(seq[i : i + t], dim=2)  # window ending at frame i


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize(
    ("pad", "dtype"),
    [("repeat", torch.float32), ("zeros", torch.float32), ("skip", torch.float32), ("zeros", torch.float64)],
)
def test_stream_equals_full_clip(name: str, pad: str, dtype: torch.dtype) -> None:
    m = _model(name, dtype)
    assert supports_stream(m)
    t = m.num_frames
    g = torch.Generator().manual_seed(2)
    frames = [torch.rand(1, m.in_channels, 16, 24, generator=g, dtype=dtype) for _ in range(4)]
    s = Stream(m, pad=pad)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for i, f in enumerate(frames):
        out = s.step(f)
        if pad == "skip" and i < t - 1:
            assert out is None
            continue
        if pad == "skip":
            ref = m.predict(torch.stack(frames[i - t + 1 : i + 1], dim=2)).scores
        else:
            ref = m.predict(_full_clip(frames, t, i, pad)).scores
        assert (out.scores - ref).abs().max().item() <= tol, (i, (out.scores - ref).abs().max().item())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_predictor_cache_matches_full(name: str) -> None:
    m = _model(name, torch.float32)
    rng = np.random.default_rng(0)
    frames = [rng.random((14, 21), dtype=np.float32) for _ in range(4)]  # not a multiple of 8
    cached, full = Predictor(m, device="cpu", cache=True), Predictor(m, device="cpu", cache=False)
    assert cached.cached and not full.cached
    for a, b in zip(cached.predict_frames(frames), full.predict_frames(frames), strict=True):
        assert a["scores"].shape == (14, 21)
        assert np.abs(a["scores"] - b["scores"]).max() <= 1e-5


def test_smfnet_falls_back() -> None:
    m = create("smfnet", width=0.25).eval()
    assert not supports_stream(m)
    assert not Predictor(m, device="cpu", cache=True).cached


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"num_frames": 4},
        {"ptam_levels": (1, 3)},
        {"p2d": False},
        {"m3d": False},
        {"gate_act": "sigmoid"},
        {"fast": False},  # no taps: the generic path
    ],
)
def test_pstfnet_cached_taps_equal_full_clip_float64(kw: dict) -> None:
    """PSTFNet's stream path (cached head taps, BN folded, M3D branches only at the window positions
    the last output reads) is the same maths as the full clip: float64 agreement to 1e-10."""
    from mirstd.models.pstfnet import FrameFeatures

    torch.manual_seed(0)
    m = create("pstfnet", channels=(4, 8, 16, 32), grid_size=4, **kw).eval()
    _randomise_bn(m)
    m = m.double()
    t = m.num_frames
    g = torch.Generator().manual_seed(3)
    frames = [torch.rand(1, m.in_channels, 16, 24, generator=g, dtype=torch.float64) for _ in range(t + 2)]
    s = Stream(m, pad="zeros")
    for i, f in enumerate(frames):
        out = s.step(f)
        ref = m.predict(_full_clip(frames, t, i, "zeros")).scores
        assert (out.scores - ref).abs().max().item() <= 1e-10, (i, (out.scores - ref).abs().max().item())
    assert isinstance(s._feats[-1], FrameFeatures) == m.fast
