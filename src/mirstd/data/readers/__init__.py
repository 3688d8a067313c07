"""Dataset readers, one module per on-disk family (docs/data.md), selected by name or detected.

Each reader module defines ``NAME``, ``detect(path) -> bool`` and
``read(path, collector, **opts) -> SequenceDataset``; optionally ``verify(dataset) -> list[Finding]``
(slow cross-checks run by ``mirstd data check``) and ``ALIASES``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

from mirstd.data.findings import Collector, DataError, Finding
from mirstd.data.protocols import apply_protocol, load_real
from mirstd.data.sequence import Sequence, SequenceDataset
from mirstd.utils.config import ConfigError, unknown_key_message

# Detection order matters: the most specific layouts first.
_MODULES = ["native", "videos", "tensoristd", "nudt_mirsdt", "sirst", "uestc", "coco", "mist", "basicirstd"]


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"mirstd.data.readers.{m}") for m in _MODULES]


def reader_names() -> dict[str, tuple[ModuleType, dict[str, Any]]]:
    """format name -> (module, fixed options). Aliases include the spec's §12 names."""
    out: dict[str, tuple[ModuleType, dict[str, Any]]] = {}
    for mod in _modules():
        for name, fixed in getattr(mod, "FORMATS", {mod.NAME: {}}).items():
            out[name] = (mod, fixed)
    return out


def detect_format(path: str | Path) -> str:
    """Name of the first reader whose ``detect`` accepts ``path``; ValueError listing formats if none."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    for mod in _modules():
        fmt = mod.detect(path)
        if fmt:
            return fmt if isinstance(fmt, str) else mod.NAME
    raise ValueError(
        f"{path}: cannot tell the dataset format; pass format=<name> (one of: {', '.join(sorted(reader_names()))})"
    )


def load_dataset(path: str | Path, format: str = "auto", strict: bool = True, **opts: Any) -> SequenceDataset:
    """Read a dataset of any supported layout as a :class:`SequenceDataset` (frames stay on disk).

    ``path`` may be ``"synth:<preset>"``: rendered in memory by ``mirstd.synth.load_synth(preset, **opts)``.
    ``format="auto"`` detects the layout. With ``strict=True`` any error-level finding (missing frame,
    label for a frame that does not exist, split line naming a missing file, ...) raises
    :class:`~mirstd.data.findings.DataError` naming the files; ``strict=False`` skips those items and keeps
    the findings in ``dataset.findings`` (what ``mirstd data check`` reports).
    """
    if isinstance(path, (list, tuple)):
        return merge_datasets([load_dataset(p, format, strict, **opts) for p in path])
    if isinstance(path, str) and path.split(":", 1)[0] in {*_SOURCES, *_SOURCE_PLUGINS} and ":" in path:
        scheme, name = path.split(":", 1)
        return _load_scheme(scheme, name, **opts)
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    fmt = detect_format(path) if format in (None, "auto") else format
    names = reader_names()
    if fmt not in names:
        raise ValueError(f"unknown dataset format {fmt!r}; valid: auto, {', '.join(sorted(names))}")
    mod, fixed = names[fmt]
    params = inspect.signature(mod.read).parameters
    unknown = [k for k in opts if k not in params]
    if unknown:
        valid = [k for k in params if k not in ("path", "col")]
        raise ConfigError(
            unknown_key_message(unknown[0], valid + ["format", "strict"], "data", "") + f" (format {fmt!r})"
        )
    col = Collector()
    ds = mod.read(path, col, **{**fixed, **opts})
    ds.findings.extend(col.items)
    ds.format = fmt
    apply_protocol(ds)
    errors = [f for f in ds.findings if f.severity == "error"]
    if strict and errors:
        raise DataError(errors, path)
    if not ds.sequences:
        raise DataError([*errors, _no_seq(path)], path)
    return ds


def _no_seq(path: Path):
    return Finding(str(path), "dataset is empty (no sequences with frames)", kind="empty_dataset")


def verify(ds: SequenceDataset) -> list:
    """Format-specific slow cross-checks (e.g. SIRST XML boxes vs masks)."""
    mod = reader_names().get(ds.format, (None, {}))[0]
    fn = getattr(mod, "verify", None)
    return list(fn(ds)) if fn else []


# ``scheme:`` sources rendered in memory by a higher package (``synth:`` by mirstd.synth), which
# registers its loader when imported. The data layer never imports them itself; the plug-in module is
# imported by name on first use only (so ``load_dataset("synth:smoke")`` works from a bare import).
_SOURCES: dict[str, Any] = {"real": load_real}
_SOURCE_PLUGINS = {"synth": "mirstd.synth"}


def register_source(scheme: str, loader: Any) -> None:
    """Make ``load_dataset("<scheme>:<name>", **opts)`` call ``loader(name, **opts)``."""
    _SOURCES[scheme] = loader


def _load_scheme(scheme: str, name: str, **opts: Any) -> SequenceDataset:
    if scheme not in _SOURCES and scheme in _SOURCE_PLUGINS:
        try:
            importlib.import_module(_SOURCE_PLUGINS[scheme])
        except ImportError as e:
            raise ImportError(
                f"{scheme}:{name}: the {scheme}: source needs {_SOURCE_PLUGINS[scheme]} ({e})"
            ) from e
    if scheme not in _SOURCES:
        raise ValueError(f"{scheme}:{name}: no loader is registered for {scheme}: sources")
    return _SOURCES[scheme](name, **opts)


def merge_datasets(parts: list[SequenceDataset]) -> SequenceDataset:
    """One dataset of several (``data=[real:airground, synth:demo]``): the sequences of all, each split
    the union of the parts' splits of that name. A sequence name that occurs twice gets its dataset's
    name and position as a prefix (``<dataset><k>__<sequence>``)."""
    seen: dict[str, int] = {}
    for ds in parts:
        for n in ds.sequences:
            seen[n] = seen.get(n, 0) + 1
    seqs: dict[str, Sequence] = {}
    splits: dict[str, list[str]] = {}
    for k, ds in enumerate(parts):
        rename = {}
        for n, s in ds.sequences.items():
            new = n if seen[n] == 1 else f"{ds.name}{k}__{n}"
            rename[n] = new
            s = dataclasses.replace(s, name=new, meta={**s.meta, "part": k})
            seqs[new] = s
        for split, names in ds.splits.items():
            splits.setdefault(split, []).extend(rename[n] for n in names if n in rename)
    norms = {ds.norm for ds in parts}
    return SequenceDataset(
        seqs,
        splits,
        "+".join(ds.name for ds in parts),
        None,
        "merged",
        norms.pop() if len(norms) == 1 else None,
        {"parts": [{"name": ds.name, "format": ds.format, "root": str(ds.root)} for ds in parts]},
        [f for ds in parts for f in ds.findings],
    )
