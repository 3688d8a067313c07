"""The one method contract, checked over every registered method (issue: "One contract, layers that hold")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirstd.engine import train
from mirstd.models import create, list_models
from mirstd.models.base import Method, Prediction

# Small but real inputs; widths reduced only where the full model is too slow for a unit test.
SMALL_ARGS = {"smfnet": {"width": 0.25}, "sstnet": {"width": 0.25}, "uiunet": {"width": 0.125}}
SIZE = 64


def _clip(m: Method, b: int = 2) -> torch.Tensor:
    t = m.num_frames or 3
    size = SIZE if SIZE % m.size_divisor == 0 else m.size_divisor * 2
    return torch.rand(b, m.in_channels, t, size, size)


@pytest.mark.parametrize("name", sorted(list_models()))
def test_predict_returns_a_prediction_of_the_right_shapes(name):
    torch.manual_seed(0)
    m = create(name, **SMALL_ARGS.get(name, {}))
    assert isinstance(m, Method) and m.task in ("segment", "detect") and m.default_metric
    assert m.num_frames is None or m.num_frames >= 1
    clip = _clip(m)
    out = m.predict(clip)
    assert isinstance(out, Prediction)
    h, w = clip.shape[-2:]
    if out.scores is not None:
        assert out.scores.shape == (2, 1, h, w)
        assert float(out.scores.min()) >= 0 and float(out.scores.max()) <= 1
    if out.boxes is not None:
        assert len(out.boxes) == 2 and all(b.ndim == 2 and b.shape[1] == 6 for b in out.boxes)
    assert out.scores is not None or out.boxes is not None


class _Samples(torch.utils.data.Dataset):
    """Contract sample dicts for any method: a bright 3x3 target, its mask, box and point."""

    def __init__(self, m: Method, n: int = 4) -> None:
        self.m, self.n = m, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        rng = np.random.RandomState(i)
        c = _clip(self.m, 1)[0] * 0.2
        y, x = rng.randint(8, SIZE - 8, 2)
        c[..., y - 1 : y + 2, x - 1 : x + 2] = 0.9
        mask = torch.zeros(1, *c.shape[-2:])
        mask[:, y - 1 : y + 2, x - 1 : x + 2] = 1
        return {"clip": c, "mask": mask, "has_mask": True,
                "boxes": torch.tensor([[x - 1.0, y - 1.0, x + 2.0, y + 2.0]]),
                "points": torch.tensor([[float(x), float(y)]]),
                "meta": {"sequence": "s", "frame": i, "index": i, "orig_size": tuple(c.shape[-2:])}}  # fmt: skip


TRAINABLE = [n for n in sorted(list_models()) if create(n, **SMALL_ARGS.get(n, {})).trainable]


def test_some_methods_are_trainable_and_some_are_not():
    assert {"pstfnet", "resunet", "smfnet"} <= set(TRAINABLE) and "tophat" not in TRAINABLE


@pytest.mark.parametrize("name", TRAINABLE)
def test_trainable_method_takes_two_engine_steps_through_its_loss(name, tmp_path):
    torch.set_num_threads(1)
    m = create(name, **SMALL_ARGS.get(name, {}))
    samples = [_Samples(m)[i] for i in range(2)]
    batch = {"clip": torch.stack([s["clip"] for s in samples]), "mask": torch.stack([s["mask"] for s in samples]),
             "boxes": [s["boxes"] for s in samples], "points": [s["points"] for s in samples]}  # fmt: skip
    loss = m.loss(m(batch["clip"]), batch)
    assert "loss" in loss and torch.isfinite(loss["loss"]) and loss["loss"].requires_grad
    run = train(train_data=_Samples(m), model=name, model_args=SMALL_ARGS.get(name, {}), steps=2, batch=2,
                val_every=0, project=str(tmp_path), name="c", progress=False, plots=False, amp=False)  # fmt: skip
    assert (run / "weights" / "best.pt").is_file()
    rows = (run / "results.csv").read_text().splitlines()
    assert rows[0].startswith("step") and "train/loss" in rows[0] and rows[-1].split(",")[0] == "2"
