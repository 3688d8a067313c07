import math

import pytest
import torch

from mirstd.engine.config import build_config
from mirstd.engine.data import SeededBatchSampler, epoch_permutation
from mirstd.engine.optim import ModelEMA, StepSchedule, build_optimizer, param_groups


def _opt(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _cfg(**kw):
    base = {
        "scheduler": "step",
        "lr": 1.0,
        "gamma": 0.1,
        "milestones": [0.5, 0.75],
        "min_lr_factor": 0.0,
        "warmup_steps": 0,
        "warmup_epochs": 0,
        "warmup_start_factor": 0.1,
    }
    return {**base, **kw}


def test_multistep_fractions_and_warmup():
    opt = _opt()
    sch = StepSchedule(opt, _cfg(warmup_steps=4), total_steps=100, steps_per_epoch=10)
    assert sch.milestones == [50, 75]
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        sch.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[2] == pytest.approx(0.55) and lrs[4] == 1.0
    assert lrs[49] == 1.0 and lrs[50] == pytest.approx(0.1) and lrs[75] == pytest.approx(0.01)


def test_cosine_ends_at_floor_and_state_roundtrip():
    opt = _opt()
    sch = StepSchedule(opt, _cfg(scheduler="cosine", min_lr_factor=0.01, warmup_epochs=1), 110, 10)
    assert sch.warmup == 10
    for _ in range(60):
        sch.step()
    mid = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 50 / 100))
    assert opt.param_groups[0]["lr"] == pytest.approx(mid)
    opt2 = _opt()
    sch2 = StepSchedule(opt2, _cfg(scheduler="cosine", min_lr_factor=0.01, warmup_epochs=1), 110, 10)
    sch2.load_state_dict(sch.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(mid)
    for _ in range(50):
        sch.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_optimizer_groups_and_names():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    groups = param_groups(m, 1e-4, wd_norm_bias=False)
    assert [len(g["params"]) for g in groups] == [1, 3] and groups[1]["weight_decay"] == 0.0
    cfg = build_config({"optimizer": "sgd", "nesterov": True, "momentum": 0.937})
    opt = build_optimizer(m, cfg)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"] is True
    with pytest.raises(ValueError, match="optimizer='lion': choose adamw, adam or sgd"):
        build_optimizer(m, {**cfg, "optimizer": "lion"})


def test_ema_decay_ramp():
    m = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(m.weight)
    ema = ModelEMA(m, decay=0.9999, tau=2000)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)
    d = 0.9999 * (1 - math.exp(-1 / 2000))
    assert ema.module.weight.item() == pytest.approx(1 - d)


def test_config_layers_and_unknown_key():
    cfg = build_config({"model": "pstfnet", "lr": 1e-3})
    assert cfg["optimizer"] == "adamw" and cfg["lr"] == 1e-3 and cfg["imgsz"] == 384
    assert build_config({"model": "smfnet"})["ema"] is True
    with pytest.raises(ValueError, match=r"unknown key 'lr0' for mirstd train; did you mean lr\?"):
        build_config({"lr0": 0.1})


def test_sharded_batches_equal_global_batches_and_skip():
    single = SeededBatchSampler(20, 4, seed=7)
    ranks = [SeededBatchSampler(20, 4, seed=7, rank=r, world=2) for r in range(2)]
    for s in (single, *ranks):
        s.set_epoch(3)
    for g, a, b in zip(single, *ranks):
        assert g == a + b and len(a) == 2
    assert [i for _, i in sum(list(single), [])] == epoch_permutation(20, 7, 3)
    single.set_epoch(3, skip=2)
    assert len(single) == 3
    full = SeededBatchSampler(20, 4, 7)
    full.set_epoch(3)
    assert list(single) == list(full)[2:]
    assert epoch_permutation(20, 7, 3) != epoch_permutation(20, 7, 4)
    with pytest.raises(ValueError, match="batch=3 is not divisible by the 2 DDP processes"):
        SeededBatchSampler(20, 3, 0, world=2)
