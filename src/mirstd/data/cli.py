"""``mirstd data info|check|convert`` — inspect, validate and convert datasets.

mirstd data info PATH [format=auto] [json=true] [key=value reader options]
mirstd data check PATH [format=auto]            exit 1 when any error is found
mirstd data convert SRC DST [format=native|coco] [split=NAME] [src_format=auto] [point_box=8] [exist_ok=false]
    DST (a folder for native, a .json file for coco) must not exist or be empty unless exist_ok=true
    (which replaces an earlier output); it may not lie inside SRC nor hold it. Native output is
    written into a temporary sibling and renamed into place when complete.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mirstd.data.check import check_dataset, dataset_info
from mirstd.data.native import write_native
from mirstd.data.readers import load_dataset
from mirstd.data.readers.coco import write_coco
from mirstd.utils.config import ConfigError, parse_overrides
from mirstd.utils.io import OutputExistsError, staged_dir

USAGE = __doc__


def _args(argv: list[str], n: int) -> tuple[list[str], dict]:
    pos = [a for a in argv if "=" not in a]
    if len(pos) != n:
        raise ValueError(f"expected {n} path argument(s), got {pos}\n{USAGE}")
    return pos, parse_overrides([a for a in argv if "=" in a])


def cmd_info(argv: list[str]) -> int:
    (path,), kw = _args(argv, 1)
    fmt, scr_frames = kw.pop("format", "auto"), int(kw.pop("scr_frames", 200))
    as_json = bool(kw.pop("json", False))
    ds = load_dataset(path, format=fmt, strict=False, **kw)
    info = dataset_info(ds, scr_frames=scr_frames, progress=sys.stderr.isatty())
    print(json.dumps(info, indent=1) if as_json else format_info(info))
    if ds.findings:
        print(
            f"note: the reader skipped or flagged {len(ds.findings)} item(s); run `mirstd data check {path}`",
            file=sys.stderr,
        )
    return 0


def format_info(info: dict, indent: str = "  ") -> str:
    """Human-readable rendering of ``dataset_info`` (``json=true`` prints the raw dict)."""
    lines = []

    def walk(d: dict, depth: int) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and v:
                lines.append(f"{indent * depth}{k}:")
                walk(v, depth + 1)
            else:
                lines.append(f"{indent * depth}{k + ':':<24} {v}")

    walk(info, 0)
    return "\n".join(lines)


def cmd_check(argv: list[str]) -> int:
    (path,), kw = _args(argv, 1)
    fmt = kw.pop("format", "auto")
    findings = check_dataset(path, format=fmt, progress=sys.stderr.isatty(), **kw)
    for f in findings:
        print(f)
    errors = [f for f in findings if f.severity == "error"]
    kinds = Counter(f.kind for f in findings)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none"
    print(f"{path}: {len(errors)} error(s), {len(findings) - len(errors)} warning(s) [{summary}]")
    return 1 if errors else 0


def cmd_convert(argv: list[str]) -> int:
    (src, dst), kw = _args(argv, 2)
    out_fmt, split = kw.pop("format", "native"), kw.pop("split", None)
    point_box = kw.pop("point_box", None)
    exist_ok = kw.pop("exist_ok", False)
    if not isinstance(exist_ok, bool):
        raise ConfigError(f"exist_ok={exist_ok!r} is not true/false")
    if out_fmt not in ("native", "coco"):
        raise ValueError(f"format={out_fmt!r}; valid: native, coco")
    check_not_source(Path(src), Path(dst))
    if out_fmt == "coco" and Path(dst).exists() and not exist_ok:
        raise OutputExistsError(f"DST {dst} exists; pick another DST or pass exist_ok=true to replace it")
    if out_fmt == "coco" and Path(dst).is_dir():
        raise OutputExistsError(f"DST {dst} is a folder; format=coco writes one .json file")
    ds = load_dataset(src, format=kw.pop("src_format", "auto"), **kw)
    if out_fmt == "native":
        if split:
            ds = ds.subset([s.name for s in ds.split(split)])
        with staged_dir(dst, exist_ok, "DST", ("dataset.yaml",)) as tmp:
            write_native(ds, tmp, progress=sys.stderr.isatty())
    else:
        write_coco(ds, dst, split=split, point_box=point_box)
    print(f"wrote {dst} ({out_fmt}): {len(ds)} sequences, {ds.num_frames} frames")
    return 0


def check_not_source(src: Path, dst: Path) -> None:
    """``data convert`` never writes over its source: DST may not be SRC, lie inside it, or hold it."""
    if not src.exists():  # synth:<preset> and other in-memory sources
        return
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents:
        raise ValueError(
            f"DST {dst} lies inside the source {src}; converting would change the source: pick a DST outside it"
        )
    if d in s.parents:
        raise ValueError(
            f"DST {dst} holds the source {src}; replacing it would delete the source: pick another DST"
        )


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    cmds = {"info": cmd_info, "check": cmd_check, "convert": cmd_convert}
    if argv[0] not in cmds:
        print(f"mirstd data: unknown command {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    return cmds[argv[0]](argv[1:])
