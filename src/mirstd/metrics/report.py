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


def pdfa_curve(curves: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The centroid Pd-Fa curve of a ``curves()`` dict (the threshold sweep), if there is one."""
    key = next((k for k in curves if k.startswith("pdfa_curve") or k.startswith("pdfa[centroid")), None)
    key = key or next((k for k in curves if k.startswith("pdfa")), None)
    return curves.get(key) if key else None


def plot_curves(
    per_method: dict[str, dict[str, Any]], out: Path, prefix: str = "", title: str = ""
) -> list[Path]:
    """The one plotting path of evaluation curves: pixel ROC, centroid Pd-Fa and PR, each method of
    ``per_method`` (label -> ``Evaluator.curves()``) one line; PNGs ``<prefix>roc.png`` etc. written
    atomically (matplotlib Agg). Plots without data are not written. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suffix = f" {title}" if title else ""
    panels = (
        ("roc", lambda c: c.get("roc"), "fpr", "tpr",
         dict(xscale="log", xlim=(1e-6, 1), xlabel="FPR (pixels)", ylabel="TPR (pixels)", title=f"pixel ROC{suffix}")),
        ("pdfa", pdfa_curve, "fa", "pd",
         dict(xscale="log", xlabel="Fa (fraction of pixels)", ylabel="Pd", ylim=(0, 1.02), title=f"Pd-Fa (centroid){suffix}")),
        ("pr", lambda c: c.get("pr"), "recall", "precision",
         dict(xlabel="recall", ylabel="precision (101-pt, IoU 0.5)", ylim=(0, 1.05), title=f"PR{suffix}")),
    )  # fmt: skip
    written = []
    for name, pick, xk, yk, axes in panels:
        lines = {label: pick(c) for label, c in per_method.items() if c and pick(c)}
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for label, c in lines.items():
            x, y = np.asarray(c[xk], float), np.clip(np.asarray(c[yk], float), 0, None)
            ok = x > 0 if axes.get("xscale") == "log" else np.ones_like(x, bool)
            ax.plot(x[ok], y[ok], marker="." if name == "pdfa" else None, ms=3, label=label or None)
        ax.set(**axes)
        if any(lines):
            ax.legend(fontsize=7)
        path = out / f"{prefix}{name}.png"
        save_fig(fig, path)
        plt.close(fig)
        written.append(path)
    return written


def write_plots(curves: dict[str, dict[str, np.ndarray]], out: Path, prefix: str = "") -> list[Path]:
    """ROC / Pd-Fa / PR plots of one evaluation (see :func:`plot_curves`)."""
    return plot_curves({"": curves}, out, prefix)


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
