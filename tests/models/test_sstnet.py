import pytest
import torch

from mirstd.models import create
from mirstd.models.yolox_blocks import count_params


def test_sstnet_parameter_counts_match_spec():
    m = create("sstnet")
    assert count_params(m) == 11_949_003
    assert count_params(m.backbone) == 4_830_144
    assert count_params(m.neck) == 4_722_693
    assert count_params(m.head) == 2_396_166


def test_sstnet_shapes_and_frames():
    torch.set_num_threads(1)
    m = create("sstnet", width=0.25).eval()
    assert (m.task, m.in_channels, m.size_divisor) == ("detect", 3, 32)
    with torch.no_grad():
        assert m(torch.rand(1, 3, 5, 64, 64)).shape == (1, 6, 8, 8)
    with pytest.raises(ValueError, match="T=5"):
        m(torch.rand(1, 3, 4, 64, 64))
    assert len(m.predict(torch.rand(2, 3, 5, 64, 64)).boxes) == 2


@pytest.mark.slow
def test_sstnet_full_size_flops():
    from torch.utils.flop_counter import FlopCounterMode

    m = create("sstnet").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(torch.rand(1, 3, 5, 512, 512))
    assert fc.get_total_flops() / 1e9 == pytest.approx(122.87, rel=5e-3)
