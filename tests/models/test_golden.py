"""Golden outputs: mirstd's networks against the authors' code (issue 10).

``tests/models/golden/*.json`` hold a summary of the *reference* implementation's output (a float64
crop, seeded samples, full-tensor sums and a seeded projection, see ``tools/golden/golden_io.py``)
for mirstd's seeded weights mapped to the reference's names, with the repository and commit it came
from. ``tools/golden/make_goldens.py`` produced them by running the reference code from a scratch
checkout; here only mirstd runs: it rebuilds the model from the same seed and must reproduce them.

Tolerance: everything runs in float64. Measured at generation the differences are 0 to 1.5e-12
(ulps: the same operations in the same order, see ``measured_at_generation`` in each file); 1e-9
leaves a factor > 1e3 for another CPU kernel's summation order (``ATEN_CPU_CAPABILITY=default``)
and is still 1e4 below the issue's 1e-5. A structural difference (the MSFM residual this issue
fixed moved PSTFNet's output by 4.2e-2), a swapped key or a wrong layer shows as >= 1e-4 in every
statistic: ``distinct_seeded_state`` gives every BN its own statistics and every zero-initialised
tensor a value, so no two same-shape tensors can be exchanged unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(ROOT / "tools" / "golden"))

from golden_io import compare  # noqa: E402
from make_goldens import airground_clip, exact_dtum_norm, seeded_input, seeded_mirstd, seeded_normals  # noqa: E402

from mirstd.models.weights import load_reference  # noqa: E402

TOL = 1e-9
DTUM_CKPT_ENV = "MIRSTD_DTUM_CKPT"


def golden(name: str) -> dict:
    rec = json.loads((GOLDEN / f"{name}.json").read_text())
    ref = rec.get("reference", {})
    assert ref.get("repo") and len(ref.get("commit", "")) == 40, (
        f"{name}: golden must name its reference commit"
    )
    return rec


@pytest.fixture(autouse=True)
def _threads():
    prev = torch.get_num_threads()
    torch.set_num_threads(min(prev, 2))
    yield
    torch.set_num_threads(prev)


def test_pstfnet_modules_match_reference() -> None:
    """PTAM (``HDC_module``) at the four levels, fast and literal path, and MSFM (``CIM``, with the
    lab's ``2x + FFN_i(x_i)`` group FFN) on maps whose coarsest is 48 x 48 (its fixed 24 x 24 grid)."""
    rec = golden("pstfnet_modules")
    model = seeded_mirstd("pstfnet", rec["seed"]).double()
    randn = seeded_normals(rec["seed"])
    shapes = rec["input"]["shapes"]
    with torch.no_grad():
        for lvl in range(4):
            f = randn(*shapes[f"ptam{lvl}"])
            p = model.ptam[str(lvl)]
            p.fast = False
            compare(rec["outputs"][f"ptam{lvl}"], p(f), TOL)
            p.fast = True
            compare(rec["outputs"][f"ptam{lvl}"], p(f.transpose(1, 2).contiguous()), TOL)
        feats = [randn(*s) for s in shapes["msfm"]]
        for i, out in enumerate(model.msfm(feats)):
            compare(rec["outputs"][f"msfm{i}"], out, TOL)


def test_pstfnet_old_group_ffn_form_is_detectably_different() -> None:
    """The pre-fix form (``x + FFN_i(x_i)``, kept as ``inner_residual=False``) fails the golden."""
    rec = golden("pstfnet_modules")
    model = seeded_mirstd("pstfnet", rec["seed"]).double()
    model.msfm.group_ffn.inner_residual = False
    randn = seeded_normals(rec["seed"])
    shapes = rec["input"]["shapes"]
    for lvl in range(4):
        randn(*shapes[f"ptam{lvl}"])
    feats = [randn(*s) for s in shapes["msfm"]]
    with torch.no_grad(), pytest.raises(AssertionError, match="exceeds tol"):
        compare(rec["outputs"]["msfm0"], model.msfm(feats)[0], 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "literal"])
