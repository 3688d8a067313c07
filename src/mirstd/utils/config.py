"""`key=value` command-line overrides, Ultralytics style.

Values are parsed as YAML scalars (``lr=1e-3`` -> float, ``amp=false`` -> bool, ``imgsz=[256,256]`` -> list).
Dotted keys address nested dicts: ``optim.lr=0.01``.
"""

from __future__ import annotations

from pathlib import Path
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


# ------------------------------------------------------------------------------ the one front end
class ConfigError(ValueError):
    """A bad key or value; its message is one line that names the key (the CLI prints only that)."""


def closest(key: str, valid: list[str] | tuple[str, ...] | set[str]) -> str | None:
    import difflib

    hit = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.6)
    return hit[0] if hit else None


def unknown_key_message(key: str, valid: Any, task: str, prefix: str = "") -> str:
    near = closest(key, list(valid))
    hint = f"did you mean {prefix}{near}?" if near else f"valid keys: {', '.join(sorted(valid))}"
    return f"unknown key {prefix + str(key)!r} for mirstd {task}; {hint}"


def check_keys(args: dict[str, Any], valid: dict[str, Any], task: str, prefix: str = "") -> None:
    """Refuse keys not in ``valid`` (recursing into sections whose default is a non-empty mapping)."""
    for k, v in args.items():
        if k not in valid:
            raise ConfigError(unknown_key_message(k, valid, task, prefix))
        ref = valid[k]
        if isinstance(ref, dict) and ref and isinstance(v, dict):
            check_keys(v, ref, task, f"{prefix}{k}.")


# Keys whose default is null but whose type is fixed (checked like the others).
NULL_TYPES: dict[str, tuple[type, ...]] = {
    "steps": (int,), "val_every": (int,), "save_every": (int,), "metric": (str,), "device": (str, int),
    "name": (str, int), "frames": (int,), "pad": (str,), "mask_from": (str,), "point_box": (int, float),
    "key_stride": (int,), "val_frames": (int,), "weights": (str,), "out": (str,), "imgsz": (int, list), "seed": (int,),
}  # fmt: skip
POSITIVE = {
    "batch",
    "steps",
    "epochs",
    "frames",
    "key_stride",
    "val_stride",
    "iters",
    "warmup",
    "imgsz",
    "workers_min",
}


def _type_ok(value: Any, default: Any, key: str) -> bool:
    if value is None:
        return True
    kinds: tuple[type, ...]
    if default is None:
        kinds = NULL_TYPES.get(key, ())
        if not kinds:
            return True
    elif isinstance(default, bool):
        kinds = (bool,)
    elif isinstance(default, int):
        kinds = (int,)
    elif isinstance(default, float):
        kinds = (int, float)
    elif isinstance(default, str):
        kinds = (str, list) if key in ("data", "source") else (str,)  # data=[a, b]: several datasets
    elif isinstance(default, (list, tuple)):
        kinds = (list, tuple, int, float, str)
    elif isinstance(default, dict):
        kinds = (dict,)
    else:
        return True
    if isinstance(value, bool) and bool not in kinds:
        return False
    if kinds == (int,) and isinstance(value, float) and value.is_integer():
        return True  # steps=1e4 reads as a float
    return isinstance(value, kinds)


_TYPE_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string", dict: "a section",
               list: "a list"}  # fmt: skip


def _type_name(default: Any, key: str) -> str:
    if default is None:
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in NULL_TYPES.get(key, ())) or "any"
    return _TYPE_NAMES.get(type(default), type(default).__name__)


def check_types(args: dict[str, Any], defaults: dict[str, Any], task: str) -> None:
    """Refuse values of the wrong type (``steps=abc``) or out of range (``batch=0``), naming the key."""
    for k, v in args.items():
        d = defaults.get(k)
        if k == "imgsz" and isinstance(v, (list, tuple)):
            if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
                raise ConfigError(f"imgsz={list(v)!r} is not a size (an integer, or [H, W])")
            if task != "profile" and v[0] != v[1]:
                raise ConfigError(f"imgsz={list(v)}: {task} crops are square; give one size (imgsz={v[0]})")
            continue
        if not _type_ok(v, d, k):
            raise ConfigError(f"{k}={v!r} is not {_type_name(d, k)}")
        if k in POSITIVE and isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
            raise ConfigError(f"{k}={v!r} must be positive")
        if isinstance(v, float) and v != v:
            raise ConfigError(f"{k}=nan is not a number")


def default_config_path() -> Path:
    return Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def task_defaults(task: str) -> dict[str, Any]:
    """The ``task:`` section of ``configs/default.yaml`` (every key that task takes, with its default)."""
    doc = yaml.safe_load(default_config_path().read_text()) or {}
    if task not in doc or not isinstance(doc[task], dict):
        raise ConfigError(f"configs/default.yaml has no section {task!r}")
    return dict(doc[task])


def task_config(task: str, args: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validated ``defaults <- args`` for ``task``. ``extra`` adds valid keys (and their defaults)."""
    defaults = {**task_defaults(task), **(extra or {})}
    check_keys(args, defaults, task)
    check_types(args, defaults, task)
    return merge(defaults, args)
