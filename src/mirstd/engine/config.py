"""Training configuration: ``configs/default.yaml`` <- ``configs/<family>.yaml`` <- ``cfg=FILE`` <- overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mirstd.utils.config import check_keys, check_types, merge, task_defaults


def config_dirs() -> list[Path]:
    """Folders searched for config files: the installed package's, then the source checkout's."""
    pkg = Path(__file__).resolve().parents[1]
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
    """Merge the ``train:`` defaults, the model family file, an optional ``cfg=`` file and ``overrides``
    (in that order). Unknown keys and wrong types raise ConfigError naming the key and the closest one."""
    overrides = dict(overrides or {})
    defaults = task_defaults("train")
    user = read_yaml(overrides.pop("cfg")) if overrides.get("cfg") else {}
    check_keys(user, defaults, "train")
    check_keys(overrides, defaults, "train")
    check_types(overrides, defaults, "train")
    model = overrides.get("model", user.get("model", defaults["model"]))
    cfg = merge(merge(merge(defaults, family_config(str(model))), user), overrides)
    check_keys(cfg, defaults, "train")
    return cfg
