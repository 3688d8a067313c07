"""The run folder ``<project>/<task>/<name>/``: names, args/env files, results.csv and plots."""

from __future__ import annotations

import csv
import io
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mirstd._version import __version__
from mirstd.utils.io import atomic_write_bytes, atomic_write_text, increment_dir

__all__ = ["env_info", "increment_dir", "plot_results", "read_results_csv", "write_results_csv", "write_yaml"]


def git_commit() -> str | None:
    """HEAD of the checkout mirstd is imported from, when it is one."""
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return (
            r.stdout.strip()
            if r.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", r.stdout.strip())
            else None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def env_info(device: str, world: int) -> dict[str, Any]:
    import numpy as np
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "numpy": np.__version__,
        "mirstd": __version__,
        "git_commit": git_commit(),
        "device": device,
        "world_size": world,
    }


def write_yaml(path: Path, doc: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))


def write_results_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per validation; columns are the union of keys in first-seen order."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_results_csv(path: Path, max_step: int) -> list[dict[str, Any]]:
    """Rows of an earlier (resumed) run up to ``max_step``, numbers parsed."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {k: (float(v) if v not in ("", None) else "") for k, v in r.items()}
            if row.get("step", 0) <= max_step:
                # step back to int; every other column (epoch is a fraction) stays as it was written
                rows.append({k: (int(v) if k == "step" and v != "" else v) for k, v in row.items()})
    return rows


def plot_results(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """``results.png``: one panel per loss, metric and the learning rate against the step."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[0] if k not in ("step", "epoch", "time")]
    n = len(keys)
    cols = min(n, 4)
    fig, axes = plt.subplots(
        (n + cols - 1) // cols, cols, figsize=(3.2 * cols, 2.6 * ((n + cols - 1) // cols)), squeeze=False
    )
    steps = [r["step"] for r in rows]
    for ax, k in zip(axes.flat, keys):
        ys = [r.get(k, "") for r in rows]
        pts = [(s, y) for s, y in zip(steps, ys) if y != ""]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", lw=1)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
