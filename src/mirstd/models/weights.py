"""Import of the authors' checkpoints: reference key names -> mirstd modules, with a full report.

``load_reference(name, path)`` builds the mirstd model, reads the authors' state dict
(``torch.load(..., weights_only=True)``: tensors only, no code is unpickled), renames every key by
the network's :class:`KeyMap`, drops the reference's dead layers (built but never called) and loads
the result. ``strict=True`` (default) refuses a checkpoint with an unknown key, a missing weight or a
shape that does not fit; the :class:`ImportReport` lists every key mapped, dropped and missing.

``mirstd convert-weights src=<authors .pth> model=<name> out=<mirstd .pt>`` writes a mirstd
checkpoint (``model``, ``model_name``, ``model_args``, the report) that ``mirstd val`` /
``model_from_checkpoint`` read like a trained one.

Key maps live in :data:`KEY_MAPS` (name -> :class:`KeyMap`). Adding a network = one entry: its
reference repository/commit, ordered ``(regex, replacement)`` rename rules (the first whose pattern
matches the whole key wins), dead-layer patterns with the reason, and the mirstd keys that a
reference checkpoint never carries (normalisation buffers set by the constructor). The same map
converts mirstd weights to reference names (:func:`to_reference`), which the golden-output tests
use to run the reference code with mirstd's seeded weights.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

__all__ = [
    "KEY_MAPS",
    "ImportReport",
    "KeyMap",
    "convert_main",
    "load_reference",
    "map_state_dict",
    "read_reference_state",
    "to_reference",
]

_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_CONV = r"(weight|bias)"


@dataclass(frozen=True)
class KeyMap:
    """How one network's reference state dict maps onto a mirstd model.

    ``model``/``model_args``: what ``mirstd.models.create`` builds; ``rules``: ``(regex, repl)``
    applied with ``re.fullmatch`` in order; ``dead``: ``(regex, reason)`` for reference keys that
    are dropped; ``config_keys``: regexes of mirstd keys no reference checkpoint has (kept as
    constructed); ``reference``: repository, commit and files the names come from.
    """

    model: str
    reference: str
    rules: tuple[tuple[str, str], ...]
    dead: tuple[tuple[str, str], ...] = ()
    config_keys: tuple[str, ...] = ()
    model_args: dict[str, Any] = field(default_factory=dict)
    released: str = ""

    def dead_reason(self, key: str) -> str:
        """Why reference key ``key`` may be dropped ("" = it must be used)."""
        return next((reason for pat, reason in self.dead if re.fullmatch(pat, key)), "")

    def rename(self, key: str) -> tuple[str | None, str]:
        """``(mirstd key, dead reason or "")`` for a key a rule renames, ``(None, reason)`` for a
        dead key no rule renames, ``(None, "")`` when nothing applies. A dead key that a rule renames
        is mapped when the mirstd model builds that layer (``build_dead_layers``, SSTNet's
        ``motion_branch``) and dropped otherwise."""
        reason = self.dead_reason(key)
        for pat, repl in self.rules:
            if re.fullmatch(pat, key):
                # ``<n>`` in a replacement = the integer n - 1 (1-based reference index -> 0-based)
                new = re.sub(pat, repl, key)
                return re.sub(r"<(\d+)>", lambda m: str(int(m.group(1)) - 1), new), reason
        return None, reason

    def is_config(self, mirstd_key: str) -> bool:
        return any(re.fullmatch(p, mirstd_key) for p in self.config_keys)


@dataclass
class ImportReport:
    """Every reference key is in exactly one of ``mapped`` (ref -> mirstd), ``dropped``
    (ref -> reason) or ``unexpected``; ``missing`` are mirstd weights nothing provided,
    ``kept`` the mirstd config buffers left as constructed, ``reshaped`` the keys whose tensors
    were viewed to the mirstd shape (same elements), ``shape_mismatch`` (ref key, ref shape,
    mirstd shape) those that do not fit."""

    name: str
    source: str = ""
    mapped: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unexpected or self.missing or self.shape_mismatch)

    def summary(self) -> str:
        s = (
            f"{self.name}: {len(self.mapped)} mapped, {len(self.dropped)} dropped (dead layers), "
            f"{len(self.kept)} kept (config buffers), {len(self.reshaped)} reshaped, "
            f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.shape_mismatch)} shape mismatches"
        )
        for label, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("shape mismatch", [f"{k} {a} vs {b}" for k, a, b in self.shape_mismatch]),
        ):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                s += f"\n  {label}: {', '.join(items[:5])}{more}"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "mapped": dict(self.mapped),
            "dropped": dict(self.dropped),
            "unexpected": list(self.unexpected),
            "missing": list(self.missing),
            "kept": list(self.kept),
            "reshaped": list(self.reshaped),
            "shape_mismatch": [[k, list(a), list(b)] for k, a, b in self.shape_mismatch],
        }


# ----------------------------------------------------------------------------------------------
# Key maps
# ----------------------------------------------------------------------------------------------
def _resblock_rules(src: str, dst: str, cbam: bool = False) -> list[tuple[str, str]]:
    """Reference ``Res_block`` / ``Res_block_CBAM`` at ``src`` (a regex; its groups are reused in
    ``dst``) -> mirstd ``ResBlock`` / ``ResCBAMBlock`` at ``dst`` (same layer names, CBAM renamed)."""
    n = re.compile(src).groups
    layer, rest = rf"\g<{n + 1}>", rf"\g<{n + 2}>"
    rules = [(rf"{src}\.(conv1|conv2|bn1|bn2|shortcut\.0|shortcut\.1)\.(.+)", rf"{dst}.{layer}.{rest}")]
    if cbam:
        rules += [
            (rf"{src}\.ca\.fc1\.weight", rf"{dst}.ca.mlp.0.weight"),
            (rf"{src}\.ca\.fc2\.weight", rf"{dst}.ca.mlp.2.weight"),
            (rf"{src}\.sa\.conv1\.weight", rf"{dst}.sa.conv.weight"),
        ]
    return rules


def _pstfnet_rules() -> tuple[tuple[str, str], ...]:
    r: list[tuple[str, str]] = []
    # encoder conv{i}_0.{j} (ResCBAM) -> encoder.stages.i.j
    r += _resblock_rules(r"conv([0-3])_0\.(\d+)", r"encoder.stages.\1.\2", cbam=True)
    # decoder conv2_1 / conv1_1 / conv0_1 (plain) -> decoder.stages.{2,1,0}
    r += _resblock_rules(r"conv([0-2])_1\.(\d+)", r"decoder.stages.\1.\2")
    r.append((rf"final\.{_CONV}", r"decoder.head.\1"))
    # PTAM = HDC_module; P2DConv = HDC.DT; Conv_* blocks: conv1 (conv) + norm (BN)
    r += [
        (r"hdc([0-3])\.DT\.conv1\.conv1\.(.+)", r"ptam.\1.p2d.head.conv.\2"),
        (r"hdc([0-3])\.DT\.conv1\.norm\.(.+)", r"ptam.\1.p2d.head.bn.\2"),
        (r"hdc([0-3])\.DT\.conv2\.conv1\.(.+)", r"ptam.\1.p2d.tail.conv.\2"),
        (r"hdc([0-3])\.DT\.conv2\.norm\.(.+)", r"ptam.\1.p2d.tail.bn.\2"),
        (r"hdc([0-3])\.DT\.conv(\d)_(\d)\.conv1\.(.+)", r"ptam.\1.p2d.convs.conv\2_\3.0.\4"),
        (r"hdc([0-3])\.DT\.conv(\d)_(\d)\.norm\.(.+)", r"ptam.\1.p2d.convs.conv\2_\3.1.\4"),
        (r"hdc([0-3])\.head\.conv1\.(.+)", r"ptam.\1.m3d.head.conv.\2"),
        (r"hdc([0-3])\.head\.norm\.(.+)", r"ptam.\1.m3d.head.bn.\2"),
        (r"hdc([0-3])\.tail\.conv1\.(.+)", r"ptam.\1.m3d.tail.conv.\2"),
        (r"hdc([0-3])\.tail\.norm\.(.+)", r"ptam.\1.m3d.tail.bn.\2"),
    ]
    branches = {  # M3DConv branch (k = 1, 3, 5) -> mirstd branches.{0,1,2}.{layer}
        "conv_1x3x3_1": "0.0", "conv_1x1x1_2": "0.1", "conv_1x3x3_3": "0.2", "conv_1x1x1_4": "0.3",
        "conv_1x3x3_3_1": "1.0", "conv_3x1x1_1": "1.1", "conv_1x3x3_3_2": "1.2", "conv_3x1x1_2": "1.3",
        "conv_1x3x3_5_1": "2.0", "conv_5x1x1_1": "2.1", "conv_1x3x3_5_2": "2.2", "conv_5x1x1_2": "2.3",
    }  # fmt: skip
    for ref, mine in branches.items():
        r += [
            (rf"hdc([0-3])\.{ref}\.conv1\.(.+)", rf"ptam.\1.m3d.branches.{mine}.conv.\2"),
            (rf"hdc([0-3])\.{ref}\.norm\.(.+)", rf"ptam.\1.m3d.branches.{mine}.bn.\2"),
        ]
    # MSFM = CIM
    r += [
        (rf"CIM\.down_channel\.{_CONV}", r"msfm.down.\1"),
        (rf"CIM\.up_channel\.{_CONV}", r"msfm.up.\1"),
        (rf"CIM\.bn\.{_BN}", r"msfm.bn.\1"),
        (rf"CIM\.fusion\.(\d)\.local_embedding\.{_CONV}", r"msfm.gates.\1.local.0.\2"),
        (rf"CIM\.fusion\.(\d)\.bn1\.{_BN}", r"msfm.gates.\1.local.1.\2"),
        (rf"CIM\.fusion\.(\d)\.global_embedding\.{_CONV}", r"msfm.gates.\1.glob.0.\2"),
        (rf"CIM\.fusion\.(\d)\.bn2\.{_BN}", r"msfm.gates.\1.glob.1.\2"),
        (rf"CIM\.fusion\.(\d)\.global_act\.{_CONV}", r"msfm.gates.\1.act.0.\2"),
        (rf"CIM\.fusion\.(\d)\.bn3\.{_BN}", r"msfm.gates.\1.act.1.\2"),
        (rf"CIM\.block\.csa([12])\.m\.bn1\.{_BN}", r"msfm.csa\1.bn_in.\2"),
        (r"CIM\.block\.csa([12])\.m\.DWConv([12])\.([01])\.(.+)", r"msfm.csa\1.dw\2.\3.\4"),
        (r"CIM\.block\.csa([12])\.m\.attention\.qkv\.(c|bn)\.(.+)", r"msfm.csa\1.qkv.\2.\3"),
        (rf"CIM\.block\.csa([12])\.m\.attention\.parallel_conv\.1\.{_CONV}", r"msfm.csa\1.v_conv.\2"),
        (rf"CIM\.block\.csa([12])\.m\.attention\.(to_out|proj)\.{_CONV}", r"msfm.csa\1.\2.\3"),
        (rf"CIM\.block\.csa([12])\.m\.bn4\.{_BN}", r"msfm.csa\1.bn_out.\2"),
        (rf"CIM\.block\.csa([12])\.m\.conv\.{_CONV}", r"msfm.csa\1.conv_out.\2"),
    ]
    ffn = {"bn1": "0", "conv1": "1", "bn2": "2", "conv2": "3", "conv3": "5"}
    for ref, mine in ffn.items():
        r += [
            (
                rf"CIM\.block\.intra_ff\.m\.ff([1-4])\.m\.{ref}\.(.+)",
                rf"msfm.group_ffn.ffns.<\1>.net.{mine}.\2",
            ),
            (rf"CIM\.block\.ff\.m\.{ref}\.(.+)", rf"msfm.ffn.net.{mine}.\1"),
        ]
    return tuple(r)


def _dtum_rules() -> tuple[tuple[str, str], ...]:
    r: list[tuple[str, str]] = []
    r += _resblock_rules(r"UNet\.conv([0-3])_0\.(\d+)", r"backbone.encoder.stages.\1.\2")
    r += _resblock_rules(r"UNet\.conv2_1\.(\d+)", r"backbone.decoder.stages.2.\1")
    r += _resblock_rules(r"UNet\.conv1_2\.(\d+)", r"backbone.decoder.stages.1.\1")
    r += _resblock_rules(r"UNet\.conv0_3\.(\d+)", r"backbone.decoder.stages.0.\1")
    r += [
        (rf"UNet\.final\.{_CONV}", r"backbone.decoder.head.\1"),
        (rf"DTUM\.bn0\.{_BN}", r"dtum.bn0.\1"),
        (rf"DTUM\.conv([1-4])_1\.{_CONV}", r"dtum.enc.<\1>.conv.\2"),
        (rf"DTUM\.bn([1-4])_1\.{_BN}", r"dtum.enc.<\1>.bn.\2"),
        (rf"DTUM\.conv([1-3])_2\.{_CONV}", r"dtum.dec\1.conv.\2"),
        (rf"DTUM\.bn([1-3])_2\.{_BN}", r"dtum.dec\1.bn.\2"),
        (r"DTUM\.final\.([014])\.(.+)", r"dtum.head.\1.\2"),
    ]
    return tuple(r)


_PAFPN_RULE = r"backbone\.(lateral_conv0|C3_p4|reduce_conv1|C3_p3)\.(.+)"


def _smfnet_rules(neck: str) -> tuple[tuple[str, str], ...]:
    # ITSDT file: its never-called FusionLayers (conv1..3) = mirstd's FusionLayer (Sequential 0..2)
    fusion = (r"feature_fusion\.(C3_p[34])\.conv([1-3])\.(.+)", r"neck.\1.<\2>.\3")
    return (
        (r"backbone\.backbone\.(.+)", r"backbone.backbone.\1"),  # YOLOX-S CSPDarknet, same names
        (r"backbone_3d\.backbone\.(.+)", r"backbone_3d.\1"),  # YOWO ShuffleNetV2-3D wrapper
        (r"cls_channel_encoders([1-3])\.fuse_time\.0\.(.+)", r"encoders.<\1>.refine.\2"),
        (
            r"cls_channel_encoders([1-3])\.fuse_convs\.([013])\.convs\.0\.(.+)",
            r"encoders.<\1>.fuse_convs.\2.conv.\3",
        ),
        (
            r"cls_channel_encoders([1-3])\.fuse_convs\.([013])\.convs\.1\.(.+)",
            r"encoders.<\1>.fuse_convs.\2.bn.\3",
        ),
        (r"cls_channel_encoders([1-3])\.fuse_convs\.([25])\.(.+)", r"encoders.<\1>.fuse_convs.\2.\3"),
        *((fusion,) if neck == "itsdt" else ()),
        (r"feature_fusion\.(.+)", r"neck.\1"),
        (_PAFPN_RULE, r"backbone.\1.\2"),  # dead PAFPN of the IRDST file (build_dead_layers)
        (r"head\.(.+)", r"head.\1"),
    )


_DNANET_REF = "YeRen123455/Infrared-Small-Target-Detection@21584be00d19bc3080c78deee0953af250bed99b"
_SMF_REF = "psile/SMFNet@2f85133fb09f9e60ce9e096133f7f85c252bc132"
_PAFPN = r"backbone\.(lateral_conv0|C3_p4|reduce_conv1|C3_p3)\..+"

KEY_MAPS: dict[str, KeyMap] = {
    "pstfnet": KeyMap(
        model="pstfnet",
        model_args={"paper_mode": True},
        reference="Bo11anFu/CS-Net@9b5d11ccb070bc4685b39c22cce019eda13386e8 "
        "csnet/models/multiframe/PSTFNet/{model_PSTFNet,HDC,CIM,block}.py (deepmist PSTFNet)",
        rules=_pstfnet_rules(),
        config_keys=(r"norm\.(mean|std)",),
        released="no released weights; training configs in the deepmist/CS-Net configs",
    ),
    "dtum": KeyMap(
        model="dtum",
        reference="TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM@"
        "61053d83b1243bb8fc828d19b6b58c31eaeb69f3 models/{model_res_UNet,layers}.py (res_UNet_DTUM)",
        rules=_dtum_rules(),
        config_keys=(r"norm\.(mean|std)", r"backbone\.norm\.(mean|std)"),
        released="results/ResUNet_DTUM_SpatialDeepSupFalse_fullySup/ResUNet_DTUM_para.pth (NUDT-MIRSDT); "
        "results/SatVideoIRSTD_ResUNet_DTUM_SpatialDeepSupFalse_fullySup/ResUNet_DTUM_para.pth",
    ),
    "smfnet_itsdt": KeyMap(
        model="smfnet",
        model_args={"neck": "itsdt"},
        reference=f"{_SMF_REF} SMFNET_model/SMFNET.py (STNetwork)",
        rules=_smfnet_rules("itsdt"),
        dead=((r"feature_fusion\.C3_p[34]\..+", "FusionLayer built by Feature_Fusion, never called"),),
        released="logs/ITDST/best_ITDST.pth (Git-LFS object, not retrievable from the repository)",
    ),
    "smfnet_irdst": KeyMap(
        model="smfnet",
        model_args={"neck": "irdst"},
        reference=f"{_SMF_REF} SMFNET_model/SMTFNET_IRDST.py (STNetwork)",
        rules=_smfnet_rules("irdst"),
        dead=((_PAFPN, "YOLOX PAFPN built by Feature_Backbone, never called"),),
        released="logs/IRDST/best_IRDST.pth (Git-LFS object, not retrievable from the repository)",
    ),
    "sstnet": KeyMap(
        model="sstnet",
        reference="UESTC-nnLab/SSTNet@12e5ffffd3d6edd21127e08f4d398afac21f86da nets/Network.py (Network)",
        rules=(
            (r"backbone\.backbone\.(.+)", r"backbone.backbone.\1"),
            (r"backbone\.(lateral_conv0|C3_p4|reduce_conv1|C3_p3)\.(.+)", r"backbone.\1.\2"),
            (r"neck\.(.+)", r"neck.\1"),
            (r"head\.(.+)", r"head.\1"),
            (r"(SSTNet|mapping[012])\.(.+)", r"\1.\2"),  # motion branch (motion_branch=True)
        ),
        dead=(
            (r"SSTNet\..+", "training-only motion branch (cross-slice ConvLSTM), not used at inference"),
            (r"mapping[012]\..+", "training-only motion-loss mappings, not used at inference"),
        ),
        released="training scripts train_IRDST.py / train_DAUB.py; model_data weights are Git-LFS objects",
    ),
    "dnanet": KeyMap(
        model="dnanet",
        reference=f"{_DNANET_REF} model/model_DNANet.py (DNANet, Res_CBAM_block, deep_supervision=True)",
        rules=((r"(final[1-4]?)\.(.+)", r"\1.\2"), (r"(.+)", r"trunk.\1")),
        released="pretrain_DNANet_model.tar (NUDT-SIRST / NUAA-SIRST / IRSTD-1k, Google Drive / Baidu links in "
        "the README); read_reference_state unwraps its {'state_dict': ...}",
    ),
    "dnanet_dtum": KeyMap(
        model="dnanet_dtum",
        reference="TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM@"
        "61053d83b1243bb8fc828d19b6b58c31eaeb69f3 models/model_DNANet.py (DNANet_DTUM)",
        rules=(
            (r"DNANet\.(final)\.(.+)", r"\1.\2"),
            (r"DNANet\.(.+)", r"trunk.\1"),
            *(r for r in _dtum_rules() if r[0].startswith("DTUM")),
        ),
        released="results/DNANet_DTUM_SpatialDeepSupFalse_fullySup/DNANet_DTUM_para.pth (NUDT-MIRSDT)",
    ),
    "isnet": KeyMap(
        model="isnet",
        reference="RuiZhang97/ISNet@c5a7548a9abca04208fdf7bd5a5ee97e33cc056d model/ISNet.py (ISNet)",
        # the authors' ``fuse`` (edge fusion 1x1 conv) is mirstd's ``edge_fuse`` (``fuse`` is a
        # method name of mirstd's models); everything else keeps the authors' names
        rules=((r"fuse\.weight", r"edge_fuse.weight"), (r"(.+)", r"\1")),
        released="authors' checkpoints linked from the README (not in the repository)",
    ),
    "uiunet": KeyMap(
        model="uiunet",
        reference="danfenghong/IEEE_TIP_UIU-Net@625023aae55fed804460fb275fcec222f2c9c442 model/uiunet.py (UIUNET(3, 1))",
        rules=((r"(.+)", r"\1"),),
        released="saved_models/ checkpoints linked from the README (not in the repository)",
    ),
    "rdian": KeyMap(
        model="rdian",
        reference="sun11999/RDIAN@e1df518bb026aba4d231b96e328eb21ecda37749 model/segmentation.py (RDIAN)",
        rules=((r"(.+)", r"\1"),),
        released="checkpoints linked from the README (not in the repository)",
    ),
}
ALIASES = {"resunet_dtum": "dtum"}


def _keymap(name: str, model_args: dict[str, Any] | None = None) -> tuple[str, KeyMap]:
    key = ALIASES.get(name, name)
    if key == "smfnet":
        neck = (model_args or {}).get("neck", "itsdt")
        key = f"smfnet_{neck}"
    if key not in KEY_MAPS:
        raise ValueError(f"no reference key map for {name!r}; known: {', '.join(sorted(KEY_MAPS))}")
    return key, KEY_MAPS[key]


# ----------------------------------------------------------------------------------------------
# Reading and mapping
# ----------------------------------------------------------------------------------------------
def read_reference_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an authors' checkpoint: ``torch.load(weights_only=True)``, unwrapped from
    ``{"state_dict"|"model"|"net": ...}`` and with DataParallel's ``module.`` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a full pickled model (torch.save(net)) is refused by weights_only
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(e).splitlines() if ln.strip()]
        why = next(
            (ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else type(e).__name__
        )
        raise ValueError(
            f"{path}: not a plain state dict readable with weights_only=True ({why[:200]}). "
            "A whole pickled model (torch.save(net)) would need its authors' classes unpickled, which "
            "mirstd does not do: load it in the authors' code and save net.state_dict() instead."
        ) from None
    for key in ("state_dict", "model", "net", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if torch.is_tensor(v):
            out[k[7:] if k.startswith("module.") else k] = v
    return out


def map_state_dict(
    name: str,
    state: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    source: str = "",
    model_args: dict[str, Any] | None = None,
) -> tuple[dict[str, torch.Tensor], ImportReport]:
    """Rename ``state`` (reference keys) onto ``target`` (a mirstd state dict); returns the mapped
    tensors (cast to the target dtype, viewed to the target shape when the element count agrees,
    e.g. SSTNet's ``(1,)`` vs ``()`` scalars) and the report."""
    key, km = _keymap(name, model_args)
    rep = ImportReport(name=key, source=source)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        new, reason = km.rename(k)
        if new is None or new not in target:
            if reason:
                rep.dropped[k] = reason
            else:
                rep.unexpected.append(k)
            continue
        want = target[new]
        if tuple(v.shape) != tuple(want.shape):
            if v.numel() == want.numel():
                v = v.reshape(want.shape)
                rep.reshaped.append(k)
            else:
                rep.shape_mismatch.append((k, tuple(v.shape), tuple(want.shape)))
                continue
        if new in out:
            rep.unexpected.append(k)  # two reference keys onto one mirstd key: a map error
            continue
        out[new] = v.to(want.dtype)
        rep.mapped[k] = new
    for k in target:
        if k not in out:
            (rep.kept if km.is_config(k) else rep.missing).append(k)
    return out, rep


def _build(key: str, km: KeyMap, model_args: dict[str, Any] | None) -> tuple[nn.Module, dict[str, Any]]:
    from mirstd.models.registry import create

    args = {**km.model_args, **(model_args or {})}
    return create(km.model, **args), args


def load_reference(
    name: str,
    path: str | Path | dict[str, torch.Tensor],
    strict: bool = True,
    model: nn.Module | None = None,
    **model_args: Any,
) -> tuple[nn.Module, ImportReport]:
    """Build mirstd's ``name`` (or take ``model``) and load the authors' checkpoint ``path`` (or an
    already-read state dict) into it; returns ``(model in eval mode, report)``.

    ``strict``: raise ValueError when a reference key is unknown, a mirstd weight stays unset or a
    shape does not fit (dead layers listed in the key map are dropped and reported, never an error).
    """
    key, km = _keymap(name, model_args)
    if model is None:
        model, _ = _build(key, km, model_args)
    if isinstance(path, dict):
        state, source = path, "<state dict>"
    else:
        state, source = read_reference_state(path), str(path)
    target = model.state_dict()
    mapped, rep = map_state_dict(key, state, target, source)
    if strict and not rep.ok:
        raise ValueError(f"{source} does not load strictly into {km.model}: {rep.summary()}")
    model.load_state_dict(mapped, strict=False)
    return model.eval(), rep


def to_reference(
    name: str, model: nn.Module, ref_state: dict[str, torch.Tensor], **model_args: Any
) -> dict[str, torch.Tensor]:
    """mirstd weights under the reference's names: for every key of ``ref_state`` (the reference
    model's own ``state_dict()``) its mirstd tensor, viewed to the reference shape. Dead keys keep
    the reference's value (never used). Raises KeyError for a reference key the map cannot place."""
    key, km = _keymap(name, model_args)
    mine = model.state_dict()
    out = {}
    for k, v in ref_state.items():
        new, reason = km.rename(k)
        if new is None or new not in mine:
            if not reason:
                raise KeyError(f"{key}: reference key {k!r} has no mirstd counterpart")
            out[k] = v  # a dead layer mirstd does not build: the reference's own value (never used)
            continue
        out[k] = mine[new].detach().reshape(v.shape).to(v.dtype).clone()
    return out


# ----------------------------------------------------------------------------------------------
# CLI: mirstd convert-weights src=... model=... out=...
# ----------------------------------------------------------------------------------------------
CONVERT_USAGE = (
    """usage: mirstd convert-weights src=<authors .pth> model=<name> out=<mirstd .pt> [strict=true]
       [report=<.json>] [model_args.<k>=<v> ...]
  model: one of """
    + ", ".join(sorted([*KEY_MAPS, "smfnet"]))
    + """ (smfnet: model_args.neck=itsdt|irdst)
  Reads the authors' state dict with torch.load(weights_only=True), renames it to mirstd's modules,
  loads it strictly (unless strict=false) and writes a checkpoint that `mirstd val weights=<out>` reads."""
)


def _parse_value(v: str) -> Any:
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def convert_main(argv: Sequence[str] | None = None) -> int:
    import json
    import sys

    from mirstd.utils.io import atomic_save_torch, atomic_write_bytes, to_jsonable

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(CONVERT_USAGE)
        return 0 if argv else 2
    args: dict[str, str] = {}
    for a in argv:
        if "=" not in a:
            print(f"convert-weights: expected key=value, got {a!r}\n{CONVERT_USAGE}", file=sys.stderr)
            return 2
        k, v = a.split("=", 1)
        args[k] = v
    model_args = {
        k[len("model_args.") :]: _parse_value(v) for k, v in args.items() if k.startswith("model_args.")
    }
    plain = {k: v for k, v in args.items() if not k.startswith("model_args.")}
    bad = sorted(set(plain) - {"src", "model", "out", "strict", "report"})
    missing = [k for k in ("src", "model", "out") if k not in plain]
    if bad or missing:
        what = f"unknown {bad}" if bad else f"missing {missing}"
        print(f"convert-weights: {what}\n{CONVERT_USAGE}", file=sys.stderr)
        return 2
    strict = bool(_parse_value(plain.get("strict", "true")))
    try:
        key, km = _keymap(plain["model"], model_args)
        model, rep = load_reference(plain["model"], plain["src"], strict=strict, **model_args)
    except (ValueError, FileNotFoundError) as e:
        print(f"convert-weights: {e}", file=sys.stderr)
        return 1
    full_args = {**km.model_args, **model_args}
    ckpt = {
        "model": model.state_dict(),
        "ema": None,
        "model_name": km.model,
        "model_args": full_args,
        "step": 0,
        "imported_from": {"path": str(plain["src"]), "reference": km.reference, "key_map": key},
        "import_report": to_jsonable(rep.to_dict()),
    }
    out = atomic_save_torch(ckpt, plain["out"])
    if "report" in plain:
        atomic_write_bytes(plain["report"], json.dumps(to_jsonable(rep.to_dict()), indent=1).encode())
    print(rep.summary())
    print(f"wrote {out} (model={km.model}, model_args={full_args})")
    return 0


# ----------------------------------------------------------------------------------------------
# Seeded weights for the golden-output tests
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def distinct_seeded_state(model: nn.Module, seed: int, skip: Sequence[str] = ()) -> nn.Module:
    """Overwrite every floating tensor of ``model`` with seeded values in which no two same-shape
    tensors are alike, so a key map that swaps two layers changes the output (constructor defaults
    leave every BN at 1/0/0/1 and every CSAM gamma at 0, which would hide such a swap).

    Values come from ``numpy.random.default_rng(seed)`` in ``state_dict`` order (not from torch's
    samplers, whose float results differ between CPU kernels, e.g. ``ATEN_CPU_CAPABILITY=default``):
    BN weight 1 + 0.1 N, BN bias / running mean 0.1 N, running var U(0.5, 1.5); other tensors with
    >= 2 dims U(-1, 1) / sqrt(fan_in) (PyTorch's default scale); other 1-D tensors 0.1 N; scalars
    and 1-element tensors 0.25 + 0.1 N. Nothing depends on the constructor's initialisation (so a
    changed default init leaves the golden outputs valid). ``skip``: regexes of keys left alone
    (normalisation buffers)."""
    import numpy as np

    rng = np.random.default_rng(int(seed))
    bn_names = {name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    for key, t in model.state_dict(keep_vars=True).items():
        if not t.is_floating_point() or any(re.fullmatch(p, key) for p in skip):
            continue
        owner, _, leaf = key.rpartition(".")
        shape = tuple(t.shape)
        if owner in bn_names and leaf == "running_var":
            new = 0.5 + rng.random(shape)
        elif owner in bn_names and leaf == "weight":
            new = 1.0 + 0.1 * rng.standard_normal(shape)
        elif owner in bn_names:
            new = 0.1 * rng.standard_normal(shape)
        elif t.numel() <= 1:
            new = 0.25 + 0.1 * rng.standard_normal(shape)
        elif t.dim() >= 2:
            new = rng.uniform(-1.0, 1.0, shape) / np.sqrt(t.numel() // shape[0])
        else:
            new = 0.1 * rng.standard_normal(shape)
        t.data.copy_(torch.from_numpy(np.asarray(new, dtype=np.float64)).to(t.dtype))
    return model
