"""Writing evaluation results: ``<stem>.json`` (numbers + curves + header), ``<stem>.md`` (a table with
the conventions) and ROC / Pd-Fa / PR plots — the one results writer of val, eval and the demo."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.metrics.det import write_result_file
from mirstd.metrics.evaluator import Evaluator, fa_scaled
from mirstd.utils.io import atomic_write_bytes, atomic_write_text, write_json

# --------------------------------------------------------------------------- reports


def _is_fa(key: str) -> bool:
    return key.startswith("fa[") or key.startswith("fa_pix")


def markdown_table(results: dict[str, Any], title: str = "Evaluation") -> str:
    """Markdown table of a results dict: Fa shown x1e-6, others as fractions; conventions listed below."""
    approx = set(results.get("meta", {}).get("approximate", []))

    def rows(res: dict[str, Any]) -> list[str]:
        out = []
        for k, v in res.items():
            if not isinstance(v, (int, float)):
                continue
            if _is_fa(k):
                val, unit = f"{fa_scaled(v):.3f}", "x1e-6"
            elif isinstance(v, int):
                val, unit = str(v), "count"
            else:
                val, unit = f"{v:.6f}", "fraction" if not k.startswith("fa_per_frame") else "per frame"
            out.append(f"| {k}{' (approx.)' if k in approx else ''} | {val} | {unit} |")
        return out

    lines = [f"# {title}", "", "| metric | value | unit |", "|---|---|---|", *rows(results)]
    for g, res in results.get("by_scr", {}).items():
        lines += ["", f"## mSCR group `{g}`", "", "| metric | value | unit |", "|---|---|---|", *rows(res)]
    conv = results.get("meta", {}).get("conventions", {})
    if conv:
        lines += ["", "## Conventions", ""] + [f"- `{k}`: {v}" for k, v in conv.items()]
    return "\n".join(lines) + "\n"


def save_fig(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def write_plots(curves: dict[str, dict[str, np.ndarray]], out: Path, prefix: str = "") -> list[Path]:
    """ROC / Pd-Fa / PR plots (matplotlib Agg), written atomically. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "roc" in curves:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(curves["roc"]["fpr"], curves["roc"]["tpr"])
        ax.set(xlabel="FPR", ylabel="TPR", title="pixel ROC")
        save_fig(fig, out / f"{prefix}roc.png")
        plt.close(fig)
        written.append(out / f"{prefix}roc.png")
    pdfa = {k: v for k, v in curves.items() if k.startswith("pdfa")}
    if pdfa:
        fig, ax = plt.subplots(figsize=(5, 4))
        for k, c in pdfa.items():
            fa = np.asarray(c["fa"], float)
            ok = fa > 0
            ax.plot(fa[ok], np.asarray(c["pd"], float)[ok], marker=".", label=k)
        ax.set_xscale("log")
        ax.set(xlabel="Fa (raw fraction of pixels)", ylabel="Pd", title="Pd-Fa")
        ax.legend(fontsize=7)
        save_fig(fig, out / f"{prefix}pdfa.png")
        plt.close(fig)
        written.append(out / f"{prefix}pdfa.png")
    if "pr" in curves:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(curves["pr"]["recall"], np.clip(curves["pr"]["precision"], 0, None))
        ax.set(xlabel="recall", ylabel="precision (101-pt, IoU 0.5)", title="PR", ylim=(0, 1.05))
        save_fig(fig, out / f"{prefix}pr.png")
        plt.close(fig)
        written.append(out / f"{prefix}pr.png")
    return written


def write_results(
    ev: Evaluator,
    out: str | Path,
    stem: str = "metrics",
    header: dict[str, Any] | None = None,
    title: str = "Evaluation",
    plots: bool = True,
) -> dict[str, Any]:
    """Write ``<stem>.json`` (header, results, curves), ``<stem>.md``, ``<stem>_pr101.txt`` when a PR
    curve exists, and plots ``<stem>_roc.png`` / ``_pdfa.png`` / ``_pr.png``. Returns the results."""
    out = Path(out)
    res = ev.compute()
    curves = ev.curves()
    write_json(out / f"{stem}.json", {**(header or {}), "results": res, "curves": curves})
    atomic_write_text(out / f"{stem}.md", markdown_table(res, title))
    if "pr" in curves:
        write_result_file(out / f"{stem}_pr101.txt", curves["pr"]["precision"])
    if plots:
        write_plots(curves, out, prefix=f"{stem}_")
    return res
