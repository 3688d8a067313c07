import numpy as np
import pytest
import torch

from mirstd.models import create
from mirstd.models.fuse import fold_batchnorm
from mirstd.models.smfnet import SMFNET_RECIPE, SMFNet
from mirstd.models.yolox_blocks import count_params
from mirstd.utils.boxes import box_iou


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_parameter_counts_match_spec():
    a = create("smfnet")
    assert count_params(a) == 9_851_409
    assert count_params(a.backbone) == 4_212_672
    assert count_params(a.backbone_3d) == 821_996
    assert [count_params(e) for e in a.encoders] == [762_997, 779_381, 812_149]
    assert [count_params(e.refine) for e in a.encoders] == [375_028] * 3
    assert count_params(a.neck) == 66_048
    assert count_params(a.head) == 2_396_166
    assert count_params(create("smfnet", build_dead_layers=True)) == 9_909_777
    assert count_params(create("smfnet", neck="irdst")) == 10_165_265
    assert count_params(create("smfnet", neck="irdst", build_dead_layers=True)) == 10_782_737


def test_interface_and_shapes():
    m = create("smfnet", width=0.25).eval()
    assert (m.task, m.in_channels, m.size_divisor) == ("detect", 3, 32)
    with torch.no_grad():
        assert m(torch.rand(2, 3, 5, 64, 96)).shape == (2, 6, 8, 12)
    out = m.predict(torch.rand(2, 3, 5, 64, 64))
    assert len(out.boxes) == 2 and all(b.shape[1] == 6 for b in out.boxes)
    with pytest.raises(ValueError, match="multiples of 32"):
        m(torch.rand(1, 3, 5, 60, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        m(torch.rand(1, 1, 5, 64, 64))
    with pytest.raises(ValueError, match="neck"):
        SMFNet(neck="pafpn")
    assert SMFNET_RECIPE["lr"] == 6.25e-4 and SMFNET_RECIPE["input_size"] == 512


def test_key_frame_is_last_and_clip_feeds_3d():
    torch.manual_seed(0)
    m = create("smfnet", width=0.25, init="torch").eval()
    x = torch.rand(1, 3, 5, 64, 64)
    y = x.clone()
    y[:, :, :4] = 0
    with torch.no_grad():
        f_x = m.backbone((x[:, :, -1] - m.mean[:, :, 0]) / m.std[:, :, 0])
        f_y = m.backbone((y[:, :, -1] - m.mean[:, :, 0]) / m.std[:, :, 0])
        assert all(torch.equal(a, b) for a, b in zip(f_x, f_y))
        norm = lambda c: (c - m.mean) / m.std  # noqa: E731
        assert not torch.equal(m.backbone_3d(norm(x)), m.backbone_3d(norm(y)))
        assert not torch.equal(m(x), m(y))  # frames 0-3 reach the output through the 3D branch


def test_csam_identity_at_gamma_zero():
    enc = create("smfnet", width=0.25).encoders[0]
    csam = enc.fuse_convs[2]
    x = torch.randn(2, 32, 8, 8)
    assert torch.equal(csam(x), x)
    csam.gamma.data.fill_(0.5)
    assert not torch.allclose(csam(x), x)
    assert (
        not create("smfnet", width=0.25, csam_gamma_trainable=False)
        .encoders[0]
        .fuse_convs[2]
        .gamma.requires_grad
    )


def test_optimized_inference_is_equivalent():
    torch.manual_seed(1)
    for neck in ("itsdt", "irdst"):
        m = create("smfnet", width=0.25, neck=neck, init="torch").eval()
        for mod in m.modules():  # non-trivial BN statistics so folding is really exercised
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
        m.encoders[1].fuse_convs[2].gamma.data.fill_(0.3)  # one live CSAM, two identity ones
        o = m.fuse()
        assert not any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in o.modules())
        assert o.upsample_late and not m.upsample_late
        x = torch.rand(2, 3, 5, 96, 64)
        with torch.inference_mode():
            a, b = m(x), o(x)
        assert a.abs().max() > 0.1
        assert (a - b).abs().max() < 1e-4


def test_fold_counts_every_bn():
    m = create("smfnet", width=0.25)
    n_bn = sum(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in m.modules())
    assert fold_batchnorm(m.eval()) == n_bn


def test_checkpoint_loading_reports(tmp_path):
    src = create("smfnet", width=0.25, init="torch")
    yolox = {"model": {"backbone.backbone." + k: v for k, v in src.backbone.backbone.state_dict().items()}}
    yolox["model"]["head.cls_preds.0.weight"] = torch.zeros(3)
    yolox["model"]["backbone.backbone.stem.conv.conv.weight"] = torch.zeros(1, 2, 3, 3)  # wrong shape
    torch.save(yolox, tmp_path / "yolox_s.pth")
    yowo = {"state_dict": {"module." + k: v for k, v in src.backbone_3d.state_dict().items()}}
    torch.save(yowo, tmp_path / "shufflenet.pth")
    m = create(
        "smfnet",
        width=0.25,
        pretrained_2d=str(tmp_path / "yolox_s.pth"),
        pretrained_3d=str(tmp_path / "shufflenet.pth"),
    )
    r2, r3 = m.load_reports["2d"], m.load_reports["3d"]
    assert r2["loaded"] == r2["total"] - 1 and r2["missing"] == ["stem.conv.conv.weight"]
    assert r2["shape_mismatch"][0][0] == "stem.conv.conv.weight"
    assert r3["loaded"] == r3["total"] and not r3["missing"]
    assert torch.equal(m.backbone_3d.conv1[0].weight, src.backbone_3d.conv1[0].weight)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        create("smfnet", width=0.25, pretrained_3d=str(tmp_path / "nope.pth"))


# ----------------------------------------------------------------------------------------------
# Learning: synthetic clips with bright moving blobs
# ----------------------------------------------------------------------------------------------
def make_clips(
    n: int, size: int = 64, frames: int = 5, seed: int = 0
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """1–2 Gaussian blobs (σ 1.5 px) moving linearly over a noisy background; 7×7 boxes on the last frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    clips, boxes = [], []
    for _ in range(n):
        clip = 0.2 + 0.02 * rng.standard_normal((frames, size, size))
        bb = []
        for _ in range(rng.integers(1, 3)):
            p0, v = rng.uniform(12, size - 12, 2), rng.uniform(-1.5, 1.5, 2)
            for t in range(frames):
                c = p0 + v * (t - frames + 1)
                clip[t] += 0.7 * np.exp(-((xx + 0.5 - c[0]) ** 2 + (yy + 0.5 - c[1]) ** 2) / (2 * 1.5**2))
            bb.append([c[0] - 3.5, c[1] - 3.5, c[0] + 3.5, c[1] + 3.5])
        clips.append(np.repeat(clip[None], 3, 0))
        boxes.append(torch.tensor(bb, dtype=torch.float32))
    return torch.tensor(np.array(clips), dtype=torch.float32).clamp(0, 1), boxes


def ap50(dets: list[torch.Tensor], gts: list[torch.Tensor]) -> float:
    """VOC-style all-point interpolated AP at IoU 0.5 (greedy matching by descending score)."""
    records, npos = [], sum(len(g) for g in gts)
    for d, g in zip(dets, gts):
        used = torch.zeros(len(g), dtype=torch.bool)
        for row in d[d[:, 4].argsort(descending=True)]:
            hit = False
            if len(g):
                iou = box_iou(row[None, :4], g)[0].masked_fill(used, -1)
                j = int(iou.argmax())
                if iou[j] >= 0.5:
                    used[j], hit = True, True
            records.append((float(row[4]), hit))
    records.sort(key=lambda r: -r[0])
    hits = np.array([r[1] for r in records], dtype=float)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, 1e-9)
    mrec, mpre = np.r_[0, rec, 1], np.r_[0, prec, 0]
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def test_ap50_helper():
    g = [torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[20.0, 20, 30, 30]])]
    d = [
        torch.tensor([[0.0, 0, 10, 10, 0.9, 0]]),
        torch.tensor([[50.0, 50, 60, 60, 0.95, 0], [20.0, 20, 30, 30, 0.5, 0]]),
    ]
    # ranked: FP (0.95), TP (0.9), TP (0.5) → precision 1/2 at recall .5, 2/3 at recall 1;
    # the interpolated envelope is 2/3 over the whole recall range
    assert ap50(d, g) == pytest.approx(2 / 3)


def _train(steps: int, seed: int = 0) -> tuple[SMFNet, torch.Tensor, list[torch.Tensor], list[float]]:
    torch.manual_seed(seed)
    clips, boxes = make_clips(8, seed=seed)
    m = create("smfnet", width=0.25, prior_prob=0.01)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0)
    losses = []
    m.train()
    for _ in range(steps):
        idx = torch.randperm(8)[:4]
        loss = m.loss(m(clips[idx]), {"boxes": [boxes[i] for i in idx]})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return m, clips, boxes, losses


def _precise_bn(m: SMFNet, clips: torch.Tensor) -> None:
    # YOLOX BN momentum 0.03 lags a fast-moving 150-step run; recompute running statistics as a
    # cumulative average over the training clips (the engine's EMA model plays this role in real runs).
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None
    m.train()
    with torch.no_grad():
        for k in range(0, len(clips), 4):
            m(clips[k : k + 4])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_falls_quickly(seed):
    # Every seed (issue 9). Measured last5/first5 after 40 steps, seeds 0 / 1 / 2: AVX512 0.526 /
    # 0.526 / 0.536, ATen default 0.568 / 0.537 / 0.521, avx2 0.513 / 0.510 / 0.473. (At the former
    # 30 steps the margin was 1 % on one kernel set: default, seed 1, 0.742.)
    _, _, _, losses = _train(40, seed=seed)
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5]), losses


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_width_reduced_smfnet_learns_ap50(seed):
    m, clips, boxes, losses = _train(150, seed=seed)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    _precise_bn(m, clips)
    dets = m.predict(clips).boxes
    assert ap50(dets, boxes) >= 0.5


@pytest.mark.slow
def test_full_size_flops_match_spec():
    from torch.utils.flop_counter import FlopCounterMode

    for neck, ref in (("itsdt", 41.938), ("irdst", 43.406)):
        m = create("smfnet", neck=neck).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            assert m(torch.rand(1, 3, 5, 512, 512)).shape == (1, 6, 64, 64)
        assert fc.get_total_flops() / 1e9 == pytest.approx(ref, rel=5e-3)
