"""Single-frame ResUNet baseline (spec pstfnet.md Part C, §A3, §A6, §B3)."""

from __future__ import annotations

import pytest
import torch

from mirstd.models import create
from mirstd.models.resunet import ResUNet


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_dtum_repo_resunet_parameter_count() -> None:
    # Spec Part C: DTUM repo res_UNet(1 class, [8,16,32,64,128]) = 227,529; §B3 with 32 outputs 227,808.
    assert n_params(ResUNet(variant="dtum")) == 227_529
    assert n_params(ResUNet(variant="dtum", out_channels=32)) == 227_808


def test_cbam_resunet_is_pstfnet_backbone() -> None:
    # Spec §A8: PSTFNet encoder 179,304 + decoder 77,457 = 256,761 (Table 3 "Backbone").
    m = create("resunet")
    assert n_params(m) == 256_761
    assert (n_params(m.encoder), n_params(m.decoder)) == (179_304, 77_457)
    assert (m.task, m.in_channels, m.size_divisor, m.num_frames) == ("segment", 3, 8, 1)


def test_uses_only_the_last_frame() -> None:
    torch.manual_seed(0)
    m = ResUNet(channels=(4, 8, 16, 32)).eval()
    clip = torch.rand(2, 3, 5, 32, 32)
    other = clip.clone()
    other[:, :, :-1] = torch.rand(2, 3, 4, 32, 32)  # change every frame but the last
    assert torch.equal(m(clip), m(other))
    assert torch.allclose(m(clip), m(clip[:, :, -1:]))
    scores = m.predict(clip)["scores"]
    assert scores.shape == (2, 1, 32, 32) and 0 <= scores.min() and scores.max() <= 1


def test_errors_are_clear() -> None:
    m = ResUNet(channels=(4, 8, 16, 32))
    with pytest.raises(ValueError, match="expected a clip"):
        m(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="multiples of size_divisor=8"):
        m(torch.rand(1, 3, 1, 36, 32))
    with pytest.raises(ValueError, match="variant"):
        ResUNet(variant="unet")
    with pytest.raises(ValueError, match="mean has 2 values"):
        ResUNet(mean=(0.1, 0.2))


def _blobs(n: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs (sigma 2, peak +0.5) on N(0.3, 0.05) noise, mask = disc r=3 (single frame)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    frames = 0.3 + 0.05 * torch.randn(n, 1, 1, size, size, generator=g)
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        cy, cx = 8 + (size - 16) * torch.rand(2, generator=g)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        frames[i, 0, 0] += 0.5 * torch.exp(-d2 / (2 * 2.0**2))
        masks[i, 0] = (d2 <= 3.0**2).float()
    return frames.clamp(0, 1).expand(-1, 3, -1, -1, -1).contiguous(), masks


def test_small_resunet_halves_softiou_loss() -> None:
    torch.manual_seed(0)
    model = ResUNet(channels=(4, 8, 16, 32))
    clips, masks = _blobs(32)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
    losses = []
    for s in range(100):
        idx = (torch.arange(4) + 4 * s) % 32
        p = torch.sigmoid(model(clips[idx]))
        g = masks[idx]
        inter = (p * g).sum((1, 2, 3))
        loss = 1 - ((inter + 1) / (p.sum((1, 2, 3)) + g.sum((1, 2, 3)) - inter + 1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
