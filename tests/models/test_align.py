"""PSTFNet's clip front-end (``mirstd.models.align``): frame step and registration onto the key frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from mirstd.models import create
from mirstd.models.align import clip_span, register_clip, sparse_registered_clip

SMALL = {"channels": (4, 8, 16, 32)}


def _panning(frames: int = 5, pan=(0.8, -0.5), size: int = 64, seed: int = 0) -> torch.Tensor:
    """(1, 3, T, size, size) float64 clip of a smooth texture the camera pans over by ``pan`` px/frame."""
    rng = np.random.default_rng(seed)
    canvas = ndimage.gaussian_filter(rng.random((size + 40, size + 40)), 2.0)
    canvas = (canvas - canvas.min()) / np.ptp(canvas)
    out = [ndimage.shift(canvas, (-pan[1] * t, -pan[0] * t), order=3, mode="reflect")[20:-20, 20:-20]
           for t in range(frames)]  # fmt: skip
    return torch.from_numpy(np.stack(out))[None, None].repeat(1, 3, 1, 1, 1)


def test_clip_span_and_frame_selection_counts_back_from_the_key_frame():
    assert clip_span(5, 1) == 5 and clip_span(5, 5) == 21 and clip_span(2, 3) == 4
    clip = torch.arange(21, dtype=torch.float64).view(1, 1, 21, 1, 1).expand(1, 1, 21, 4, 4)
    picked = sparse_registered_clip(clip, step=5)
    assert picked[0, 0, :, 0, 0].tolist() == [0, 5, 10, 15, 20]  # key frame (20) last
    with pytest.raises(ValueError, match="multiple of frame_step=5"):
        sparse_registered_clip(clip[:, :, 1:], step=5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_register_clip_cancels_a_camera_pan(seed):
    clip = _panning(seed=seed)
    reg = register_clip(clip)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    for t in range(4):
        before = (clip[0, :, t] - clip[0, :, -1])[inner].abs().mean()
        after = (reg[0, :, t] - reg[0, :, -1])[inner].abs().mean()
        # measured after/before 0.06-0.44 on seeds 0-5 (64 px frames: OpenCV's centroid misses the
        # shift by up to 0.4 px, most on the 1-frame pan, whose "before" is smallest)
        assert after < 0.6 * before, (t, float(after), float(before))
    assert torch.equal(reg[:, :, -1], clip[:, :, -1])  # the key frame is the reference, untouched
    # one shift for all channels
    assert torch.equal(reg[:, 0], reg[:, 1]) and torch.equal(reg[:, 1], reg[:, 2])


def test_register_clip_fills_what_the_warp_cannot_see_with_the_key_frame():
    clip = _panning(pan=(3.0, 0.0))  # 12 px between the first and the key frame
    reg = register_clip(clip)
    key = clip[0, 0, -1]
    # frame 0 is shifted 12 px right of the key: the key's right-most columns lie outside it
    assert torch.equal(reg[0, 0, 0, :, -10:], key[:, -10:])
    assert not torch.equal(reg[0, 0, 0, :, :40], key[:, :40])


def test_register_clip_leaves_flat_frames_alone():
    flat = torch.zeros(1, 1, 3, 16, 16)  # zero padding: OpenCV alone would report a half-frame shift
    assert torch.equal(register_clip(flat), flat)


def test_pstfnet_frame_step_is_the_plain_network_on_every_kth_frame():
    torch.manual_seed(0)
    plain = create("pstfnet", **SMALL).double().eval()
    stepped = create("pstfnet", frame_step=5, **SMALL).double().eval()
    assert stepped.num_frames == 21 and plain.num_frames == 5
    assert stepped.state_dict().keys() == plain.state_dict().keys()  # the same weights fit both
    stepped.load_state_dict(plain.state_dict())
    clip = torch.rand(2, 3, 21, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(stepped(clip), plain(clip[:, :, ::5]))
    with pytest.raises(ValueError, match="T=5"):
        stepped(clip[:, :, ::5])
    with pytest.raises(ValueError, match="frame_step must be >= 1"):
        create("pstfnet", frame_step=0)


def test_aligned_pstfnet_registers_then_runs_and_declares_what_it_cannot_do():
    torch.manual_seed(0)
    plain = create("pstfnet", **SMALL).double().eval()
    aligned = create("pstfnet", frame_step=2, align=True, **SMALL).double().eval()
    aligned.load_state_dict(plain.state_dict())
    clip = _panning(frames=9)
    with torch.no_grad():
        want = plain(register_clip(clip[:, :, ::2]))
        assert torch.equal(aligned(clip), want)
    assert not aligned.streamable and plain.streamable
    with pytest.raises(ValueError, match="ONNX"):
        aligned.export_card()
    loss = aligned.train().loss(aligned(clip), {"mask": torch.zeros(1, 1, 64, 64).double()})
    loss["loss"].backward()  # trains: the registration is input preprocessing, gradients reach the net
    assert all(p.grad is not None for p in aligned.encoder.parameters() if p.requires_grad)


def test_register_clip_ignores_bottom_right_zero_padding():
    clip = _panning(frames=5)[:, :, :, :58, :60]  # callers pad to size_divisor with zeros
    padded = torch.nn.functional.pad(clip, (0, 4, 0, 6))
    reg = register_clip(padded)
    assert torch.equal(reg[..., :58, :60], register_clip(clip))  # as if there were no padding
    assert not reg[..., 58:, :].any() and not reg[..., 60:].any()  # the padding stays zero


def test_aligned_pstfnet_refuses_cached_streaming_and_export_before_writing(tmp_path):
    from mirstd.infer.export import export_onnx

    aligned = create("pstfnet", frame_step=2, align=True, **SMALL).eval()
    frame = torch.rand(1, 3, 32, 32)
    with pytest.raises(NotImplementedError, match="no per-frame features"):
        aligned.encode_frame(frame)
    with pytest.raises(NotImplementedError, match="no per-frame features"):
        aligned.predict_from_features([[frame]] * aligned.num_frames)
    out = tmp_path / "sub" / "model.onnx"
    with pytest.raises(ValueError, match="ONNX"):
        export_onnx(aligned, out, imgsz=32)
    assert not (tmp_path / "sub").exists()  # refused before anything was written
