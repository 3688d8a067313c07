"""``mirstd data info|check|convert`` — inspect, validate and convert datasets.

mirstd data info PATH [format=auto] [json=true] [key=value reader options]
mirstd data check PATH [format=auto]            exit 1 when any error is found
mirstd data convert SRC DST [format=native|coco] [split=NAME] [src_format=auto] [point_box=8]
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from mirstd.data.check import check_dataset, dataset_info
from mirstd.data.native import write_native
from mirstd.data.readers import load_dataset
from mirstd.data.readers.coco import write_coco
from mirstd.utils.config import parse_overrides

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
    ds = load_dataset(src, format=kw.pop("src_format", "auto"), **kw)
    if out_fmt == "native":
        if split:
            ds = ds.subset([s.name for s in ds.split(split)])
        write_native(ds, dst, progress=sys.stderr.isatty())
    elif out_fmt == "coco":
        write_coco(ds, dst, split=split, point_box=point_box)
    else:
        raise ValueError(f"format={out_fmt!r}; valid: native, coco")
    print(f"wrote {dst} ({out_fmt}): {len(ds)} sequences, {ds.num_frames} frames")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    cmds = {"info": cmd_info, "check": cmd_check, "convert": cmd_convert}
    if argv[0] not in cmds:
        print(f"mirstd data: unknown command {argv[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    return cmds[argv[0]](argv[1:])
