"""Dataset presets (spec ``synth.md`` §10) and the configuration every parameter lives in.

A configuration is a flat-ish dict; ``resolve_config(preset, **overrides)`` merges the overrides
(dotted keys allowed for the ``sensor`` and ``ego`` sections) over a preset over :data:`DEFAULTS`
and rejects unknown keys with a message listing the valid ones.
"""

from __future__ import annotations

import copy
from typing import Any

from mirstd.data.protocols import find_real
from mirstd.synth.background import FAMILIES
from mirstd.synth.templates import SHAPES
from mirstd.utils.config import ConfigError, merge, unknown_key_message

DEFAULTS: dict[str, Any] = {
    "name": "synth",
    "frames": 100,
    "size": 256,  # int or [H, W]
    "splits": {"train": 80, "val": 20, "test": 20},
    "test_hard": 0,
    "families": {"sky": 0.20, "cloud": 0.25, "ground": 0.25, "sea": 0.15, "horizon": 0.15},
    "shapes": {"point": 0.5, "blob": 0.25, "polygon": 0.10, "aircraft": 0.15},
    "targets": [0.7, 0.2, 0.1],  # P(1), P(2), P(3) targets per sequence
    "scr": None,  # fix S0 for every sequence: a number or [lo, hi] (tests, sweeps)
    "scr_low": [0.5, 3.0],
    "scr_high": [3.0, 10.0],
    "scr_hard": [0.5, 1.0],
    "scr_trend": [-0.4, 0.4],  # eta: S_t = S0 (1 + eta t/(T-1)) exp(eps_t)
    "scintillation": [0.0, 0.1],  # AR(1) innovation sigma of eps_t
    "p_dark": 0.0,
    "speed": [0.2, 4.0],
    "hard_speed": [4.0, 10.0],
    "motion_modes": [0.4, 0.3, 0.2, 0.1],  # CV, CA, CT, CJ
    "point_sigma": [0.35, 1.2],
    "blob_radius": [1.0, 4.0],
    "polygon_radius": [1.5, 5.0],
    "aircraft_length": [4.0, 20.0],
    "size_trend": [-0.3, 0.3],
    "supersample": 8,
    "mask_kappa": 0.2,
    "bit_depth": 14,
    "refine_iters": 3,
    "placement_attempts": 20,
    "ego": {
        "p_static": 0.3,
        "max_speed": 2.0,
        "hard_max_speed": 5.0,
        "max_acc": 0.02,
        "max_jitter": 0.3,
        "max_omega_deg": 0.1,
        "max_kappa": 1e-3,
        "oversample": 2,  # sub-pixel sampling of the warp (2x2 then block average; 1 = faster)
    },
    "sensor": {
        "vignetting": [0.0, 0.25],
        "gain_sigma": [0.0, 0.02],
        "offset_sigma": [0.0, 2.0],
        "stripe_sigma": [0.0, 1.5],
        "noise_sigma": [0.5, 4.0],
        "psf_sigma": [0.5, 0.9],
        "bad_fraction": [0.0, 1e-4],
        "real_noise": 0.0,
    },
    "backgrounds": None,  # folder of real IR frames (searched recursively); "auto": ir-backgrounds if present; None = procedural only
    # a data set given as ``backgrounds`` (real:drone-ir, a videos folder): the split whose sequences
    # are used (None: its ``train`` split when it has one, else all; val/test scenes stay out)
    "background_split": None,
    "real_fraction": 1.0,  # share of sequences on real frames when ``backgrounds`` is set
    "real_exclusion": 12,  # px kept clear around a known real target (see docs/synth.md)
    "preview": False,
}


def _realbg(name: str, source: str) -> dict[str, Any]:
    """A preset whose every sequence lies on ``source``'s train footage (40 frames, 128 px)."""
    return {
        "name": f"synth-realbg-{name}",
        "frames": 40,
        "size": 128,
        "splits": {"train": 48, "val": 8, "test": 4},
        "backgrounds": source,
        "real_fraction": 1.0,
    }


PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"name": "synth-smoke", "frames": 20, "size": 128, "splits": {"train": 4, "val": 1, "test": 1}},
    # demo / standard / large: half the sequences on real backgrounds (ir-backgrounds stills from the
    # data roots, when present; procedural only otherwise), half on the procedural families.
    "demo": {
        "name": "synth-demo",
        "frames": 40,
        "size": 128,
        "splits": {"train": 24, "val": 6, "test": 8},
        "backgrounds": "auto",
        "real_fraction": 0.5,
    },  # fmt: skip
    "small": {
        "name": "synth-small",
        "frames": 100,
        "size": 256,
        "splits": {"train": 40, "val": 10, "test": 10},
    },
    "standard": {
        "name": "synth-standard",
        "splits": {"train": 80, "val": 20, "test": 20},
        "test_hard": 12,
        "backgrounds": "auto",
        "real_fraction": 0.5,
    },  # fmt: skip
    # semi-synthetic on labelled real footage (SHU-MIRST's recipe: real captured backgrounds, synthetic
    # targets): clips cropped from the *train* split of a real data set, its own targets kept
    # real_exclusion px outside the crop, the real camera motion kept. For sim-to-real training
    # (docs/real-data.md): the scenes are the real domain's, the labels all synthetic.
    "realbg-airground": _realbg("airground", "real:airground"),
    "realbg-drone": _realbg("drone", "real:drone-ir"),
    "large": {
        "name": "synth-large",
        "size": 384,
        "splits": {"train": 280, "val": 60, "test": 60},
        "test_hard": 30,
        "backgrounds": "auto",
        "real_fraction": 0.5,
    },
}


def _check_keys(over: dict[str, Any], ref: dict[str, Any], where: str = "") -> None:
    for k, v in over.items():
        if k not in ref:
            raise ConfigError(unknown_key_message(k, ref, "synth", where))
        if isinstance(ref[k], dict) and k not in ("families", "shapes", "splits"):
            if not isinstance(v, dict):
                raise ValueError(
                    f"synth key {where + k!r} is a section; set its entries, e.g. {k}.{next(iter(ref[k]))}=..."
                )
            _check_keys(v, ref[k], f"{where}{k}.")


def resolve_config(preset: str | dict[str, Any] | None = "demo", **overrides: Any) -> dict[str, Any]:
    """Full configuration of ``preset`` (a name or a dict of keys) with ``overrides`` applied."""
    if isinstance(preset, dict):
        base: dict[str, Any] = {}
        extra = dict(preset)
        name = extra.pop("preset", None)
        if name is not None:
            base = _preset(name)
        _check_keys(extra, DEFAULTS)
        cfg = merge(merge(copy.deepcopy(DEFAULTS), base), extra)
    else:
        cfg = merge(copy.deepcopy(DEFAULTS), _preset(preset or "standard"))
        cfg["preset"] = preset or "standard"
    _check_keys({k: v for k, v in overrides.items()}, DEFAULTS)
    cfg = merge(cfg, overrides)
    _validate(cfg)
    return cfg


def _preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise KeyError(f"unknown synth preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return {**copy.deepcopy(PRESETS[name]), "preset": name}


def resolve_backgrounds(value: Any) -> str | None:
    """``backgrounds``: a folder (images, or a videos layout), a named real data set (``real:drone-ir``),
    ``"auto"`` (``ir-backgrounds`` from the data roots when present, see :mod:`mirstd.data.protocols`;
    else procedural only) or None."""
    if value != "auto":
        return value
    try:
        return str(find_real("ir-backgrounds"))
    except FileNotFoundError:
        return None


def _validate(cfg: dict[str, Any]) -> None:
    cfg["backgrounds"] = resolve_backgrounds(cfg.get("backgrounds"))
    for key, valid in (("families", FAMILIES + ("real",)), ("shapes", SHAPES)):
        bad = [k for k in cfg[key] if k not in valid]
        if bad:
            raise KeyError(f"synth key {key!r}: unknown entry {bad[0]!r}; valid: {', '.join(valid)}")
        if sum(float(v) for v in cfg[key].values()) <= 0:
            raise ValueError(f"synth key {key!r}: weights must sum to > 0")
    if cfg["bit_depth"] not in (8, 14, 16):
        raise ValueError(f"synth key 'bit_depth' must be 8, 14 or 16, got {cfg['bit_depth']!r}")
    if int(cfg["frames"]) < 2:
        raise ValueError(f"synth key 'frames' must be >= 2, got {cfg['frames']!r}")
    h, w = size_of(cfg)
    if min(h, w) < 32:
        raise ValueError(f"synth key 'size' must be >= 32 px, got {cfg['size']!r}")
    if int(cfg["supersample"]) < 1:
        raise ValueError("synth key 'supersample' must be >= 1 (spec minimum 4, default 8)")


def size_of(cfg: dict[str, Any]) -> tuple[int, int]:
    s = cfg["size"]
    if isinstance(s, (list, tuple)):
        return int(s[0]), int(s[1])
    return int(s), int(s)
