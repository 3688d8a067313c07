"""ResUNet-DTUM (spec pstfnet.md Part B)."""

from __future__ import annotations

import pytest
import torch

from mirstd.models import create
from mirstd.models.dtum import direction_code


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts() -> None:
    m = create("dtum")
    # Spec §B4: DTUM module 70,497; ResUNet->32 227,808; total 298,305.
    assert (n_params(m), n_params(m.dtum), n_params(m.backbone)) == (298_305, 70_497, 227_808)
    assert (m.task, m.in_channels, m.size_divisor, m.num_frames) == ("segment", 3, 8, 5)


def test_direction_code_values() -> None:
    # 4x4 plane, T = 2: flat index t*16 + h*4 + w; code = (w % 2) + 2 (h % 2) - 1.5.
    idx = torch.tensor([0, 1, 4, 5, 16 + 6, 16 + 15])
    assert direction_code(idx, (4, 4)).tolist() == [-1.5, -0.5, 0.5, 1.5, 0.5, 1.5]


@pytest.mark.parametrize("detach", [True, False])
def test_detach_quirk_controls_which_layers_learn(detach: bool) -> None:
    torch.manual_seed(0)
    m = create("dtum", detach=detach)
    out = m(torch.rand(2, 3, 5, 32, 32))
    assert out.shape == (2, 1, 32, 32)
    out.square().mean().backward()
    frozen = sorted(n for n, p in m.named_parameters() if p.grad is None)
    # Spec §B7 D1: conv2_1, conv3_1, conv4_1 (our enc.1-3) and conv3_2, conv2_2 (dec3, dec2) with
    # their BN affine parameters get no gradient in the faithful model; everything learns when fixed.
    layers = ["enc.1", "enc.2", "enc.3", "dec3", "dec2"]
    expected = sorted(
        f"dtum.{lay}.{mod}.{par}" for lay in layers for mod in ("conv", "bn") for par in ("weight", "bias")
    )
    assert frozen == (expected if detach else [])
