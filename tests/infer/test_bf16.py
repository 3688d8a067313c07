"""``dtype=bfloat16`` inference: validated, falls back (with a warning) without native bf16, and stays
close to float32.

Tolerance: bf16 keeps 8 significant bits, unit roundoff u = 2^-8 ~ 3.9e-3. A conv under autocast
rounds its input and its weights to bf16 (products exact, accumulated in float32) and its output,
so each layer adds a relative error <= 3u ~ 1.2e-2 of its activations, and independent roundings
grow like sqrt(layers). The tiny random networks below have ~20-40 conv layers and logits |z| < 1
(scores 0.3-0.6); scores are sigmoid(z) with |d sigmoid| <= |dz| / 4, so the score error should
stay below about sqrt(30) * 1.2e-2 * 1 / 4 ~ 0.016 at the worst pixel and well below on average:
the asserts allow 0.03 max and 0.005 mean (measured: <= 1e-3 max, 3e-4 mean; float32 against
float32 agrees to 1e-6, so all of it is bf16 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mirstd.infer.predictor as predictor_mod
from mirstd.infer.predictor import Predictor, resolve_dtype
from mirstd.models.registry import create
from mirstd.utils.config import ConfigError

MAX_ABS, MEAN_ABS = 0.03, 0.005


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def native_bf16(monkeypatch):  # noqa: ANN001, ANN201
    """Run the bf16 path on any CPU (on one without avx512_bf16 it is emulated, still bf16 maths)."""
    monkeypatch.setattr(predictor_mod, "bf16_support", lambda device: (True, "forced by the test"))


def _frames(n: int, h: int = 32, w: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.random((h, w), dtype=np.float32) * 0.3
    out = []
    for i in range(n):
        f = base.copy()
        f[10:13, 5 + 3 * i : 8 + 3 * i] = 0.9  # a moving bright blob
        out.append(f)
    return out


def _seg(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = {
        "resunet": {"channels": (4, 8, 8, 16)},
        "pstfnet": {"channels": (4, 8, 16, 32), "num_frames": 3, "grid_size": 4},
        "dtum": {"channels": (4, 8, 8, 16), "feat_channels": 8, "num_frames": 3},
    }[name]
    return create(name, **kw).eval()


def test_dtype_names_validated() -> None:
    cpu = torch.device("cpu")
    assert (
        resolve_dtype("float32", cpu) == resolve_dtype("fp32", cpu) == resolve_dtype(None, cpu) == "float32"
    )
    with pytest.raises(ConfigError, match="dtype='fp16'.*bfloat16"):
        resolve_dtype("fp16", cpu)
    with pytest.raises(ConfigError, match="no PyTorch parameters"):
        Predictor(create("tophat"), device="cpu", dtype="bf16")


def test_no_native_bf16_warns_and_runs_float32(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(predictor_mod, "bf16_support", lambda device: (False, "CPU without avx512_bf16"))
    m = _seg("resunet")
    with pytest.warns(RuntimeWarning, match="running float32 instead"):
        p = Predictor(m, device="cpu", dtype="bfloat16")
    assert p.dtype == "float32"
    frames = _frames(2)
    ref = list(Predictor(m, device="cpu").predict_frames(frames))
    for a, b in zip(p.predict_frames(frames), ref, strict=True):
        np.testing.assert_array_equal(a["scores"], b["scores"])


@pytest.mark.parametrize("name", ["resunet", "pstfnet", "dtum"])
def test_bf16_close_to_float32(name: str, native_bf16) -> None:  # noqa: ANN001
    m = _seg(name)
    frames = _frames(4)
    p16 = Predictor(m, device="cpu", dtype="bf16")
    assert p16.dtype == "bfloat16" and p16.cached == (name != "resunet")
    got = list(p16.predict_frames(frames))
    ref = list(Predictor(m, device="cpu").predict_frames(frames))
    diffs = [np.abs(a["scores"] - b["scores"]) for a, b in zip(got, ref, strict=True)]
    worst, mean = max(float(d.max()) for d in diffs), float(np.mean([d.mean() for d in diffs]))
    assert got[0]["scores"].dtype == np.float64  # the bf16 logits, cast back, then the float64 sigmoid
    assert 0 < worst <= MAX_ABS and mean <= MEAN_ABS, (worst, mean)  # > 0: bf16 really ran
    assert not m._forward_hooks and not m._forward_pre_hooks  # the autocast hooks are removed
    assert not torch.is_autocast_enabled("cpu")


def test_bf16_detector_boxes_stay_float32(native_bf16) -> None:  # noqa: ANN001
    """Box models: the network runs in bf16, decoding and NMS in float32 (no 2-px quantisation)."""
    torch.manual_seed(0)
    m = create("smfnet", width=0.25).eval()
    p = Predictor(m, device="cpu", dtype="bfloat16", conf=0.0)
    seen = []
    h = p.model.register_forward_hook(lambda mod, args, out: seen.append(out))  # fuse() made a copy
    try:
        r = list(p.predict_frames(_frames(5, 64, 64)))[-1]
    finally:
        h.remove()
    assert r["boxes"] is not None and r["boxes"].dtype == np.float32
    raw = seen[-1]
    leaves = raw if isinstance(raw, (list, tuple)) else [raw]
    assert all(t.dtype == torch.float32 for t in leaves if isinstance(t, torch.Tensor))


def test_predict_cli_key(tmp_path) -> None:  # noqa: ANN001
    from mirstd.infer.predict import predict

    src = tmp_path / "frames"
    src.mkdir()
    import cv2

    for i, f in enumerate(_frames(2)):
        cv2.imwrite(str(src / f"{i}.png"), (f * 255).astype(np.uint8))
    with pytest.raises(ConfigError, match="dtype="):
        predict(src, weights=_seg("resunet"), out=tmp_path / "o", dtype="half", progress=False)
