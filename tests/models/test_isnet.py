"""ISNet (issue 13).

Reference: ``RuiZhang97/ISNet`` branch master @ c5a7548a9abca04208fdf7bd5a5ee97e33cc056d,
``ISNet(layer_blocks=[4]*3, channels=[8,16,32,64])`` = 1,090,671 parameters (the DCNv2 layers'
parameters counted from ``DCNv2/dcn_v2.py``; its compiled op is replaced by
``mirstd.models.layers.deform_conv2d``). BasicIRSTD's 0.966M is a 1-channel variant with DCNv1.
With the reference state dict loaded, mask and edge outputs equal the reference in float64
(max |diff| 0.0; the reference run with the torch DCN).
"""

import pytest
import torch
from _baseline_training import smoke_losses

from mirstd.models import create
from mirstd.models.isnet import TFD, ISNet
from mirstd.models.losses import gradient_magnitude

SMALL = {"layer_blocks": (1, 1, 1), "keep_unused": False}


def test_isnet_parameter_count_equals_the_reference():
    m = create("isnet")
    assert sum(p.numel() for p in m.parameters()) == 1_090_671
    unused = (
        "res1",
        "d1",
        "res2",
        "d2",
        "res3",
        "d3",
        "cw",
        "gate1",
        "gate2",
        "gate3",
        "SA",
        "SA_att",
        "head2",
        "conv2_1",
        "conv16",
    )
    n_unused = sum(p.numel() for n in unused for p in getattr(m, n).parameters())
    assert sum(p.numel() for p in create("isnet", keep_unused=False).parameters()) == 1_090_671 - n_unused
    assert "fuse.weight" not in m.state_dict() and "edge_fuse.weight" in m.state_dict()
    sd = {("fuse.weight" if k == "edge_fuse.weight" else k): v for k, v in m.state_dict().items()}
    create("isnet").load_state_dict(sd, strict=True)  # the reference's key loads


def test_isnet_outputs_and_contract():
    torch.manual_seed(0)
    m = create("isnet", **SMALL)
    assert isinstance(m, ISNet) and (m.in_channels, m.size_divisor) == (3, 16)
    clip = torch.rand(2, 3, 2, 32, 48)
    mask_logits, edge_logits = m(clip)
    assert mask_logits.shape == edge_logits.shape == (2, 1, 32, 48)
    loss = m.loss((mask_logits, edge_logits), {"mask": (torch.rand(2, 1, 32, 48) > 0.95).float()})
    assert {"loss", "mask", "edge_bce", "edge_iou"} <= set(loss) and loss["loss"].requires_grad
    p = m.predict(clip).scores
    assert p.shape == (2, 1, 32, 48) and float(p.min()) >= 0 and float(p.max()) <= 1


def test_tfd_is_the_taylor_combination_of_its_residual_states_float64():
    """TFD: (u1, δu0) = Res1(u0), (_, u2) = Res2(u1), u3 = 3·δu0 + u2 + Gate(u2, s)."""
    torch.manual_seed(0)
    t = TFD(8).double().eval()
    u0, s = torch.randn(2, 8, 10, 10, dtype=torch.float64), torch.randn(2, 1, 10, 10, dtype=torch.float64)

    def res(block, x):  # BasicBlock1 written out
        y = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        return torch.relu(x + y), torch.relu(y)

    with torch.no_grad():
        u1, du0 = res(t.res1, u0)
        _, u2 = res(t.res2, u1)
        g = t.gate
        alpha = g._gate_conv(torch.cat([u2, s], 1))
        ref = 3 * du0 + u2 + torch.nn.functional.conv2d(u2 * (1 + alpha), g.weight)
        assert torch.equal(t(u0, s), ref)


def test_isnet_shape_stream_sees_the_finite_difference_gradient_of_the_input():
    m = create("isnet", **SMALL).double().eval()
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    seen = {}
    h = m.dsup.register_forward_hook(lambda mod, inp, out: seen.update(x=inp[0]))
    with torch.no_grad():
        m.forward_frame(x)
    h.remove()
    assert torch.equal(seen["x"], gradient_magnitude(x))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_isnet_loss_falls_in_30_engine_steps(seed, tmp_path):
    """configs/isnet.yaml loss (mask SoftIoU + edge terms). Measured (lr 1e-2): 4.10 -> 2.67,
    4.53 -> 2.71, 3.91 -> 2.64."""
    losses = smoke_losses("isnet", SMALL, seed, tmp_path, lr=1e-2)
    assert losses[-1] < 0.9 * losses[0], losses
