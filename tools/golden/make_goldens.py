"""Produce the golden-output files of ``tests/models/test_golden.py`` by running the authors' code.

The reference code is never part of mirstd: check the repositories out in a scratch folder outside
the repo (one folder per repository, named ``owner+name``), at the commits below, e.g.::

    mkdir -p /tmp/ref && cd /tmp/ref
    git clone https://github.com/Bo11anFu/CS-Net Bo11anFu+CS-Net && git -C Bo11anFu+CS-Net checkout 9b5d11c
    git clone https://github.com/TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM \
        TinaLRJ+Multi-frame-infrared-small-target-detection-DTUM   # 61053d8
    git clone https://github.com/psile/SMFNet psile+SMFNet                     # 2f85133
    git clone https://github.com/UESTC-nnLab/SSTNet UESTC-nnLab+SSTNet         # 12e5fff
    git clone https://github.com/YeRen123455/Infrared-Small-Target-Detection \
        YeRen123455+Infrared-Small-Target-Detection                            # 21584be
    git clone https://github.com/RuiZhang97/ISNet RuiZhang97+ISNet             # c5a7548 (branch main)
    git clone https://github.com/danfenghong/IEEE_TIP_UIU-Net danfenghong+IEEE_TIP_UIU-Net  # 625023a
    git clone https://github.com/sun11999/RDIAN sun11999+RDIAN                 # e1df518
    .venv/bin/python tools/golden/make_goldens.py --ref-root /tmp/ref [--only dtum,smfnet_itsdt]

Each case builds mirstd's model from a seed (construction + ``distinct_seeded_state``, which
draws every weight from numpy so the values do not depend on the CPU kernel), copies those weights into the reference model under the reference's
names (``mirstd.models.weights.to_reference``, the importer's key map run backwards), feeds both
the same seeded input in float64 (eval mode) and stores a small summary of the *reference* output
(``golden_io.summarize``: float64 crop, seeded sample, full-tensor sums and a seeded projection)
plus the mirstd-vs-reference differences measured here. The test rebuilds mirstd's model from the
seed and compares with that summary.

Changes needed to run the reference code on CPU, applied at run time here (the files are not
edited): a stub ``thop`` module (imported at module level for profiling only); SMFNet's
``mcfg['pretrained_3d'] = False`` (no Kinetics download; the weights are overwritten anyway);
DTUM's ``direction`` calls ``Tensor.cuda(arr.device)``, patched to ``Tensor.to(device)``.
DNANet-DTUM is the DTUM repository's ``models/model_DNANet.py``. ISNet's DCNv2 (TTOA) is a compiled
CUDA extension: ``dcn_v2.dcn_v2_conv`` is replaced by mirstd's ``layers.deform_conv2d`` (so the
golden checks everything around the deformable sampling, which mirstd tests on its own), and its
Sobel-like gradient input (``Get_gradient_nopadding`` of ``train_ISNet.py``, CUDA kernels) is
computed here in float64 with the same kernels.

``dtum_released_airground`` additionally needs the authors' ``ResUNet_DTUM_para.pth`` (the
DTUM repo's ``results/ResUNet_DTUM_SpatialDeepSupFalse_fullySup/``) and the airground-real data:
the reference model loads the checkpoint with its own ``load_state_dict`` and runs on
``sequence1`` frames 1-5 (raw 8-bit values, the authors' normalisation).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from golden_io import compare, summarize  # noqa: E402

from mirstd.models import create  # noqa: E402
from mirstd.models.weights import KEY_MAPS, distinct_seeded_state, load_reference, to_reference  # noqa: E402

REFS = {
    "pstfnet": ("Bo11anFu/CS-Net", "9b5d11ccb070bc4685b39c22cce019eda13386e8"),
    "dtum": (
        "TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM",
        "61053d83b1243bb8fc828d19b6b58c31eaeb69f3",
    ),
    "smfnet": ("psile/SMFNet", "2f85133fb09f9e60ce9e096133f7f85c252bc132"),
    "sstnet": ("UESTC-nnLab/SSTNet", "12e5ffffd3d6edd21127e08f4d398afac21f86da"),
    "dnanet": ("YeRen123455/Infrared-Small-Target-Detection", "21584be00d19bc3080c78deee0953af250bed99b"),
    "isnet": ("RuiZhang97/ISNet", "c5a7548a9abca04208fdf7bd5a5ee97e33cc056d"),
    "uiunet": ("danfenghong/IEEE_TIP_UIU-Net", "625023aae55fed804460fb275fcec222f2c9c442"),
    "rdian": ("sun11999/RDIAN", "e1df518bb026aba4d231b96e328eb21ecda37749"),
}
DTUM_CKPT = "results/ResUNet_DTUM_SpatialDeepSupFalse_fullySup/ResUNet_DTUM_para.pth"
AIRGROUND = Path("/work/shared/data/airground-real")


def _ref_dir(root: Path, family: str) -> Path:
    d = root / REFS[family][0].replace("/", "+")
    if not d.is_dir():
        raise SystemExit(f"missing reference checkout {d} ({REFS[family][0]} @ {REFS[family][1][:7]})")
    return d


def stub_thop() -> None:
    """A stub ``thop`` module: the references import it at module level, for profiling only."""
    if "thop" in sys.modules:
        return
    try:
        import thop  # noqa: F401
    except ImportError:
        stub = types.ModuleType("thop")
        stub.profile = stub.clever_format = lambda *a, **k: None
        sys.modules["thop"] = stub


@contextlib.contextmanager
def cuda_as_to():
    """``Tensor.cuda(device)`` -> ``Tensor.to(device)`` (the DTUM reference's direction code)."""
    orig = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, device=None, *a, **k: self.to(
        device if device is not None else self.device
    )
    try:
        yield
    finally:
        torch.Tensor.cuda = orig


def seeded_mirstd(key: str, seed: int) -> torch.nn.Module:
    km = KEY_MAPS[key]
    torch.manual_seed(seed)
    m = create(km.model, **km.model_args)
    distinct_seeded_state(m, seed, skip=km.config_keys)
    return m.eval()


def seeded_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """U(0, 1) clip from numpy (torch's samplers differ between CPU kernels)."""
    return torch.from_numpy(np.random.default_rng(seed + 1).random(shape))


def seeded_normals(seed: int):  # noqa: ANN201 - generator of float64 N(0, 1) tensors
    rng = np.random.default_rng(seed + 2)
    return lambda *shape: torch.from_numpy(rng.standard_normal(shape))


def _load_ref(ref: torch.nn.Module, key: str, mine: torch.nn.Module) -> torch.nn.Module:
    ref.load_state_dict(to_reference(key, mine, ref.state_dict()), strict=True)
    return ref.eval().double()


# ----------------------------------------------------------------------------------------------
# reference builders
# ----------------------------------------------------------------------------------------------
def _on_path(d: str | Path) -> None:
    if not Path(d).is_dir():
        raise SystemExit(f"reference folder not found: {d}")
    if str(d) not in sys.path:
        sys.path.insert(0, str(d))


# Builders from a checkout folder (also used by benchmarks/bench_references.py).
def build_pstfnet(d: str | Path) -> torch.nn.Module:
    _on_path(d)
    stub_thop()
    return importlib.import_module("csnet.models.multiframe.PSTFNet.model_PSTFNet").PSTFNet()


def build_dtum(d: str | Path) -> torch.nn.Module:
    _on_path(d)
    mod = importlib.import_module("models.model_res_UNet")
    return mod.res_UNet_DTUM(num_classes=1, input_channels=3, block=mod.Res_block,
                             num_blocks=[2, 2, 2, 2], nb_filter=[8, 16, 32, 64, 128])  # fmt: skip


def build_smfnet(d: str | Path, neck: str = "itsdt") -> torch.nn.Module:
    _on_path(d)
    stub_thop()
    mod = importlib.import_module("SMFNET_model.SMFNET" if neck == "itsdt" else "SMFNET_model.SMTFNET_IRDST")
    mod.mcfg["pretrained_3d"] = False
    with contextlib.redirect_stdout(sys.stderr):  # it prints its configuration
        return mod.STNetwork(num_classes=1, num_frame=5)


def ref_pstfnet(root: Path) -> torch.nn.Module:
    return build_pstfnet(_ref_dir(root, "pstfnet"))


def ref_dtum(root: Path) -> torch.nn.Module:
    return build_dtum(_ref_dir(root, "dtum"))


def ref_smfnet(root: Path, neck: str) -> torch.nn.Module:
    return build_smfnet(_ref_dir(root, "smfnet"), neck)


def ref_sstnet(root: Path) -> torch.nn.Module:
    sys.path.insert(0, str(_ref_dir(root, "sstnet")))
    return importlib.import_module("nets.Network").Network(num_classes=1, num_frame=5)


_BASELINE_PATHS: list[str] = []


def _add_path(d: Path) -> None:
    """Put checkout ``d`` first on sys.path, removing the other baselines' checkouts and forgetting
    their top-level ``model`` / ``models`` packages (DNANet, UIU-Net and RDIAN all name theirs
    ``model``, a regular package in UIU-Net that would shadow RDIAN's namespace one)."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("model", "models")]:
        del sys.modules[name]
    for p in _BASELINE_PATHS:
        while p in sys.path:
            sys.path.remove(p)
    _BASELINE_PATHS.append(str(d))
    sys.path.insert(0, str(d))
    importlib.invalidate_caches()


def ref_dnanet(root: Path, deep_supervision: bool = True) -> torch.nn.Module:
    _add_path(_ref_dir(root, "dnanet"))
    mod = importlib.import_module("model.model_DNANet")
    return mod.DNANet(1, 3, mod.Res_CBAM_block, [2, 2, 2, 2], [16, 32, 64, 128, 256],
                      deep_supervision=deep_supervision)  # fmt: skip


def ref_dnanet_dtum(root: Path) -> torch.nn.Module:
    _add_path(_ref_dir(root, "dtum"))
    mod = importlib.import_module("models.model_DNANet")
    return mod.DNANet_DTUM(1, 3, mod.Res_CBAM_block, [2, 2, 2, 2], [16, 32, 64, 128, 256])


def ref_uiunet(root: Path) -> torch.nn.Module:
    _add_path(_ref_dir(root, "uiunet"))
    return importlib.import_module("model.uiunet").UIUNET(3, 1)


def ref_rdian(root: Path) -> torch.nn.Module:
    _add_path(_ref_dir(root, "rdian"))
    return importlib.import_module("model.segmentation").RDIAN()


def ref_isnet(root: Path) -> torch.nn.Module:
    d = _ref_dir(root, "isnet") / "model"
    _add_path(d)
    sys.path.insert(0, str(d / "DCNv2"))
    _BASELINE_PATHS.append(str(d / "DCNv2"))
    # imported at module level, never used by ISNet's forward: ``six`` (config.py) and torchvision's
    # ``pad`` (my_functionals/custom_functional.py)
    for name in ("six", "torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchvision.transforms.functional"].pad = None
    dcn = _import_dcn_v2()
    from mirstd.models.layers import deform_conv2d

    dcn.dcn_v2_conv = lambda x, off, mask, w, b, s, p, dil, g: deform_conv2d(x, off, mask, w, b, s, p, dil)
    return importlib.import_module("ISNet").ISNet([4] * 3, [8, 16, 32, 64])


def _import_dcn_v2():  # noqa: ANN202 - the reference's dcn_v2 module, its compiled ``_ext`` stubbed
    if "_ext" not in sys.modules:
        sys.modules["_ext"] = types.ModuleType("_ext")
    return importlib.import_module("dcn_v2")


def isnet_gradient(x: torch.Tensor) -> torch.Tensor:
    """``Get_gradient_nopadding`` of ISNet's ``train_ISNet.py`` (per channel sqrt(v^2 + h^2 + 1e-6),
    v/h: the central differences [0,-1,0;0,0,0;0,1,0] and its transpose, zero padding 1)."""
    import torch.nn.functional as F

    kv = torch.tensor([[0, -1, 0], [0, 0, 0], [0, 1, 0]], dtype=x.dtype)[None, None]
    kh = torch.tensor([[0, 0, 0], [-1, 0, 1], [0, 0, 0]], dtype=x.dtype)[None, None]
    chans = []
    for i in range(x.shape[1]):
        xi = x[:, i : i + 1]
        chans.append(torch.sqrt(F.conv2d(xi, kv, padding=1) ** 2 + F.conv2d(xi, kh, padding=1) ** 2 + 1e-6))
    return torch.cat(chans, 1)


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------
def _record(name, family, key, seed, shape, ref_out, diffs, extra=None) -> dict:
    rec = {
        "case": name,
        "reference": {"repo": REFS[family][0], "commit": REFS[family][1], "key_map": KEY_MAPS[key].reference},
        "model": KEY_MAPS[key].model,
        "model_args": KEY_MAPS[key].model_args,
        "key_map": key,
        "seed": seed,
        "input": {"shape": list(shape), "kind": "numpy default_rng(seed+1).random (U(0, 1)), float64"},
        "dtype": "float64",
        "outputs": ref_out,
        "measured_at_generation": diffs,
        "torch": torch.__version__,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    rec.update(extra or {})
    return rec


def _diff_entry(mine: torch.Tensor, ref: torch.Tensor) -> float:
    assert mine.shape == ref.shape, f"shape {tuple(mine.shape)} vs reference {tuple(ref.shape)}"
    return float((mine.double() - ref.double()).abs().max())


def case_pstfnet_full(root: Path, seed: int = 0) -> dict:
    shape = (1, 3, 5, 384, 384)
    mine = seeded_mirstd("pstfnet", seed).double()
    ref = _load_ref(ref_pstfnet(root), "pstfnet", mine)
    clip = seeded_input(shape, seed)
    with torch.no_grad():
        r = ref(mine.norm(clip))
        diffs = {}
        for fast in (True, False):
            mine.fast = fast
            diffs[f"fast={fast}"] = _diff_entry(mine(clip), r)
        mine32 = seeded_mirstd("pstfnet", seed)
        for fast in (True, False):
            mine32.fast = fast
            diffs[f"float32 fast={fast}"] = _diff_entry(mine32(clip.float()), r)
    return _record("pstfnet_384", "pstfnet", "pstfnet", seed, shape, {"logits": summarize(r)}, diffs)


def case_pstfnet_modules(root: Path, seed: int = 0) -> dict:
    """PTAM (HDC_module) at every level on seeded features, and MSFM (CIM) on seeded maps whose
    coarsest is 48 x 48 (the reference's MSFM is wired to a 24 x 24 grid = 384 x 384 input)."""
    mine = seeded_mirstd("pstfnet", seed).double()
    ref = _load_ref(ref_pstfnet(root), "pstfnet", mine)
    randn = seeded_normals(seed)
    outs, diffs, shapes = {}, {}, {}
    with torch.no_grad():
        for lvl, c in enumerate((8, 16, 32, 64)):
            f = randn(1, c, 5, 24, 24)
            shapes[f"ptam{lvl}"] = list(f.shape)
            r = getattr(ref, f"hdc{lvl}")(f.clone())
            outs[f"ptam{lvl}"] = summarize(r)
            p = mine.ptam[str(lvl)]
            p.fast = False
            diffs[f"ptam{lvl} fast=False"] = _diff_entry(p(f), r)
            p.fast = True
            diffs[f"ptam{lvl} fast=True"] = _diff_entry(p(f.transpose(1, 2).contiguous()), r)
        # the coarsest map fixes the reference's 24 x 24 grid (48 -> 24); the gates accept any finer
        # size, so the four maps are kept small (adaptive pooling 72 -> 24 covers a non-2x ratio)
        feats = [randn(1, c, s, s) for c, s in zip((8, 16, 32, 64), (96, 72, 48, 48), strict=True)]
        shapes["msfm"] = [list(f.shape) for f in feats]
        r = ref.CIM(tuple(f.clone() for f in feats))
        m = mine.msfm(feats)
        for i, (a, b) in enumerate(zip(m, r, strict=True)):
            outs[f"msfm{i}"] = summarize(b)
            diffs[f"msfm{i}"] = _diff_entry(a, b)
    rec = _record("pstfnet_modules", "pstfnet", "pstfnet", seed, (0,), outs, diffs)
    rec["input"] = {
        "shapes": shapes,
        "kind": "numpy default_rng(seed+2).standard_normal, in the order listed",
    }
    return rec


def case_dtum(root: Path, seed: int = 0) -> dict:
    shape = (1, 3, 5, 64, 64)
    mine = seeded_mirstd("dtum", seed).double()
    ref = _load_ref(ref_dtum(root), "dtum", mine)
    clip = seeded_input(shape, seed)
    with torch.no_grad(), cuda_as_to():
        r = ref(mine.norm(clip), None, 0)[0][:, :, 0]
        diffs = {"float64": _diff_entry(mine(clip), r)}
    return _record("dtum", "dtum", "dtum", seed, shape, {"logits": summarize(r)}, diffs)


def exact_dtum_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Float64 normalisation constants: ``ClipNorm`` keeps float32 buffers (105.4025/255 rounded),
    which on the released weights (logits down to -605) alone moves the output by 2.4e-5."""
    model.norm.mean.fill_(105.4025 / 255.0)
    model.norm.std.fill_(26.6452 / 255.0)
    return model


def airground_clip(frames: range = range(1, 6), seq: str = "sequence1", root: Path = AIRGROUND) -> np.ndarray:
    from mirstd.data.image import read_frame

    return np.stack([read_frame(Path(root) / "data" / seq / f"{i:04d}.png")[0] for i in frames])


def case_dtum_released(root: Path) -> dict:
    d = _ref_dir(root, "dtum")
    ckpt = d / DTUM_CKPT
    raw = torch.from_numpy(airground_clip()).double()  # (T, H, W) raw 8-bit values
    ref = ref_dtum(root)
    ref.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True), strict=True)
    ref = ref.eval().double()
    x = ((raw - 105.4025) / 26.6452)[None, None].repeat(1, 3, 1, 1, 1)  # MIRSDTDataLoader + run_model
    with torch.no_grad(), cuda_as_to():
        r = ref(x, None, 0)[0][:, :, 0]
        mine, rep = load_reference("dtum", ckpt)
        clip = (raw / 255.0)[None, None].repeat(1, 3, 1, 1, 1)
        r32 = ref.float()(x.float(), None, 0)[0][:, :, 0]
        diffs = {
            "float32 (mirstd clip path vs reference float64)": _diff_entry(mine(clip.float()), r),
            "float32 (mirstd clip path vs reference float32)": _diff_entry(mine(clip.float()), r32),
        }
        exact_dtum_norm(mine.double())
        diffs["float64, exact normalisation constants"] = _diff_entry(mine(clip), r)
    import hashlib

    rec = _record(
        "dtum_released_airground", "dtum", "dtum", -1, tuple(x.shape), {"logits": summarize(r)}, diffs
    )
    rec["input"] = {
        "shape": list(x.shape),
        "kind": "airground-real sequence1 frames 0001-0005.png, raw 8-bit; reference input "
        "(raw - 105.4025) / 26.6452 replicated x3; mirstd clip raw / 255",
    }
    rec["checkpoint"] = {
        "path_in_repo": DTUM_CKPT,
        "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
        "bytes": ckpt.stat().st_size,
        "import_report": rep.summary(),
    }
    return rec


def case_smfnet(root: Path, neck: str, seed: int = 0) -> dict:
    key = f"smfnet_{neck}"
    shape = (1, 3, 5, 64, 64)
    mine = seeded_mirstd(key, seed).double()
    ref = _load_ref(ref_smfnet(root, neck), key, mine)
    clip = seeded_input(shape, seed)
    with torch.no_grad():
        r = ref((clip - mine.mean.double()) / mine.std.double())[0]
        diffs = {"float64": _diff_entry(mine(clip), r)}
    return _record(key, "smfnet", key, seed, shape, {"head": summarize(r)}, diffs)


def case_sstnet(root: Path, seed: int = 0) -> dict:
    shape = (1, 3, 5, 64, 64)
    mine = seeded_mirstd("sstnet", seed).double()
    ref = _load_ref(ref_sstnet(root), "sstnet", mine)
    clip = seeded_input(shape, seed)
    with torch.no_grad():
        r = ref((clip - mine.mean.double()) / mine.std.double())[0]
        diffs = {"float64": _diff_entry(mine(clip), r)}
    return _record("sstnet", "sstnet", "sstnet", seed, shape, {"head": summarize(r)}, diffs)


def _single_frame_case(name: str, family: str, build, shape, run) -> dict:
    """Single-frame baselines: ``run(ref, mine, clip) -> ({output name: ref tensor}, {diff name: d})``."""
    seed = 0
    mine = seeded_mirstd(name, seed).double()
    ref = _load_ref(build(), name, mine)
    clip = seeded_input(shape, seed)
    with torch.no_grad():
        outs, diffs = run(ref, mine, clip)
    return _record(name, family, name, seed, shape, {k: summarize(v) for k, v in outs.items()}, diffs)


def _key(mine: torch.nn.Module, clip: torch.Tensor) -> torch.Tensor:
    return mine.norm(clip[:, :, -1])  # mirstd's normalised key frame (float64 after .double())


def _run_dnanet(ref, mine, clip):
    r = ref(_key(mine, clip))
    m = mine(clip)
    outs = {f"final{i + 1}": t for i, t in enumerate(r)}
    return outs, {f"final{i + 1}": _diff_entry(a, b) for i, (a, b) in enumerate(zip(m, r, strict=True))}


def _run_dnanet_dtum(ref, mine, clip):
    with cuda_as_to():
        x = torch.stack([mine.norm(clip[:, :, t]) for t in range(clip.shape[2])], 2)
        r = ref(x, None, 0)[0][:, :, 0]  # (B, 1, 1, H, W) -> key-frame logits
        return {"logits": r}, {"float64": _diff_entry(mine(clip), r)}


def _run_uiunet(ref, mine, clip):
    # the reference returns sigmoid(d0..d6); mirstd returns the logits
    r = ref(_key(mine, clip))
    m = mine(clip)
    outs = {f"d{i}": t for i, t in enumerate(r)}
    return outs, {
        f"d{i} (sigmoid)": _diff_entry(torch.sigmoid(a), b) for i, (a, b) in enumerate(zip(m, r, strict=True))
    }


def _run_rdian(ref, mine, clip):
    r = ref(_key(mine, clip))
    return {"logits": r}, {"float64": _diff_entry(mine(clip), r)}


def _run_isnet(ref, mine, clip):
    x = _key(mine, clip)
    r_mask, r_edge = ref(x, isnet_gradient(x))  # reference edge: sigmoid of mirstd's edge logits
    m_mask, m_edge = mine(clip)
    return {"mask": r_mask, "edge": r_edge}, {
        "mask": _diff_entry(m_mask, r_mask),
        "edge (sigmoid)": _diff_entry(torch.sigmoid(m_edge), r_edge),
    }


def case_ref_keys(root: Path) -> dict:
    """Names and shapes of every reference state dict (no values, no code): lets the importer tests
    check a full reference state dict without the reference checkout."""
    builders = {
        "pstfnet": lambda: ref_pstfnet(root),
        "dtum": lambda: ref_dtum(root),
        "smfnet_itsdt": lambda: ref_smfnet(root, "itsdt"),
        "smfnet_irdst": lambda: ref_smfnet(root, "irdst"),
        "sstnet": lambda: ref_sstnet(root),
    }
    fam = {
        "pstfnet": "pstfnet",
        "dtum": "dtum",
        "smfnet_itsdt": "smfnet",
        "smfnet_irdst": "smfnet",
        "sstnet": "sstnet",
    }
    out = {}
    for key, build in builders.items():
        sd = build().state_dict()
        out[key] = {
            "reference": {
                "repo": REFS[fam[key]][0],
                "commit": REFS[fam[key]][1],
                "key_map": KEY_MAPS[key].reference,
            },
            "keys": {k: list(v.shape) for k, v in sd.items()},
        }
    return {
        "case": "ref_keys",
        "measured_at_generation": {k: len(v["keys"]) for k, v in out.items()},
        "networks": out,
    }


def case_ref_keys_baselines(root: Path) -> dict:
    """``ref_keys`` for the single-frame deep baselines and DNANet-DTUM (a file of its own)."""
    builders = {
        "dnanet": ("dnanet", lambda: ref_dnanet(root)),
        "dnanet_dtum": ("dtum", lambda: ref_dnanet_dtum(root)),
        "isnet": ("isnet", lambda: ref_isnet(root)),
        "uiunet": ("uiunet", lambda: ref_uiunet(root)),
        "rdian": ("rdian", lambda: ref_rdian(root)),
    }
    out = {}
    for key, (family, build) in builders.items():
        with contextlib.redirect_stdout(sys.stderr):
            sd = build().state_dict()
        out[key] = {
            "reference": {
                "repo": REFS[family][0],
                "commit": REFS[family][1],
                "key_map": KEY_MAPS[key].reference,
            },
            "keys": {k: list(v.shape) for k, v in sd.items()},
        }
    return {
        "case": "ref_keys_baselines",
        "measured_at_generation": {k: len(v["keys"]) for k, v in out.items()},
        "networks": out,
    }


CASES = {
    "ref_keys": case_ref_keys,
    "ref_keys_baselines": case_ref_keys_baselines,
    "pstfnet_modules": case_pstfnet_modules,
    "pstfnet_384": case_pstfnet_full,
    "dtum": case_dtum,
    "dtum_released_airground": case_dtum_released,
    "smfnet_itsdt": lambda root: case_smfnet(root, "itsdt"),
    "smfnet_irdst": lambda root: case_smfnet(root, "irdst"),
    "sstnet": case_sstnet,
    "dnanet": lambda root: _single_frame_case(
        "dnanet", "dnanet", lambda: ref_dnanet(root), (1, 3, 1, 64, 64), _run_dnanet
    ),
    "dnanet_dtum": lambda root: _single_frame_case(
        "dnanet_dtum", "dtum", lambda: ref_dnanet_dtum(root), (1, 3, 5, 64, 64), _run_dnanet_dtum
    ),
    "isnet": lambda root: _single_frame_case(
        "isnet", "isnet", lambda: ref_isnet(root), (1, 3, 1, 64, 64), _run_isnet
    ),
    "uiunet": lambda root: _single_frame_case(
        "uiunet", "uiunet", lambda: ref_uiunet(root), (1, 3, 1, 64, 64), _run_uiunet
    ),
    "rdian": lambda root: _single_frame_case(
        "rdian", "rdian", lambda: ref_rdian(root), (1, 1, 1, 64, 64), _run_rdian
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-root", type=Path, default=Path("/tmp/ref"))
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "models" / "golden")
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    names = [n for n in args.only.split(",") if n] or list(CASES)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        t0 = time.time()
        with contextlib.redirect_stdout(sys.stderr):  # the reference code's prints
            rec = CASES[name](args.ref_root)
        # self-check: the stored summary accepts the reference itself and the measured diffs
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(rec, separators=(",", ":")) + "\n")
        print(f"{name}: {rec['measured_at_generation']}  ({time.time() - t0:.0f} s, {path.stat().st_size} B)")


if __name__ == "__main__":
    main()
    _ = compare  # re-exported for interactive checks
