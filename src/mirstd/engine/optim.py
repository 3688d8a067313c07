"""Optimisers, per-step learning-rate schedules with warm-up, and the model EMA."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn as nn


def param_groups(model: nn.Module, weight_decay: float, wd_norm_bias: bool) -> list[dict[str, Any]]:
    """Two groups: decayed weights, and (unless ``wd_norm_bias``) biases and 1-D weights without decay."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if (p.ndim <= 1 and not wd_norm_bias) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW | Adam | SGD from the config keys ``optimizer, lr, weight_decay, momentum, beta2, nesterov``."""
    name = str(cfg["optimizer"]).lower()
    groups = param_groups(model, float(cfg["weight_decay"]), bool(cfg["wd_norm_bias"]))
    lr, betas = float(cfg["lr"]), (float(cfg["momentum"]), float(cfg["beta2"]))
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(cfg["momentum"]), nesterov=bool(cfg["nesterov"]))
    raise ValueError(f"optimizer={cfg['optimizer']!r}: choose adamw, adam or sgd")


class StepSchedule:
    """Learning-rate factor per optimiser step: linear warm-up, then multistep, cosine or constant.

    - warm-up (``s < W``): ``f = w0 + (1 - w0)·s/W``;
    - ``step``: ``f = γ^(number of milestones ≤ s)``; milestones ≤ 1 are fractions of the total steps;
    - ``cosine``: ``f = m + (1 - m)·½(1 + cos(π·(s - W)/(S - W)))`` with floor ``m = min_lr_factor``.

    Sets ``lr = base_lr·f`` on every parameter group; its state is just the step count.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int, steps_per_epoch: int
    ) -> None:
        self.opt, self.total = optimizer, max(int(total_steps), 1)
        self.kind = str(cfg["scheduler"]).lower()
        if self.kind not in ("step", "multistep", "cosine", "constant"):
            raise ValueError(f"scheduler={cfg['scheduler']!r}: choose step, cosine or constant")
        self.warmup = int(cfg.get("warmup_steps") or 0) or int(
            round(float(cfg.get("warmup_epochs") or 0) * steps_per_epoch)
        )
        self.w0, self.gamma = float(cfg["warmup_start_factor"]), float(cfg["gamma"])
        self.min_factor = float(cfg["min_lr_factor"])
        self.milestones = sorted(
            int(round(m * self.total)) if float(m) <= 1.0 else int(m) for m in (cfg.get("milestones") or [])
        )
        self.base_lrs = [float(cfg["lr"])] * len(optimizer.param_groups)
        self.step_count = 0
        self._apply()

    def factor(self, s: int) -> float:
        if s < self.warmup:
            return self.w0 + (1.0 - self.w0) * s / self.warmup
        if self.kind in ("step", "multistep"):
            return self.gamma ** sum(s >= m for m in self.milestones)
        if self.kind == "cosine":
            t = min((s - self.warmup) / max(self.total - self.warmup, 1), 1.0)
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for g, base in zip(self.opt.param_groups, self.base_lrs):
            g["lr"] = base * f

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.opt.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step_count": self.step_count, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count, self.base_lrs = int(state["step_count"]), [float(x) for x in state["base_lrs"]]
        self._apply()


class ModelEMA:
    """Exponential moving average of all float state (parameters and buffers).

    ``decay(u) = d·(1 - exp(-u/τ))`` with ``u`` the update count (YOLOX / SSTNet recipe, smfnet spec §12),
    so early updates follow the model closely.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = float(decay), float(tau), 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1.0 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1.0 - d)
            else:
                v.copy_(msd[k])

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Any, device: torch.device) -> int:
    """Re-estimate BatchNorm running statistics as the plain average over ``batches`` ("precise BN",
    Wu & Johnson 2021). Returns the number of batches used.

    With a small BN momentum (YOLOX's 0.03) and weights that still move quickly, as in short CPU runs,
    the running averages lag the weights so far that eval-mode output collapses while train-mode
    output is good; recomputing them from shuffled training batches with fixed weights fixes that.
    Training itself is unchanged: train-mode forward passes use batch statistics.
    """
    bns = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not bns:
        return 0
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = plain mean over the batches seen
    model.train()
    n = 0
    try:
        for batch in batches:
            model(batch["clip"].to(device))
            n += 1
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.train(was_training)
    return n
