"""Model registry: ``create("pstfnet", **kwargs)``, ``list_models()``, ``@register_model("name")``."""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from mirstd.models.base import Method, check_contract

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


def _accepted(name: str) -> tuple[list[str], bool]:
    """``(keyword names, complete)``: the factory's, plus its return class's when it takes ``**kwargs``.
    ``complete`` is False when some ``**kwargs`` could not be resolved (then nothing is refused)."""
    fn = _REGISTRY[name]
    names, var_kw = [], False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not p.VAR_POSITIONAL:
            names.append(p.name)
    if not var_kw:
        return names, True
    try:
        cls = typing.get_type_hints(fn).get("return")
    except (NameError, TypeError):
        cls = None
    if not isinstance(cls, type):
        return names, False
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names:
            names.append(p.name)
    return names, True


def model_args(name: str) -> list[str]:
    """Keyword arguments ``create(name, ...)`` accepts (the ``model_args.*`` keys)."""
    _load_families()
    if name not in _REGISTRY:
        raise ValueError(unknown_model_message(name))
    return _accepted(name)[0]


def unknown_model_message(name: str) -> str:
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown model {name!r}{hint} (`mirstd models` lists them)"


def create(name: str, **kwargs: Any) -> Method:
    """Build a registered method and check its contract. Unknown names and arguments raise ValueError
    naming the closest valid one."""
    _load_families()
    if name not in _REGISTRY:
        raise ValueError(unknown_model_message(name))
    valid, complete = _accepted(name)
    bad = [k for k in kwargs if k not in valid] if complete else []
    if bad:
        close = difflib.get_close_matches(bad[0], valid, n=1)
        hint = f"; did you mean model_args.{close[0]}?" if close else f"; valid: {', '.join(valid)}"
        raise ValueError(f"model_args.{bad[0]}: model {name!r} has no argument {bad[0]!r}{hint}")
    return check_contract(_REGISTRY[name](**kwargs), name)
