"""Model registry: ``create("pstfnet", **kwargs)``, ``list_models()``, ``@register_model("name")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DOCS: dict[str, str] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        _DOCS[name] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        return fn

    return deco


def _load_families() -> None:
    # Import every family module so their @register_model decorators run.
    import importlib
    import pkgutil

    import mirstd.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_") and mod.name != "registry":
            importlib.import_module(f"mirstd.models.{mod.name}")


def list_models() -> dict[str, str]:
    """Registered names with a one-line description."""
    _load_families()
    return dict(sorted(_DOCS.items()))


def create(name: str, **kwargs: Any) -> nn.Module:
    _load_families()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)
