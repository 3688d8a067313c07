"""One training loop for every model (segment and detect), single process or DDP via torchrun.

``train(**cfg) -> run_dir``. Segment models are trained with the configured loss on their logits;
detect models return ``(total, parts)`` from ``model.loss(raw_output, batch)`` (docs/design.md).
Exact resume: a checkpoint holds model, EMA, optimiser, scheduler, AMP scaler, step and RNG states,
and the data order depends only on ``(seed, epoch)`` (see :mod:`mirstd.engine.data`).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from mirstd.engine import checkpoint as ckpt_mod
from mirstd.engine.config import build_config
from mirstd.engine.data import (
    SeededBatchSampler,
    SeededSamples,
    clip_dataset,
    default_collate_clips,
    epoch_permutation,
    load_sequences,
)
from mirstd.engine.optim import ModelEMA, StepSchedule, build_optimizer, precise_bn
from mirstd.engine.rundir import (
    env_info,
    increment_dir,
    plot_results,
    read_results_csv,
    write_results_csv,
    write_yaml,
)
from mirstd.infer.evaluate import eval_dataset_for, flat_numbers, pick_metric, run_evaluation
from mirstd.metrics.evaluator import Evaluator
from mirstd.models.base import Method
from mirstd.models.pretrained import transfer_weights
from mirstd.models.registry import create
from mirstd.utils.config import ConfigError, check_keys, check_types, task_defaults
from mirstd.utils.device import resolve_device
from mirstd.utils.io import atomic_write_text


def make_evaluator() -> Evaluator:
    """The validation evaluator (default suite for the inputs seen). Tests may swap this function."""
    return Evaluator()


# ----------------------------------------------------------------------------------------- setup
def _dist_env() -> tuple[int, int, int]:
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def _init_dist(world: int) -> bool:
    """Start the process group under torchrun (gloo on CPU, nccl on GPU). True when this call started it."""
    if world <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


def _device(cfg: dict[str, Any], local_rank: int) -> torch.device:
    return resolve_device(cfg.get("device"), local_rank)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _resume_path(resume: Any, cfg: dict[str, Any]) -> Path:
    if isinstance(resume, (str, Path)) and str(resume).lower() not in ("true", "1", "yes"):
        return Path(resume)
    task_dirs = [d for d in Path(cfg.get("project") or "runs").glob("*") if d.is_dir()]
    if cfg.get("name"):
        cands = [d / str(cfg["name"]) / "weights" / "last.pt" for d in task_dirs]
        cands = [c for c in cands if c.is_file()]
    else:
        cands = sorted(
            (p for d in task_dirs for p in d.glob("*/weights/last.pt")), key=lambda p: p.stat().st_mtime
        )
    if not cands:
        raise FileNotFoundError(
            f"resume=true: no weights/last.pt under {cfg.get('project') or 'runs'}/<task>/{cfg.get('name') or '*'}"
        )
    return cands[-1]


# ----------------------------------------------------------------------------------------- data
def _datasets(
    cfg: dict[str, Any],
    model: Method,
    train_data: Dataset | None,
    val_data: Dataset | None,
) -> tuple[Dataset, Dataset | None, dict[str, list[str]]]:
    if str(cfg["val_split"]).lower().startswith("test"):
        raise ValueError(
            f"val_split={cfg['val_split']!r}: the test split must not be used for model selection; "
            "use a validation split (val_split=val) and score the test split afterwards with `mirstd val split=test`"
        )
    splits: dict[str, list[str]] = {}
    if train_data is None:
        seqs, ds = load_sequences(cfg["data"], cfg["train_split"])
        _check_labels(cfg, model, seqs)
        splits[cfg["train_split"]] = [s.name for s in seqs]
        train_data = clip_dataset(seqs, cfg, model.in_channels, train=True)
        if val_data is None and cfg["val_every"] != 0:
            vseqs, _ = load_sequences(ds, cfg["val_split"])
            splits[cfg["val_split"]] = [s.name for s in vseqs]
            # the evaluation runner's own clips and ground truth (as `mirstd val` builds them)
            val_data = eval_dataset_for(
                model,
                vseqs,
                {**cfg, "key_stride": int(cfg.get("val_stride") or 1), "max_keys": cfg.get("val_frames")},
            )
    return train_data, val_data, splits


def _check_labels(cfg: dict[str, Any], model: Method, seqs: list[Any]) -> None:
    """A model whose loss trains on masks gets masks: refuse mask-less (point/box-only) training data
    unless ``mask_from`` says how to draw them (else it would train on empty masks)."""
    if not model.uses_masks or cfg.get("mask_from") or any(s.has_masks for s in seqs):
        return
    labs = [lab for s in seqs[:50] for lab in list(s.labels)[:50]]
    kind = "boxes" if any(lab.has_boxes for lab in labs) else "points"
    raise ConfigError(
        f"model={cfg['model']!r} trains on masks but data={cfg['data']!s} split {cfg['train_split']!r} has "
        f"{kind}-only labels (no masks); pass mask_from={kind} (mask_radius=1 for 3x3 squares)"
    )


def _check_imgsz(cfg: dict[str, Any]) -> None:
    v = cfg.get("imgsz")
    if isinstance(v, (list, tuple)) and (len(v) != 2 or int(v[0]) != int(v[1])):
        raise ConfigError(f"imgsz={list(v)}: training crops are square; give one size (imgsz={int(v[0])})")


RESUME_SAFE = ("device", "workers", "progress", "plots")  # may change on resume (docs/outputs.md)


def _resume_config(ck: dict[str, Any], overrides: dict[str, Any], path: Path) -> dict[str, Any]:
    """The checkpoint's config with the keys a resume may change; any other changed key is refused
    (``resume=true`` continues the run as it was), as are unknown keys and wrong types."""
    if overrides.get("cfg"):
        raise ConfigError("resume=true takes no cfg=: the run continues with its own configuration")
    defaults = task_defaults("train")
    given = {k: v for k, v in overrides.items() if k != "resume"}
    check_keys(given, defaults, "train")
    check_types(given, defaults, "train")
    old = dict(ck.get("config") or {})
    cfg = dict(old)
    for k, v in given.items():
        if k in RESUME_SAFE:
            cfg[k] = v
        elif k in ("project", "name", "exist_ok") or old.get(k) == v:
            continue  # they locate the run (exist_ok names no change) / unchanged
        elif k == "steps" and v is not None and int(v) > int(old.get("steps") or ck.get("step") or 0):
            cfg[k] = int(v)
        elif k == "epochs" and not old.get("steps") and int(v) > int(old.get("epochs") or 0):
            cfg[k] = int(v)
        else:
            raise ConfigError(
                f"resume=true: {k}={v!r} differs from the run's {k}={old.get(k)!r} ({path}); drop {k}= "
                f"(a resume may change only {', '.join(RESUME_SAFE)} and raise steps/epochs) or start a new run"
            )
    return cfg


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device, non_blocking=True)
        elif isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
            out[k] = [t.to(device, non_blocking=True) for t in v]
        else:
            out[k] = v
    return out


# ----------------------------------------------------------------------------------------- trainer
class Trainer:
    """State and steps of one run; :func:`train` is the entry point."""

    def __init__(
        self,
        cfg: dict[str, Any],
        resume_from: dict[str, Any] | None,
        run_dir: Path | None,
        train_data: Dataset | None,
        val_data: Dataset | None,
    ) -> None:
        self.rank, self.world, local = _dist_env()
        self.own_pg = _init_dist(self.world)
        self.cfg, self.device = cfg, _device(cfg, local)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(int(cfg["seed"]), bool(cfg["deterministic"]))
        self.model: nn.Module = create(cfg["model"], **(cfg.get("model_args") or {})).to(self.device)
        self.task = self.model.task  # names the run folder only
        if cfg.get("pretrained") and resume_from is None:  # a resume restores every weight itself
            copied, total = transfer_weights(self.model, cfg["pretrained"])
            if self.rank == 0:
                print(f"pretrained={cfg['pretrained']}: {copied} of the model's {total} tensors copied")
        self.metric = str(cfg.get("metric") or self.model.default_metric)
        if not self.model.trainable:
            raise ValueError(
                f"model={cfg['model']!r} has nothing to train; score it with `mirstd val model=...`"
            )
        # clip length: the config's, else the model's (a model that takes any length gets 5)
        cfg["frames"] = int(cfg.get("frames") or self.model.num_frames or 5)
        self.model.set_loss(cfg.get("loss"), **(cfg.get("loss_args") or {}))
        workers = 0 if cfg["deterministic"] else int(cfg["workers"])
        train_ds, self.val_ds, self.splits = _datasets(cfg, self.model, train_data, val_data)
        self.run_dir = self._run_dir(run_dir)  # claimed once the data is known to be usable
        self.sampler = SeededBatchSampler(
            len(train_ds), int(cfg["batch"]), int(cfg["seed"]), self.rank, self.world
        )
        self.train_samples = SeededSamples(train_ds, int(cfg["seed"]))
        self.loader = DataLoader(
            self.train_samples,
            batch_sampler=self.sampler,
            collate_fn=default_collate_clips,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            # own generator: creating an iterator must not draw from the global
            # RNG, or a mid-epoch resume would shift it (samples are seeded anyway)
            generator=torch.Generator().manual_seed(int(cfg["seed"])),
        )
        self._lengths(len(train_ds) // int(cfg["batch"]))
        if cfg.get("sync_bn") and self.world > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = StepSchedule(self.optimizer, cfg, self.total, self.spe)
        self.ema = ModelEMA(self.model, cfg["ema_decay"], cfg["ema_tau"]) if cfg.get("ema") else None
        self.amp = bool(cfg["amp"]) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step, self.best, self.rows = 0, None, []
        if resume_from is not None:
            self._load(resume_from)
        self.ddp = (
            nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            if self.world > 1
            else self.model
        )

    # -- bookkeeping
    def _lengths(self, spe: int) -> None:
        cfg = self.cfg
        self.spe = spe
        self.total = int(cfg["steps"]) if cfg.get("steps") else int(cfg["epochs"]) * spe
        if self.total <= 0:
            raise ValueError(f"training length is zero: steps={cfg.get('steps')} epochs={cfg.get('epochs')}")
        self.val_every = spe if cfg.get("val_every") is None else int(cfg["val_every"])
        if self.val_ds is None:
            self.val_every = 0
        self.save_every = int(cfg.get("save_every") or self.val_every or spe)

    def _run_dir(self, run_dir: Path | None) -> Path:
        if run_dir is None:
            parent = Path(self.cfg.get("project") or "runs") / self.task
            run_dir = (
                increment_dir(parent, self.cfg.get("name"), bool(self.cfg.get("exist_ok")))
                if self.rank == 0
                else None
            )
            if self.world > 1:  # every rank writes nothing, but all agree on the folder
                obj = [str(run_dir) if run_dir else None]
                dist.broadcast_object_list(obj, src=0)
                run_dir = Path(obj[0])
        return Path(run_dir)

    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None,
            "step": self.step,
            "epoch": self.step // self.spe,
            "batch_in_epoch": self.step % self.spe,
            "rng": ckpt_mod.rng_state(),
            "config": self.cfg,
            "model_name": self.cfg["model"],
            "model_args": dict(self.cfg.get("model_args") or {}),
            "best_metric": self.best,
            "metric": self.metric,
        }

    def _load(self, ck: dict[str, Any]) -> None:
        self.model.load_state_dict(ck["model"])
        if self.ema and ck.get("ema"):
            self.ema.load_state_dict(ck["ema"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.amp and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.step, self.best = int(ck["step"]), ck.get("best_metric")
        ckpt_mod.set_rng_state(ck["rng"])
        self.rows = read_results_csv(self.run_dir / "results.csv", self.step)

    # -- one optimiser step
    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            raw = self.ddp(batch["clip"])
            parts = self.model.loss(raw, batch)
        total = parts["loss"]
        return total, {
            k: (v.detach() if isinstance(v, torch.Tensor) else torch.tensor(float(v)))
            for k, v in parts.items()
        }

    def _update(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        self.ddp.train()
        loss, parts = self._loss(_to_device(batch, self.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {self.step + 1}: loss is {loss.item()} (lower lr=, or amp=false)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if float(self.cfg["clip_grad"]) > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), float(self.cfg["clip_grad"]))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema:
            self.ema.update(self.model)
        return parts

    # -- validation, logging, checkpoints
    def _mean_parts(self, sums: dict[str, float], n: int) -> dict[str, float]:
        keys = sorted(sums)
        t = torch.tensor([sums[k] for k in keys] + [float(n)], dtype=torch.float64)
        if self.world > 1:  # loss means over all processes
            t = t.to(self.device)
            dist.all_reduce(t)
            t = t.cpu()
        return {k: float(t[i] / max(t[-1], 1)) for i, k in enumerate(keys)}

    def _precise_bn(self) -> None:
        """Re-estimate BN statistics of the weights about to be validated or saved (``precise_bn=N``)."""
        n = int(self.cfg.get("precise_bn") or 0)
        if n <= 0 or self.rank != 0:
            return
        # Shuffled training samples with their own seeded stream (epoch offset), so the global RNG
        # and the training order stay untouched and a resumed run recomputes the same statistics.
        epoch = 1_000_000 + self.step
        perm = epoch_permutation(len(self.train_samples), int(self.cfg["seed"]), epoch)
        bs = max(int(self.cfg["batch"]) // self.world, 1)
        keys = [[(epoch, i) for i in perm[k * bs : (k + 1) * bs]] for k in range(min(n, len(perm) // bs))]
        batches = (default_collate_clips([self.train_samples[key] for key in b]) for b in keys)
        precise_bn(self.ema.module if self.ema else self.model, batches, self.device)

    def _val_parts(self) -> dict[Any, Any] | None:
        """``val_balance``: one evaluator per source of a merged val split (None: pooled only)."""
        if not self.cfg.get("val_balance"):
            return None
        parts = sorted({s.meta.get("part", 0) for s in getattr(self.val_ds, "sequences", [])})
        return {p: make_evaluator() for p in parts} if len(parts) > 1 else None

    def _validate(self) -> dict[str, float]:
        model = self.ema.module if self.ema else self.model
        by_part = self._val_parts()
        ev = run_evaluation(
            model,
            self.val_ds,
            make_evaluator(),
            self.device,
            progress=bool(self.cfg["progress"]),
            by_part=by_part,
        )
        res = flat_numbers(ev.compute())
        value = pick_metric(res, self.metric)
        if by_part:  # each source counts once, however many val frames it has
            per = {p: pick_metric(flat_numbers(e.compute()), self.metric) for p, e in by_part.items()}
            res |= {f"part{p}/{self.metric}": v for p, v in per.items()}
            value = res[f"balanced/{self.metric}"] = float(np.mean(list(per.values())))
        better = self.best is None or (
            value > self.best if self.cfg["metric_mode"] == "max" else value < self.best
        )
        res["_better"], res["_value"] = float(better), value
        return res

    def _log_point(self, sums: dict[str, float], n: int, t0: float, validate: bool) -> None:
        losses = self._mean_parts(sums, n)
        metrics: dict[str, float] = {}
        if validate and self.rank == 0:
            metrics = self._validate()
        improved = bool(metrics.pop("_better", 0.0))
        if improved:
            self.best = metrics.pop("_value")
        metrics.pop("_value", None)
        if self.rank == 0:
            row = {
                "step": self.step,
                "epoch": self.step / self.spe,
                **{f"train/{k}": v for k, v in losses.items()},
                **{f"metrics/{k}": v for k, v in metrics.items()},
                "lr": self.scheduler.get_last_lr()[0],
                "time": round(time.time() - t0, 3),
            }
            self.rows.append(row)
            write_results_csv(self.run_dir / "results.csv", self.rows)
            if improved:
                ckpt_mod.save_checkpoint(self.run_dir / "weights" / "best.pt", self._state())
        if self.world > 1:
            dist.barrier()

    def _save_last(self) -> None:
        if self.rank == 0:
            ckpt_mod.save_checkpoint(self.run_dir / "weights" / "last.pt", self._state())
        if self.world > 1:
            dist.barrier()

    def _write_meta(self) -> None:
        if self.rank != 0:
            return
        d = self.run_dir
        (d / "weights").mkdir(parents=True, exist_ok=True)
        write_yaml(d / "args.yaml", self.cfg)
        write_yaml(d / "env.yaml", env_info(str(self.device), self.world))
        for split, names in self.splits.items():
            (d / "splits").mkdir(exist_ok=True)
            atomic_write_text(d / "splits" / f"{split}.txt", "".join(f"{n}\n" for n in names))

    def fit(self) -> Path:
        self._write_meta()
        t0 = time.time() - (float(self.rows[-1]["time"]) if self.rows else 0.0)
        sums: dict[str, float] = {}
        n = 0
        pbar = None
        if self.cfg["progress"] and self.rank == 0:
            from tqdm import tqdm

            pbar = tqdm(
                total=self.total, initial=self.step, desc=f"train {self.cfg['model']}", dynamic_ncols=True
            )
        while self.step < self.total:
            self.sampler.set_epoch(self.step // self.spe, skip=self.step % self.spe)
            for batch in self.loader:
                parts = self._update(batch)
                self.step += 1
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n += 1
                if pbar is not None:
                    pbar.update(1)
                    pbar.set_postfix(
                        loss=f"{float(parts['loss']):.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}"
                    )
                last = self.step >= self.total
                do_val = self.val_every > 0 and (self.step % self.val_every == 0 or last)
                if do_val or last:  # mid-run last.pt saves only serve resuming: no need to re-estimate
                    self._precise_bn()
                if do_val or (self.val_every == 0 and (self.step % self.save_every == 0 or last)):
                    self._log_point(sums, n, t0, do_val)
                    sums, n = {}, 0
                if self.step % self.save_every == 0 or last:
                    self._save_last()
                if last:
                    break
        if pbar is not None:
            pbar.close()
        self._finish()
        return self.run_dir

    def _finish(self) -> None:
        if self.rank == 0:
            w = self.run_dir / "weights"
            if not (w / "best.pt").is_file():  # no validation ran: the final weights are the selection
                ckpt_mod.save_checkpoint(w / "best.pt", self._state())
            if self.cfg.get("plots"):
                plot_results(self.rows, self.run_dir / "results.png")
        if self.world > 1:
            dist.barrier()
        if self.own_pg:
            dist.destroy_process_group()


def train(train_data: Dataset | None = None, val_data: Dataset | None = None, **overrides: Any) -> Path:
    """Train from config keys (see ``configs/default.yaml``); returns the run folder.

    ``train_data`` / ``val_data`` may be torch Datasets of contract sample dicts (in-memory data for
    tests and notebooks); otherwise ``data=`` is loaded with ``mirstd.data``. ``resume=true`` (or a
    path to ``last.pt``) continues a run exactly where its last checkpoint left it.
    """
    resume = overrides.get("resume")
    if resume not in (None, False, "false", "False"):
        base = build_config({k: v for k, v in overrides.items() if k in ("project", "name", "model")})
        path = _resume_path(resume, {**base, **overrides})
        ck = ckpt_mod.load_checkpoint(path)
        cfg = {**_resume_config(ck, overrides, path), "resume": str(path)}
        trainer = Trainer(cfg, ck, path.parent.parent, train_data, val_data)
    else:
        cfg = build_config(overrides)
        _check_imgsz(cfg)
        trainer = Trainer(cfg, None, None, train_data, val_data)
    return trainer.fit()
