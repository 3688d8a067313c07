"""Training configuration: ``configs/default.yaml`` <- ``configs/<family>.yaml`` <- ``cfg=FILE`` <- overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mirstd.utils.config import merge


def config_dirs() -> list[Path]:
    """Folders searched for config files: the installed package's, then the source checkout's."""
    import mirstd

    pkg = Path(mirstd.__file__).resolve().parent
    return [pkg / "configs", pkg.parents[1] / "configs"]


def _find(name: str) -> Path | None:
    for d in config_dirs():
        p = d / f"{name}.yaml"
        if p.is_file():
            return p
    return None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"config file {path}: expected a mapping of key: value, got {type(doc).__name__}")
    return doc


def family_config(model: str) -> dict[str, Any]:
    """The family file of ``model``: ``<model>.yaml``, else ``<prefix>.yaml`` for ``prefix_variant`` names."""
    for cand in (model, model.split("_")[0], model.split("-")[0]):
        p = _find(cand)
        if p is not None:
            return read_yaml(p)
    return {}


def build_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults, the model family file, an optional ``cfg=`` file and ``overrides`` (in that order).

    Unknown keys are rejected with the list of valid ones, so typos do not silently do nothing.
    """
    overrides = dict(overrides or {})
    default_path = _find("default")
    if default_path is None:
        raise FileNotFoundError(f"configs/default.yaml not found in {[str(d) for d in config_dirs()]}")
    cfg = read_yaml(default_path)
    user = read_yaml(overrides.pop("cfg")) if overrides.get("cfg") else {}
    model = overrides.get("model", user.get("model", cfg["model"]))
    cfg = merge(merge(merge(cfg, family_config(str(model))), user), overrides)
    unknown = sorted(set(cfg) - set(read_yaml(default_path)))
    if unknown:
        valid = ", ".join(sorted(read_yaml(default_path)))
        raise ValueError(f"unknown config key(s) {unknown}; valid keys: {valid}")
    return cfg
