"""The weights the package actually ships (``src/mirstd/weights``): each file loads safely, stays
within the 10 MB budget, agrees with its model card and runs under the clip contract.

``test_pretrained.py`` checks the machinery on a stand-in; this file checks the real files, so a
broken or mismatched ``benchmarks/real_data.py ship`` is caught before it lands.
"""

from __future__ import annotations

import pytest
import torch

from mirstd.models import pretrained

SHIPPED = pretrained.pretrained_names()
MAX_BYTES = 10 * 2**20  # issue 11: each shipped checkpoint <= 10 MB


def test_the_package_ships_weights() -> None:
    assert {"pstfnet", "resunet", "smfnet"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_and_card_agree(name: str) -> None:
    path = pretrained.pretrained_path(name)
    assert path is not None and path.stat().st_size <= MAX_BYTES
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    card = pretrained.model_card(name)
    assert card["name"] == name and card["model"] == ckpt["model_name"]
    assert card["model_args"] == (ckpt.get("model_args") or {})
    assert ckpt["card"]["name"] == name
    floats = [v for v in ckpt["model"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert all(torch.isfinite(v).all() for v in floats)
    # the card says where it came from and what it scored on the test splits
    assert card["trained_on"]["val_split"] and not str(card["trained_on"]["val_split"]).startswith("test")
    assert card["steps_done"] > 0 and card["test_scores"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_runs_under_the_contract(name: str) -> None:
    model, _ = pretrained.load_pretrained(name)
    frames = model.num_frames or 5
    torch.manual_seed(0)
    clip = 0.3 + 0.05 * torch.rand(1, model.in_channels, frames, 64, 64)
    clip[..., 30:33, 40:43] += 0.5  # one bright blob
    with torch.no_grad():
        pred = model.predict(clip)
    if pred.scores is not None:
        assert pred.scores.shape == (1, 1, 64, 64)
        assert torch.isfinite(pred.scores).all() and 0 <= pred.scores.min() and pred.scores.max() <= 1
    if pred.boxes is not None:
        assert len(pred.boxes) == 1 and pred.boxes[0].shape[-1] == 6
        assert torch.isfinite(pred.boxes[0]).all()
