"""CPU fast paths of ResUNet-DTUM and SMFNet equal the literal computation (issue 15).

Everything runs in float64, where the rewrites (a (k,1,1) Conv3d as a banded GEMM, BN folded into
convs, late upsampling, per-frame 2D stem, fused concat + shuffle) differ from the literal ops by
summation order only (~1e-16); 1e-10 leaves ample room for other CPU kernels. The literal forms
are the modules' previous code, kept in DTUM as ``fast = False`` and written out here for SMFNet.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models import create
from mirstd.models.dtum import DTUM, _temporal_matrix
from mirstd.models.layers import pointwise_conv
from mirstd.models.smfnet import (
    InvertedResidual3D,
    ShuffleNetV2_3D,
    cat_shuffle,
    channel_shuffle,
    pixel_frames,
)
from mirstd.models.weights import distinct_seeded_state

TOL = 1e-10


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).detach().abs().max())


def _seeded(name: str, **kwargs: object) -> nn.Module:
    """float64 model whose every BN has its own statistics (so folding is really exercised)."""
    torch.manual_seed(0)
    m = create(name, **kwargs)
    distinct_seeded_state(m, 0, skip=(r"(backbone\.)?norm\.(mean|std)",))
    return m.double()


def _clip(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# shared pieces
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 6, 5, 7), (1, 6, 3, 4, 5)], ids=["4d", "5d"])
def test_pointwise_conv_equals_conv(shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape, dtype=torch.float64)
    w, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    conv = F.conv2d if len(shape) == 4 else F.conv3d
    k = w.view(4, 6, *([1] * (len(shape) - 2)))
    assert _max_diff(pointwise_conv(x, w, b), conv(x, k, b)) <= TOL
    assert _max_diff(pointwise_conv(x, k), conv(x, k)) <= TOL
    # a channel slice of channels-last memory is read in place (rows strided by the full width)
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    xs = x.contiguous(memory_format=fmt)[:, 2:]
    ws = w[:, 2:]
    assert _max_diff(pointwise_conv(xs, ws), conv(xs, ws.reshape(4, 4, *k.shape[2:]))) <= TOL


# ----------------------------------------------------------------------------------------------
# ResUNet-DTUM
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t,k,pad", [(5, 5, 2), (3, 5, 2), (2, 5, 2), (5, 5, 0), (7, 7, 0)])
def test_temporal_matrix_is_the_temporal_conv(t: int, k: int, pad: int) -> None:
    """The banded matrix on the time-major flattening equals Conv3d (k, 1, 1) for any T."""
    x = torch.randn(2, 3, t, 4, 5, dtype=torch.float64)
    w = torch.randn(4, 3, k, 1, 1, dtype=torch.float64)
    ref = F.conv3d(x, w, padding=(pad, 0, 0))  # (B, 4, T', H, W)
    flat = x.permute(0, 2, 1, 3, 4).reshape(2, 3 * t, 4, 5)  # index t*C + c
    y = pointwise_conv(flat, _temporal_matrix(w, t, pad))
    assert _max_diff(y.reshape(2, ref.shape[2], 4, 4, 5).transpose(1, 2), ref) <= TOL


@pytest.mark.parametrize("shape", [(1, 3, 5, 32, 32), (2, 3, 5, 64, 48)])
def test_dtum_eval_fast_equals_literal(shape: tuple[int, ...]) -> None:
    m = _seeded("dtum").eval()
    clip = _clip(*shape)
    with torch.no_grad():
        fast = m(clip)
        m.dtum.fast = False
        literal = m(clip)
    assert fast.abs().max() > 0.01
    assert _max_diff(fast, literal) <= TOL


def test_dtum_module_any_t_and_streaming_entry() -> None:
    """``DTUM.forward`` on external features (any T, the DNANet-DTUM and streaming entry) and with
    features already in the flattening's memory order (no copy: the caller's tensor is untouched)."""
    torch.manual_seed(0)
    d = DTUM(8, 1, num_frames=3)
    distinct_seeded_state(d, 0)
    d = d.double().eval()
    feats = torch.randn(2, 8, 3, 16, 24, dtype=torch.float64)
    pix_order = feats.permute(0, 3, 4, 2, 1).contiguous().permute(0, 4, 3, 1, 2)  # (B, H, W, T, C) memory
    keep = pix_order.clone()
    with torch.no_grad():
        fast, fast_view = d(feats), d(pix_order)
        d.fast = False
        literal = d(feats)
    assert _max_diff(fast, literal) <= TOL and _max_diff(fast_view, literal) <= TOL
    assert torch.equal(pix_order, keep)


@pytest.mark.parametrize("detach", [True, False])
def test_dtum_train_fast_equals_literal(detach: bool) -> None:
    """Train mode: outputs, every parameter gradient and the BN running statistics agree
    (Dropout3d draws the same channel mask: same RNG call on the same shape)."""
    base = _seeded("dtum", detach=detach).train()
    clip = _clip(2, 3, 5, 32, 32)
    runs = []
    for fast in (True, False):
        m = copy.deepcopy(base)
        m.dtum.fast = fast
        torch.manual_seed(3)
        out = m(clip)
        out.square().mean().backward()
        runs.append((out, m))
    (a, ma), (b, mb) = runs
    assert _max_diff(a, b) <= TOL
    for (name, pa), pb in zip(ma.named_parameters(), mb.parameters(), strict=True):
        assert (pa.grad is None) == (pb.grad is None), name
        if pa.grad is not None:
            assert _max_diff(pa.grad, pb.grad) <= TOL, name
    for ba, bb in zip(ma.buffers(), mb.buffers(), strict=True):
        assert _max_diff(ba.double(), bb.double()) <= TOL


# ----------------------------------------------------------------------------------------------
# SMFNet: the literal (previous) forward, written out
# ----------------------------------------------------------------------------------------------
def _seq(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for layer in layers:  # every Conv3d through the stock kernel (no PointwiseConv3d GEMM)
        x = nn.Conv3d.forward(layer, x) if isinstance(layer, nn.Conv3d) else layer(x)
    return x


def _literal_unit(u: InvertedResidual3D, x: torch.Tensor) -> torch.Tensor:
    if u.stride == 2:
        out = torch.cat([_seq(u.banch1, x), _seq(u.banch2, x)], 1)
    else:
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat([x1, _seq(u.banch2, x2)], 1)
    return channel_shuffle(out, 2)


def _literal_3d(net: ShuffleNetV2_3D, x: torch.Tensor) -> torch.Tensor:
    x = net.maxpool(_seq(net.conv1, x))
    for u in net.features:
        x = _literal_unit(u, x)
    return (x.mean(dim=2, keepdim=True) if x.shape[2] > 1 else x).squeeze(2)


def _literal_refine(r: nn.Module, x: torch.Tensor) -> torch.Tensor:
    u = F.gelu(r.conv(x))
    u = r.ca(u) * u
    x0 = r.dconv5_5(u)
    s = x0
    for k in (7, 11, 21):
        s = s + getattr(r, f"dconv{k}_1")(getattr(r, f"dconv1_{k}")(x0))
    return r.conv(r.conv(s) * u)


def _literal_smfnet(m: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    x = (clip - m.mean) / m.std
    f2d = m.backbone(x[:, :, -1])
    xt = _literal_3d(m.backbone_3d, x)
    fs = []
    for enc, f in zip(m.encoders, f2d):
        t = _literal_refine(enc.refine, F.interpolate(xt, size=f.shape[-2:], mode="nearest"))
        fs.append(enc.fuse_convs(torch.cat([f, t], 1)))
    return m.head(m.neck(*fs))


def _small_smfnet(neck: str = "itsdt") -> nn.Module:
    return _seeded("smfnet", width=0.25, neck=neck)


@pytest.mark.parametrize("neck", ["itsdt", "irdst"])
def test_smfnet_eval_fast_equals_literal(neck: str) -> None:
    m = _small_smfnet(neck).eval()
    clip = _clip(1, 3, 5, 64, 96)
    with torch.no_grad():
        literal = _literal_smfnet(m, clip)
        fast = m(clip)
        fused = m.fuse()(clip)  # BN folded in float64, CSAM kept (gamma != 0), late upsampling
    assert literal.abs().max() > 0.01
    assert _max_diff(fast, literal) <= TOL
    assert _max_diff(fused, literal) <= TOL


def test_smfnet_train_fast_equals_literal() -> None:
    """Train mode (BN batch statistics): output and gradients. Dropout is switched off: its mask is
    drawn in memory order, which channels_last changes (same distribution, other elements)."""
    base = _small_smfnet().train()
    for mod in base.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    clip = _clip(2, 3, 5, 64, 64)
    grads = []
    for forward in (lambda m: m(clip), lambda m: _literal_smfnet(m, clip)):
        m = copy.deepcopy(base)
        out = forward(m)
        out.square().mean().backward()
        grads.append((out, {n: p.grad for n, p in m.named_parameters() if p.grad is not None}))
    (a, ga), (b, gb) = grads
    assert _max_diff(a, b) <= TOL
    assert ga.keys() == gb.keys()
    for name in ga:
        assert _max_diff(ga[name], gb[name]) <= TOL, name


@pytest.mark.parametrize("t", [5, 4, 3, 1])
def test_shufflenet_stem_frames_equals_conv3d_maxpool(t: int) -> None:
    """Eval stem: per-frame 2D conv on 9 time-padded planes + separable max-pool + late ReLU."""
    net = _small_smfnet().backbone_3d.eval()
    x = torch.randn(2, 3, t, 32, 48, dtype=torch.float64)
    with torch.no_grad():
        ref = net.maxpool(_seq(net.conv1, x))
        assert _max_diff(net._stem_frames(pixel_frames(x)), ref) <= TOL


def test_cat_shuffle_equals_cat_then_channel_shuffle() -> None:
    a, b = torch.randn(2, 6, 3, 4, 5), torch.randn(2, 6, 3, 4, 5)
    ref = channel_shuffle(torch.cat([a, b], 1), 2)
    assert torch.equal(cat_shuffle(a, b), ref)
    assert torch.equal(cat_shuffle(a.contiguous(memory_format=torch.channels_last_3d), b), ref)
    assert torch.equal(cat_shuffle(a[:, :, 0], b[:, :, 0]), channel_shuffle(torch.cat([a, b], 1)[:, :, 0], 2))


# ----------------------------------------------------------------------------------------------
# inference rewrites (no gradient recorded): BN folded into the ResBlock / PTAM convs,
# channels_last convs, frame-by-frame PSTFNet encoder, PTAM gates only where the output reads
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("pstfnet", {"channels": (4, 8, 16, 32), "grid_size": 4}, (2, 3, 5, 32, 32)),
        ("pstfnet", {"num_frames": 3}, (1, 3, 3, 64, 48)),
        ("resunet", {}, (2, 3, 5, 32, 32)),
        ("dtum", {}, (1, 3, 5, 32, 32)),
    ],
)
def test_inference_rewrites_equal_the_graph_forward(name: str, kwargs: dict, shape: tuple) -> None:
    m = _seeded(name, **kwargs).eval()
    clip = _clip(*shape)
    with torch.no_grad():
        fast = m(clip)
    graph = m(clip)  # autograd on: the training-graph ops, in eval mode
    assert graph.requires_grad
    assert fast.abs().max() > 0.01
    assert _max_diff(fast, graph) <= TOL