def test_pstfnet_full_network_384(fast: bool, dtype: torch.dtype) -> None:
    """Whole PSTFNet at 1x3x5x384x384 (the reference is wired to it), fast and literal path.

    float32 against the float64 reference: measured 2.8e-7 (fast) / 3.1e-7 (literal) on logits of
    magnitude ~4; the issue's 1e-5 is the bound (float32 rounding through ~40 layers)."""
    rec = golden("pstfnet_384")
    model = seeded_mirstd("pstfnet", rec["seed"]).to(dtype)
    model.fast = fast
    clip = seeded_input(tuple(rec["input"]["shape"]), rec["seed"]).to(dtype)
    with torch.no_grad():
        compare(rec["outputs"]["logits"], model(clip), TOL if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize("name", ["dtum", "smfnet_itsdt", "smfnet_irdst", "sstnet"])
def test_network_matches_reference(name: str) -> None:
    rec = golden(name)
    model = seeded_mirstd(rec["key_map"], rec["seed"]).double()
    (out,) = rec["outputs"].values()
    with torch.no_grad():
        compare(out, model(seeded_input(tuple(rec["input"]["shape"]), rec["seed"])), TOL)


# single-frame deep baselines and DNANet-DTUM: golden output name -> whether the reference returns
# the sigmoid of mirstd's logits (UIU-Net's d0..d6, ISNet's edge map), in mirstd's output order
BASELINE_OUTPUTS = {
    "dnanet": {"final1": False, "final2": False, "final3": False, "final4": False},
    "dnanet_dtum": {"logits": False},
    "isnet": {"mask": False, "edge": True},
    "uiunet": {f"d{i}": True for i in range(7)},
    "rdian": {"logits": False},
}


@pytest.mark.parametrize("name", sorted(BASELINE_OUTPUTS))
def test_deep_baseline_matches_reference(name: str) -> None:
    """DNANet (deep supervision, 4 outputs), DNANet-DTUM (5 frames), ISNet (mask + edge), UIU-Net
    (d0..d6) and RDIAN at 64 x 64 against the authors' code (measured 0.0 at generation)."""
    rec = golden(name)
    model = seeded_mirstd(rec["key_map"], rec["seed"]).double()
    with torch.no_grad():
        out = model(seeded_input(tuple(rec["input"]["shape"]), rec["seed"]))
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    spec = BASELINE_OUTPUTS[name]
    assert list(rec["outputs"]) == list(spec) and len(outs) == len(spec)
    for (key, sigmoid), t in zip(spec.items(), outs, strict=True):
        compare(rec["outputs"][key], torch.sigmoid(t) if sigmoid else t, TOL)


def _airground() -> Path:
    from make_goldens import AIRGROUND

    return Path(os.environ.get("MIRSTD_AIRGROUND", AIRGROUND))


def test_dtum_released_weights_match_reference_on_real_clip() -> None:
    """The authors' ``ResUNet_DTUM_para.pth`` loads strictly and mirstd reproduces the reference's
    logits on airground-real sequence1 frames 1-5 to <= 1e-5 (measured 1.4e-12 in float64).

    The checkpoint is not redistributed here (the DTUM repository has no licence file): set
    ``MIRSTD_DTUM_CKPT`` to its path (``results/ResUNet_DTUM_SpatialDeepSupFalse_fullySup/`` of
    TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM). Float64 with exact normalisation
    constants: the released logits reach -605, where ``ClipNorm``'s float32 constants alone give
    2.4e-5 (and in float32 the 2x2 arg-max direction codes flip on near-ties)."""
    path = os.environ.get(DTUM_CKPT_ENV)
    if not path:
        pytest.skip(f"set {DTUM_CKPT_ENV} to the authors' ResUNet_DTUM_para.pth to run this test")
    data = _airground()
    if not (data / "data" / "sequence1" / "0005.png").is_file():
        pytest.skip(f"airground-real data not found at {data} (set MIRSTD_AIRGROUND)")
    rec = golden("dtum_released_airground")
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == rec["checkpoint"]["sha256"], (
        f"{path} is not the published ResUNet_DTUM_para.pth"
    )
    model, rep = load_reference("dtum", path, strict=True)
    assert rep.ok and len(rep.mapped) == 254 and not rep.dropped
    assert sorted(rep.kept) == ["backbone.norm.mean", "backbone.norm.std", "norm.mean", "norm.std"]
    raw = torch.from_numpy(airground_clip(root=data)).double()
    clip = (raw / 255.0)[None, None].repeat(1, 3, 1, 1, 1)
    with torch.no_grad():
        got = compare(rec["outputs"]["logits"], exact_dtum_norm(model.double())(clip), 1e-5)
    assert got["crop_max"] <= 1e-5
