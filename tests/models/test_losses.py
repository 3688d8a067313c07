import math

import pytest
import torch

from mirstd.models.losses import BCELoss, FocalLoss, SoftIoULoss, build_loss


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_softiou_per_sample_formula():
    # sample 0: p = [0.5, 0.5], g = [1, 0] -> (0.5 + 1) / (1 + 1 - 0.5 + 1) = 1.5 / 2.5 = 0.6
    # sample 1: p = [0.5, 0.5], g = [1, 1] -> (1 + 1) / (1 + 2 - 1 + 1) = 2 / 3
    logits = torch.zeros(2, 1, 1, 2)
    g = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]])
    loss = SoftIoULoss()(logits, g)
    assert loss.item() == pytest.approx(1 - (0.6 + 2 / 3) / 2, abs=1e-6)
    # whole-batch variant (DTUM fullySup): (1.5 + 1) / (2 + 3 - 1.5 + 1) = 2.5 / 4.5
    assert SoftIoULoss(per_sample=False)(logits, g).item() == pytest.approx(1 - 2.5 / 4.5, abs=1e-6)


def test_softiou_perfect_prediction_near_zero():
    g = torch.zeros(1, 1, 4, 4)
    g[..., 1:3, 1:3] = 1
    logits = (g * 2 - 1) * 30
    assert SoftIoULoss()(logits, g).item() == pytest.approx(0.0, abs=1e-6)


def test_bce_matches_hand_value():
    logits = torch.tensor([[[[_logit(0.8), _logit(0.3)]]]])
    g = torch.tensor([[[[1.0, 0.0]]]])
    assert BCELoss()(logits, g).item() == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, rel=1e-5)


def test_focal_matches_hand_value():
    # pixel 1: g=1, p=0.8: 0.25 * 0.2^2 * -log 0.8; pixel 2: g=0, p=0.3: 0.75 * 0.3^2 * -log 0.7
    logits = torch.tensor([[[[_logit(0.8), _logit(0.3)]]]])
    g = torch.tensor([[[[1.0, 0.0]]]])
    want = (0.25 * 0.04 * -math.log(0.8) + 0.75 * 0.09 * -math.log(0.7)) / 2
    assert FocalLoss(alpha=0.25, gamma=2.0)(logits, g).item() == pytest.approx(want, rel=1e-5)
    # gamma 0 and no alpha weighting is plain BCE
    assert FocalLoss(alpha=-1, gamma=0)(logits, g).item() == pytest.approx(
        BCELoss()(logits, g).item(), rel=1e-6
    )


def test_build_loss_names_and_error():
    assert isinstance(build_loss("SoftIoU"), SoftIoULoss)
    assert isinstance(build_loss("focal", gamma=1.0), FocalLoss)
    with pytest.raises(ValueError, match="unknown loss 'dice'; choose one of: softiou, bce, focal"):
        build_loss("dice")
