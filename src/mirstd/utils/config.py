"""`key=value` command-line overrides, Ultralytics style.

Values are parsed as YAML scalars (``lr=1e-3`` -> float, ``amp=false`` -> bool, ``imgsz=[256,256]`` -> list).
Dotted keys address nested dicts: ``optim.lr=0.01``.
"""

from __future__ import annotations

from typing import Any

import yaml


def parse_value(text: str) -> Any:
    # PyYAML (YAML 1.1) reads "1e-3" as a string; numbers are tried first for that reason.
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["a=1", "b.c=x"]`` into ``{"a": 1, "b": {"c": "x"}}``. Raises ValueError naming a bad item."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"argument {item!r} is not of the form key=value")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise ValueError(f"argument {item!r} has an empty key")
        set_dotted(out, key, parse_value(raw))
    return out


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ValueError(f"key {key!r}: {p!r} is not a section")
    d[parts[-1]] = value


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
