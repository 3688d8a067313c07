"""Shared baseline layers: the torch DCNv2 against a per-pixel reference, ISNet's gradient operator
against finite differences, the FCN head and CBAM shapes (float64 where exactness is checked)."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from mirstd.models.layers import ModulatedDeformConv2d, deform_conv2d
from mirstd.models.losses import DeepSupervisionLoss, ISNetLoss, MultiBCELoss, SoftIoULoss, gradient_magnitude


def _naive_dcn(x, offset, mask, weight, bias, stride, pad):
    """Literal DCNv2 rule, one output pixel at a time (numpy float64)."""
    x, offset, mask, weight, bias = (t.detach().numpy() for t in (x, offset, mask, weight, bias))
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    out = np.zeros((b, o, ho, wo))

    def sample(img, y, xx):
        if not (-1 < y < h and -1 < xx < w):
            return np.zeros(img.shape[0])
        y0, x0 = math.floor(y), math.floor(xx)
        v = np.zeros(img.shape[0])
        for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xi, wx in ((x0, 1 - (xx - x0)), (x0 + 1, xx - x0)):
                if 0 <= yi < h and 0 <= xi < w:
                    v += wy * wx * img[:, yi, xi]
        return v

    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                acc = bias.copy()
                for ki in range(kh):
                    for kj in range(kw):
                        k = ki * kw + kj
                        y = i * stride - pad[0] + ki + offset[n, 2 * k, i, j]
                        xx = j * stride - pad[1] + kj + offset[n, 2 * k + 1, i, j]
                        acc += weight[:, :, ki, kj] @ (mask[n, k, i, j] * sample(x[n], y, xx))
                out[n, :, i, j] = acc
    return torch.from_numpy(out)


def test_deform_conv_matches_per_pixel_reference_float64():
    g = torch.Generator().manual_seed(0)
    for (kh, kw), pad, stride in (((3, 1), (1, 0), 1), ((1, 3), (0, 1), 1), ((3, 3), (1, 1), 2)):
        x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
        wgt = torch.randn(4, 3, kh, kw, generator=g, dtype=torch.float64)
        bias = torch.randn(4, generator=g, dtype=torch.float64)
        ho = (7 + 2 * pad[0] - kh) // stride + 1
        wo = (6 + 2 * pad[1] - kw) // stride + 1
        off = 2.5 * torch.randn(
            2, 2 * kh * kw, ho, wo, generator=g, dtype=torch.float64
        )  # many samples leave the image
        mask = torch.rand(2, kh * kw, ho, wo, generator=g, dtype=torch.float64)
        got = deform_conv2d(x, off, mask, wgt, bias, stride, pad)
        ref = _naive_dcn(x, off, mask, wgt, bias, stride, pad)
        assert torch.allclose(got, ref, atol=1e-12, rtol=0), float((got - ref).abs().max())


def test_deform_conv_reduces_to_conv2d_with_zero_offsets_and_unit_mask():
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    w, b = torch.randn(6, 5, 3, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    off, mask = torch.zeros(2, 18, 9, 8, dtype=torch.float64), torch.ones(2, 9, 9, 8, dtype=torch.float64)
    assert torch.allclose(deform_conv2d(x, off, mask, w, b, 1, 1), F.conv2d(x, w, b, padding=1), atol=1e-12)
    # integer offset (dy, dx) = (1, 0) on every tap = the conv of the image shifted up by one row
    # (rows below the first: there the deformable conv reads image row 0 where the shifted conv pads)
    off[:, 0::2] = 1.0
    shifted = F.pad(x[:, :, 1:], (0, 0, 0, 1))
    got, ref = deform_conv2d(x, off, mask, w, b, 1, 1), F.conv2d(shifted, w, b, padding=1)
    assert torch.allclose(got[..., 1:, :], ref[..., 1:, :], atol=1e-12)


def test_dcn_layer_starts_as_half_modulated_conv_and_has_gradients():
    layer = ModulatedDeformConv2d(4, 4, (3, 1), 1, (1, 0)).double()
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    y = layer(x)  # zero-initialised offset/mask conv: offsets 0, mask sigmoid(0) = 0.5
    ref = F.conv2d(x, 0.5 * layer.weight, layer.bias, padding=(1, 0))
    assert torch.allclose(y, ref, atol=1e-12)
    y.sum().backward()
    assert layer.conv_offset_mask.weight.grad is not None and x.grad is not None


def test_gradient_magnitude_is_the_central_difference_of_the_reference():
    """``Get_gradient_nopadding``: sqrt((x[i+1]-x[i-1])² + (x[j+1]-x[j-1])² + 1e-6), zero padding."""
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    dv = xp[:, :, 2:, 1:-1] - xp[:, :, :-2, 1:-1]
    dh = xp[:, :, 1:-1, 2:] - xp[:, :, 1:-1, :-2]
    ref = np.sqrt(dv**2 + dh**2 + 1e-6)
    assert np.abs(gradient_magnitude(x).numpy() - ref).max() < 1e-14
    # on a 0/1 mask: the target edge, values 1e-3 (flat), 1, sqrt(2)
    m = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    m[..., 3:5, 3:5] = 1
    e = gradient_magnitude(m)
    assert float(e[0, 0, 0, 0]) == 1e-3 and abs(float(e.max()) - math.sqrt(2 + 1e-6)) < 1e-12


def test_multi_output_losses():
    g = (torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    outs = [torch.randn(2, 1, 16, 16) for _ in range(7)]
    bce = sum(F.binary_cross_entropy(torch.sigmoid(o), g) for o in outs)
    assert torch.allclose(MultiBCELoss()(outs, g), bce, atol=1e-5)
    base = SoftIoULoss(per_sample=False)
    ds = DeepSupervisionLoss(base)(outs[:4], g)
    assert torch.allclose(ds, sum(base(o, g) for o in outs[:4]) / 4)
    # ISNet: reference terms written out
    z, e = outs[0], outs[1]
    eg = gradient_magnitude(g)

    def iou0(p, t):  # SoftLoULoss1: sigmoid inside, per sample, smooth 0
        p = torch.sigmoid(p)
        inter = (p * t).sum((1, 2, 3))
        return 1 - (inter / (p.sum((1, 2, 3)) + t.sum((1, 2, 3)) - inter)).mean()

    pe = torch.sigmoid(e)
    # nn.BCELoss as the reference's torch computed it; current torch refuses targets > 1 (the edge
    # map reaches sqrt(2)), so the formula is written out
    bce = -(eg * torch.log(pe).clamp(min=-100) + (1 - eg) * torch.log(1 - pe).clamp(min=-100)).mean()
    assert float(eg.max()) > 1.0
    ref = iou0(z, g) + 10 * bce + iou0(pe, eg)
    assert torch.allclose(ISNetLoss()((z, e), g), ref, atol=1e-5)
