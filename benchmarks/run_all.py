"""Run every ``benchmarks/bench_*.py`` (found by glob, in name order) and print a summary.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME ...] [--results-dir DIR] [--list]
    make bench [BENCH_ARGS=--quick]

Each script writes its results JSON; ``run_all`` passes it the path ``<results-dir>/<name>.json``
(``bench_foo.py`` -> ``foo.json``) through the script's ``--results`` option, or ``--out`` when it
has no ``--results``. Full runs write to ``benchmarks/results/`` (the committed numbers); ``--quick``
writes to a temporary folder unless ``--results-dir`` is given, so a smoke run never overwrites them.

``--quick`` passes ``--quick`` to scripts that define it; scripts without a quick mode of their own
get the reduced settings of :data:`QUICK_ARGS` (or run as they are). A new ``bench_*.py`` is picked
up automatically; give it a ``--quick`` option and an ``--out`` (or ``--results``) JSON path.

Exit status 1 if any script failed (non-zero exit, time-out or no fresh results file). A script
without an output option writes its own default file: full runs accept that, ``--quick`` skips it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# quick settings for scripts that have no --quick of their own (a few seconds to ~1 min each)
QUICK_ARGS: dict[str, list[str]] = {
    "bench_classical": ["--repeats", "1"],
    "bench_metrics": ["--frames", "500", "--full-frames", "200"],
    "bench_pstfnet": ["--repeats", "1"],
    "bench_smfnet": ["--repeats", "1", "--size", "128"],
    "bench_synth": ["smoke", "--out", "{tmp}/synth-data"],
}


def discover(only: list[str] | None = None) -> list[Path]:
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(o in s.stem for o in only)]
    return scripts


def _has_option(src: str, opt: str) -> bool:
    return f'"{opt}"' in src or f"'{opt}'" in src


def command(script: Path, out_json: Path, quick: bool, tmp: Path) -> tuple[list[str], bool]:
    """The command line of one script and whether it takes the results path (``--results``/``--out``)."""
    src = script.read_text()
    cmd = [sys.executable, str(script)]
    if quick:
        if _has_option(src, "--quick"):
            cmd.append("--quick")
        else:
            cmd += [a.replace("{tmp}", str(tmp)) for a in QUICK_ARGS.get(script.stem, [])]
    for opt in ("--results", "--out"):
        if _has_option(src, opt):
            return cmd + [opt, str(out_json)], True
    return cmd, False


def _leaves(doc, prefix: str = ""):
    """(dotted key, number) pairs of a results document, depth first."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield prefix[:-1], doc


def _headline(path: Path, n: int = 4) -> str:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return f"(unreadable: {e})"
    keys = ("_s", "per_s", "fps", "speedup", "gflops", "ms_per")
    skip = ("limit", "loadavg")
    picked = [
        (k, v)
        for k, v in _leaves(doc)
        if any(t in k.rsplit(".", 1)[-1] for t in keys) and not any(t in k for t in skip)
    ][:n]
    return ", ".join(f"{k}={v:.4g}" for k, v in picked)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short settings; results to a temporary folder")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only scripts whose name contains NAME")
    ap.add_argument("--results-dir", type=Path, default=None, help="where the results JSONs go")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per script (default 3600)")
    ap.add_argument("--list", action="store_true", help="print the commands and exit")
    args = ap.parse_args(argv)

    scripts = discover(args.only)
    if not scripts:
        print(f"no benchmarks/bench_*.py matched {args.only}", file=sys.stderr)
        return 1
    tmp = Path("<tmp>")
    if args.quick and not args.list:
        tmp = Path(tempfile.mkdtemp(prefix="mirstd-bench-"))
    out_dir = args.results_dir or (tmp / "results" if args.quick else RESULTS)
    if not args.list:
        out_dir.mkdir(parents=True, exist_ok=True)

    rows = []
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        cmd, redirected = command(script, out_dir / f"{name}.json", args.quick, tmp)
        out_json = out_dir / f"{name}.json" if redirected else RESULTS / f"{name}.json"  # its own default
        if args.list:
            print(" ".join(cmd) + ("" if redirected else f"    # writes {out_json} itself"))
            continue
        if args.quick and not redirected:  # it would overwrite the committed full-run numbers
            print(f"==> skip {script.name}: no --out/--results option to redirect a quick run", flush=True)
            rows.append((script.stem, "skipped", 0.0, None))
            continue
        print(f"==> {' '.join(cmd)}", flush=True)
        before = out_json.stat().st_mtime if out_json.exists() else None
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(cmd, cwd=HERE.parent, timeout=args.timeout).returncode
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            status = f"timeout {args.timeout:g} s"
        wall = time.perf_counter() - t0
        fresh = out_json.exists() and (before is None or out_json.stat().st_mtime > before)
        if status == "ok" and not fresh:
            status = "no results"
        rows.append((script.stem, status, wall, out_json if fresh else None))
    if args.list:
        return 0

    print(f"\n{'benchmark':<18} {'status':<14} {'wall s':>7}  results")
    for name, status, wall, path in rows:
        print(f"{name:<18} {status:<14} {wall:7.1f}  {path if path else '-'}")
        if path:
            print(f"{'':<41}{_headline(path)}")
    failed = [r[0] for r in rows if r[1] not in ("ok", "skipped")]
    skipped = [r[0] for r in rows if r[1] == "skipped"]
    print(
        f"\n{sum(r[1] == 'ok' for r in rows)}/{len(rows)} ok"
        + (f"; skipped (no output option): {', '.join(skipped)}" if skipped else "")
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
