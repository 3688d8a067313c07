"""The Python API, mirroring the CLI key for key (Ultralytics style).

>>> import mirstd
>>> m = mirstd.Model("pstfnet", grid_size=4)          # a registered name (+ model_args) ...
>>> run = m.train(data="synth:smoke", steps=50)        # ... the keys of `mirstd train`
>>> m = mirstd.Model(run / "weights" / "best.pt")      # ... or a checkpoint
>>> m.val(split="test"); m.predict(source="clip.mp4"); m.profile(imgsz=256)
>>> mirstd.evaluate(pred="runs/segment/predict", data="synth:smoke")   # = mirstd eval

Every method takes exactly the keys of its task's section of ``configs/default.yaml`` (the CLI's),
less the ones the ``Model`` already fixes (``model``, ``model_args``, ``weights``), validated the
same way: an unknown key raises ConfigError naming the closest valid one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirstd.engine.trainer import train as _train
from mirstd.infer.evaluate import evaluate_saved, validate
from mirstd.infer.predict import predict as _predict
from mirstd.models.cli import profile as _profile
from mirstd.report.demo import run_demo
from mirstd.utils.config import ConfigError, task_config, task_defaults

# Keys a Model binds itself, per task.
BOUND = {"train": {"model", "model_args"}, "val": {"model", "model_args", "weights"},
         "predict": {"model", "model_args", "weights"}, "profile": {"model", "model_args"}}  # fmt: skip


def api_keys(task: str) -> set[str]:
    """The keyword arguments ``Model.<task>`` accepts: the CLI's keys less the bound ones."""
    return set(task_defaults(task)) - BOUND.get(task, set())


def _check(task: str, kw: dict[str, Any]) -> dict[str, Any]:
    bound = sorted(set(kw) & BOUND.get(task, set()))
    if bound:
        raise ConfigError(f"Model.{task}: {bound[0]!r} is fixed by the Model; create another Model instead")
    return task_config(task, kw)


class Model:
    """A registered method (``Model("pstfnet", **model_args)``) or a checkpoint (``Model("best.pt")``)."""

    def __init__(self, model: str | Path, **model_args: Any) -> None:
        text = str(model)
        self.weights: Path | None = None
        self.name: str | None = None
        if text.endswith(".pt") or Path(text).is_file():
            if model_args:
                raise ConfigError("Model(checkpoint): model_args come from the checkpoint; drop them")
            self.weights = Path(text)
            if not self.weights.is_file():
                raise FileNotFoundError(f"checkpoint {self.weights} does not exist")
        else:
            self.name = text
        self.model_args = dict(model_args)

    def __repr__(self) -> str:
        return f"Model({str(self.weights or self.name)!r})"

    def _method(self) -> dict[str, Any]:
        if self.weights is not None:
            return {"weights": str(self.weights)}
        return {"model": self.name, "model_args": self.model_args}

    def train(self, **kw: Any) -> Path:
        """``mirstd train``; a checkpoint Model resumes nothing — it trains its model anew."""
        _check("train", kw)
        if self.weights is not None:
            raise ConfigError(
                "Model(checkpoint).train: to continue a run use resume=PATH/last.pt with a named Model"
            )
        run = _train(model=self.name, model_args=self.model_args, **kw)
        self.weights = Path(run) / "weights" / "best.pt"
        return Path(run)

    def val(self, **kw: Any) -> dict[str, Any]:
        """``mirstd val`` (the checkpoint, or the parameter-free method)."""
        cfg = _check("val", kw)
        return validate(**{**cfg, **self._method()})

    def predict(self, **kw: Any) -> Path:
        """``mirstd predict``; returns the output folder."""
        cfg = _check("predict", kw)
        if not cfg.get("source"):
            raise ConfigError("Model.predict needs source=PATH")
        return _predict(**{**cfg, **self._method()})

    def profile(self, **kw: Any) -> dict[str, Any]:
        """``mirstd profile`` of the registered model (checkpoints profile the model they name)."""
        cfg = _check("profile", kw)
        if self.name is None:
            raise ConfigError("Model(checkpoint).profile: profile the registered name, e.g. Model('pstfnet')")
        return _profile(**{**cfg, "model": self.name, "model_args": self.model_args})


def train(**kw: Any) -> Path:
    """``mirstd train`` (every key of the train section)."""
    return _train(**kw)


def val(**kw: Any) -> dict[str, Any]:
    """``mirstd val``."""
    return validate(**task_config("val", kw))


def predict(**kw: Any) -> Path:
    """``mirstd predict``."""
    cfg = task_config("predict", kw)
    if not cfg.get("source"):
        raise ConfigError("mirstd.predict needs source=PATH")
    return _predict(**cfg)


def evaluate(**kw: Any) -> dict[str, Any]:
    """``mirstd eval``: score saved predictions."""
    cfg = task_config("eval", kw)
    for req in ("pred", "data"):
        if cfg.get(req) is None:
            raise ConfigError(f"mirstd.evaluate needs {req}=...")
    return evaluate_saved(**cfg)


def demo(**kw: Any) -> Path:
    """``mirstd demo``; returns the report path."""
    return run_demo(**task_config("demo", kw))
