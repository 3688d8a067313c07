"""``mirstd TASK [SUBTASK] key=value ...`` — one command line for every job.

Each task lives in its own module and registers a handler in ``TASKS``; handlers import their
heavy dependencies lazily so ``mirstd --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

# task name -> ("module:function", one-line help). The function takes the remaining argv list and
# returns an exit code.
TASKS: dict[str, tuple[str, str]] = {
    "data": ("mirstd.data.cli:main", "inspect, check and convert datasets (info | check | convert)"),
    "synth": ("mirstd.synth.cli:main", "render a semi-synthetic dataset (preset=demo out=DIR)"),
    "eval": ("mirstd.metrics.cli:eval_main", "score saved predictions against a dataset"),
    "profile": ("mirstd.metrics.cli:profile_main", "params, FLOPs, latency of a model"),
    "models": ("mirstd.models.cli:main", "list registered models"),
    "train": ("mirstd.engine.cli:train_main", "train a model (model=pstfnet data=...)"),
    "val": ("mirstd.engine.cli:val_main", "evaluate a checkpoint on a split"),
    "predict": ("mirstd.infer.cli:predict_main", "run a model on sequences or video"),
    "demo": ("mirstd.report.demo:main", "synthesise, train, evaluate and write a report"),
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
        from mirstd import __version__

        print(f"mirstd {__version__}")
        return 0
    task, rest = argv[0], argv[1:]
    if task not in TASKS:
        print(f"mirstd: unknown task {task!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return int(_resolve(TASKS[task][0])(rest) or 0)
    except (ValueError, KeyError, FileNotFoundError) as e:
        # User errors: one clear line, no traceback.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"mirstd {task}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
