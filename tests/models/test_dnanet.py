"""DNANet and DNANet-DTUM (issue 13).

Reference parameter counts, measured on the authors' code in a scratch checkout:
- DNANet: ``YeRen123455/Infrared-Small-Target-Detection`` @ 21584be00d19bc3080c78deee0953af250bed99b,
  ``DNANet(1, 3, Res_CBAM_block, [2,2,2,2], [16,32,64,128,256], deep_supervision=True)`` = 4,696,888
  (4,696,837 without deep supervision; with 1 input channel 4,696,568, = BasicIRSTD's 4.697M).
- DNANet-DTUM: ``TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM`` @
  61053d83b1243bb8fc828d19b6b58c31eaeb69f3, ``DNANet_DTUM(1, 3, Res_CBAM_block, [2,2,2,2],
  [16,32,64,128,256])`` = 4,767,861 (DNANet 4,697,364 + DTUM 70,497).
With the reference state dicts loaded (keys prefixed ``trunk.``), outputs equal the reference in
float64 (max |diff| 0.0 for DNANet-DTUM and 1e-9 for DNANet from the float32 ImageNet constants).
"""

import pytest
import torch
from _baseline_training import smoke_losses

from mirstd.models import create, list_models
from mirstd.models.dnanet import DNANet, DNANetDTUM
from mirstd.models.dtum import DTUM

SMALL = {"channels": (4, 8, 16, 32, 64), "blocks": (1, 1, 1, 1)}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_dnanet_parameter_counts_equal_the_reference():
    assert n_params(create("dnanet")) == 4_696_888
    assert n_params(create("dnanet", deep_supervision=False)) == 4_696_837
    assert n_params(create("dnanet", in_channels=1)) == 4_696_568


def test_dnanet_dtum_parameter_count_equals_the_reference():
    m = create("dnanet_dtum")
    assert n_params(m) == 4_767_861
    assert n_params(m.trunk) + n_params(m.final) == 4_697_364 and n_params(m.dtum) == 70_497


def test_listed_with_their_paper():
    models = list_models()
    assert "TIP 2023" in models["dnanet"] and "TNNLS 2023" in models["dnanet_dtum"]


def test_dnanet_outputs_and_contract():
    torch.manual_seed(0)
    m = create("dnanet", **SMALL)
    assert isinstance(m, DNANet) and (m.in_channels, m.num_frames, m.size_divisor) == (3, 1, 16)
    clip = torch.rand(2, 3, 3, 32, 48)  # any T: only the key (last) frame is used
    outs = m(clip)
    assert len(outs) == 4 and all(o.shape == (2, 1, 32, 48) for o in outs)
    clip2 = clip.clone()
    clip2[:, :, :-1] = 0
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(clip)[-1], m(clip2)[-1])
        p = m.predict(clip).scores
    assert torch.allclose(p, torch.sigmoid(m(clip)[-1].double()))
    loss = m.loss(outs, {"mask": (torch.rand(2, 1, 32, 48) > 0.95).float()})
    assert loss["loss"].requires_grad and 0 < float(loss["loss"].detach()) < 1
    single = create("dnanet", deep_supervision=False, **SMALL)
    assert single(clip).shape == (2, 1, 32, 48)
    with pytest.raises(ValueError, match="size_divisor"):
        m(torch.rand(1, 3, 1, 24, 24))


def test_dnanet_loss_is_the_authors_deep_supervision_softiou():
    """Mean over the 4 outputs of 1 - (Σpg + 1)/(Σp + Σg - Σpg + 1), one ratio over the batch."""
    m = create("dnanet", **SMALL)
    outs = [torch.randn(2, 1, 16, 16) for _ in range(4)]
    g = (torch.rand(2, 1, 16, 16) > 0.8).float()

    def softiou(z):
        p = torch.sigmoid(z)
        i = (p * g).sum()
        return 1 - (i + 1) / (p.sum() + g.sum() - i + 1)

    assert torch.allclose(m.loss(outs, {"mask": g})["loss"], sum(softiou(o) for o in outs) / 4)


def test_dnanet_dtum_equals_dtum_on_dnanet_features_float64():
    """Exactness: the model = DTUM(stack_t DNANet-features(frame_t)), the DTUM being mirstd's."""
    torch.manual_seed(0)
    m = create("dnanet_dtum", feat_channels=8, **SMALL).double().eval()
    assert isinstance(m, DNANetDTUM) and isinstance(m.dtum, DTUM)
    clip = torch.rand(2, 3, 5, 32, 32, dtype=torch.float64)
    ref_dtum = DTUM(8, 1, 5).double().eval()
    ref_dtum.load_state_dict(m.dtum.state_dict())
    with torch.no_grad():
        feats = torch.stack([m.features(m.norm(clip[:, :, t])) for t in range(5)], 2)
        assert torch.equal(m(clip), ref_dtum(feats))
        # the truncated trunk ignores the fourth diagonal: its modules exist but receive nothing
        assert feats.shape == (2, 8, 5, 32, 32)
    with pytest.raises(ValueError, match="T=3"):
        m(torch.rand(1, 3, 3, 32, 32, dtype=torch.float64))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_dnanet_loss_falls_in_30_engine_steps(seed, tmp_path):
    """Measured (lr 1e-2): seeds 0/1/2 0.941 -> 0.850, 0.917 -> 0.805, 0.822 -> 0.720."""
    losses = smoke_losses("dnanet", SMALL, seed, tmp_path, lr=1e-2)
    assert losses[-1] < 0.97 * losses[0], losses


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_dnanet_dtum_loss_falls_in_30_engine_steps(seed, tmp_path):
    """Measured (lr 1e-2): seeds 0/1/2 0.905 -> 0.792, 0.868 -> 0.664, 0.993 -> 0.784."""
    losses = smoke_losses("dnanet_dtum", {**SMALL, "feat_channels": 8}, seed, tmp_path, lr=1e-2)
    assert losses[-1] < 0.97 * losses[0], losses
