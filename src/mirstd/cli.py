"""``mirstd TASK [SUBTASK] key=value ...`` — one command line for every job.

Each task lives in its own module and registers a handler in ``TASKS``; handlers import their
heavy dependencies lazily so ``mirstd --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from mirstd._version import __version__

# task name -> ("module:function", one-line help). The function takes the remaining argv list and
# returns an exit code.
TASKS: dict[str, tuple[str, str]] = {
    "data": ("mirstd.data.cli:main", "inspect, check and convert datasets (info | check | convert)"),
    "synth": ("mirstd.synth.cli:main", "render a semi-synthetic dataset (preset=demo out=DIR)"),
    "eval": ("mirstd.infer.cli:eval_main", "score saved predictions (what predict writes) against a dataset"),
    "profile": ("mirstd.models.cli:profile_main", "params, FLOPs, latency of a model"),
    "models": ("mirstd.models.cli:main", "list registered models"),
    "train": ("mirstd.engine.cli:train_main", "train a model (model=pstfnet data=...)"),
    "val": ("mirstd.infer.cli:val_main", "evaluate a checkpoint (or a classical method) on a split"),
    "predict": ("mirstd.infer.cli:predict_main", "run a model on sequences or video"),
    "export": ("mirstd.infer.export:export_main", "export a checkpoint to ONNX, checked with onnxruntime"),
    "demo": ("mirstd.report.demo:main", "synthesise, train, evaluate and write a report"),
    "bench": (
        "mirstd.report.bench:main",
        "rerun the papers' comparison and write an HTML report (protocol=table1 budget=cpu-quick)",
    ),
    "convert-weights": (
        "mirstd.models.weights:convert_main",
        "import an authors' checkpoint (src=... model=... out=...)",
    ),
}


def _usage() -> str:
    lines = ["usage: mirstd TASK [args] key=value ...", "", "tasks:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in TASKS.items()]
    lines += ["", "Run `mirstd TASK --help` for the keys a task takes."]
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[list[str]], int]:
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"mirstd {__version__}")
        return 0
    task, rest = argv[0], argv[1:]
    if task not in TASKS:
        print(f"mirstd: unknown task {task!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return int(_resolve(TASKS[task][0])(rest) or 0)
    except (ValueError, KeyError, OSError, FloatingPointError) as e:
        # The error boundary: anticipated failures (bad keys and values, missing or corrupt files,
        # names taken) print one line naming the key or file; MIRSTD_DEBUG=1 shows the traceback.
        if os.environ.get("MIRSTD_DEBUG"):
            raise
        print(f"mirstd {task}: error: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mirstd {task}: interrupted", file=sys.stderr)
        return 130


def one_line(e: BaseException) -> str:
    """The first line of an exception's message (KeyError's repr quotes stripped), at most 300 chars."""
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e
    if isinstance(e, OSError) and e.filename and str(e.filename) not in str(msg):
        msg = f"{e.filename}: {e.strerror or msg}"
    text = str(msg).strip().splitlines()[0] if str(msg).strip() else type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    sys.exit(main())
