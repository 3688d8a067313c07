"""SSTNet's training objective (issue 13): YOLOX (SimOTA) + the motion branch's MSE loss.

Reference: ``UESTC-nnLab/SSTNet`` @ 12e5ffffd3d6edd21127e08f4d398afac21f86da, ``nets/Network.py``
``Network(num_classes=1, num_frame=5)`` = 21,981,227 parameters (training branch ``mapping0/1/2`` +
``SSTNet`` ConvLSTM 10,032,224); ``utils/utils_fit.py``: ``loss = yolo_loss(outputs, targets) +
motion_loss``. Measured against the reference with its state dict loaded: the ConvLSTM outputs
agree exactly in float64 (the attention / motion gates only feed the unused multi-head state) and
the 512-px motion loss agrees to 2e-7 (float32).
"""

import csv

import pytest
import torch
import torch.nn.functional as F

import mirstd.engine
from mirstd.engine.config import family_config
from mirstd.models import create

SMALL = {"width": 0.25, "motion_branch": True, "keep_unused": False}


def test_motion_branch_parameter_count_and_names_equal_the_reference():
    m = create("sstnet", motion_branch=True)
    n = sum(p.numel() for p in m.parameters())
    assert n == 21_981_227
    assert n - sum(p.numel() for p in create("sstnet").parameters()) == 10_032_224
    sd = m.state_dict()
    for k in (
        "mapping0.0.weight",
        "mapping1.2.weight",
        "mapping2.0.weight",
        "SSTNet.cell_list.00.conv2.weight",
        "SSTNet.cell_list.00.past_attention.in_proj_weight",
        "SSTNet.cell_list.00.motion.0.weight",
    ):
        assert k in sd, k


def test_training_forward_adds_the_motion_mse_and_eval_is_unchanged():
    torch.manual_seed(0)
    m = create("sstnet", **SMALL)
    clip = torch.rand(2, 3, 5, 64, 64)
    m.train()
    raw, motion = m(clip)
    assert raw.shape == (2, 6, 8, 8) and motion.ndim == 0 and motion.requires_grad
    boxes = [torch.tensor([[10.0, 10.0, 14.0, 14.0]]), torch.tensor([[30.0, 20.0, 33.0, 24.0]])]
    parts = m.loss((raw, motion), {"boxes": boxes})
    plain = create("sstnet", width=0.25).loss(raw, {"boxes": boxes})
    assert torch.allclose(parts["loss"], plain["loss"] + motion) and "motion" in parts
    # the motion loss written out: MSE(concat P_t, maxpool(LReLU(1x1(concat h_t))))
    x = (clip - m.mean) / m.std
    with torch.no_grad():
        feats = [m.backbone(x[:, :, t]) for t in range(5)]
        seq = torch.stack([m.mapping1(x[:, :, t]) for t in range(5)], 1)
        cell, h = m.SSTNet.cell_list["00"], torch.zeros(2, 16, 16, 16)
        c, hs = torch.zeros_like(h), []
        for t in range(5):
            a = cell.conv(torch.cat([seq[:, t], h], 1)) + cell.conv2(
                torch.cat([seq[:, t], h, seq[:, t], 0 * h], 1)
            )
            i, f, o, g = a.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        mapped = F.adaptive_max_pool2d(F.leaky_relu(m.mapping2[0](torch.cat(hs, 1))), (8, 8))
        ref = F.mse_loss(torch.cat(feats, 1), mapped)
        assert torch.allclose(m.motion_loss(x, feats), ref, atol=1e-6)
    m.eval()
    with torch.no_grad():
        assert m(clip).shape == (2, 6, 8, 8)
        assert len(m.predict(clip).boxes) == 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sstnet_with_its_motion_loss_trains_30_engine_steps(seed, tmp_path):
    """Lab recipe (configs/sstnet.yaml = the SMFNet/SSTNet lab recipe), width 0.25, 128 px, batch 4.
    Measured: seeds 0/1/2 75.0 -> 12.7, 85.3 -> 12.5, 86.5 -> 12.6 (motion term ~0.3); ~30 s each."""
    torch.set_num_threads(1)
    assert family_config("sstnet")["optimizer"] == "sgd"
    run = mirstd.engine.train(
        model="sstnet", model_args=SMALL, data="synth:smoke", steps=30, batch=4, imgsz=128, warmup_epochs=0,
        warmup_steps=5, val_every=0, save_every=10, project=str(tmp_path), progress=False, plots=False, seed=seed,
    )  # fmt: skip
    rows = list(csv.DictReader(open(run / "results.csv")))
    losses = [float(r["train/loss"]) for r in rows]
    assert "train/motion" in rows[0] and losses[-1] < 0.5 * losses[0], losses
