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


def test_fixed_loss_models_refuse_loss_and_loss_args():
    """A box model's loss is its own: a ``loss=`` or ``loss_args=`` for it is an error, never dropped."""
    from mirstd.models.registry import create

    model = create("smfnet", width=0.25)
    model.set_loss(None)  # the default: nothing to choose
    with pytest.raises(ValueError, match="loss='bce'"):
        model.set_loss("bce")
    with pytest.raises(ValueError, match="loss_args=.*per_sample"):
        model.set_loss(None, per_sample=False)
    create("resunet").set_loss(None, per_sample=False)  # mask models take them


def test_softiou_bce_is_the_sum_of_its_terms_per_sample_or_per_batch():
    from mirstd.models.losses import SoftIoUBCELoss

    g = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    g[0, :, 1:3, 1:3] = 1  # sample 1 has no target
    z = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bce = BCELoss()(z, g)
    for per_sample in (True, False):
        got = SoftIoUBCELoss(bce_weight=0.5, per_sample=per_sample)(z, g)
        want = SoftIoULoss(per_sample=per_sample)(z, g) + 0.5 * bce
        assert got.item() == pytest.approx(want.item(), abs=1e-12)
    assert SoftIoUBCELoss(per_sample=False)(z, g).item() != pytest.approx(SoftIoUBCELoss()(z, g).item())
