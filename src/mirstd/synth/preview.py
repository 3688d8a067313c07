"""Preview of a synthetic dataset: a contact sheet (one frame per background family × target type,
targets circled) and a dataset card (markdown + histograms of SCR, target size and speed)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from mirstd.data.native import read_native
from mirstd.utils.io import atomic_write_bytes, atomic_write_text


def _collect(ds):
    picks: dict[tuple[str, str], tuple] = {}
    stats = defaultdict(list)
    for seq in ds:
        fam = seq.meta.get("family", "?")
        for t, lab in enumerate(seq.labels):
            for rec in lab.extra.get("targets", []):
                stats["scr"].append(rec["scr_measured"])
                stats["area"].append(rec["area_px"])
                stats["speed"].append(float(np.hypot(*rec["velocity_xy"])))
                stats["split_" + seq.meta.get("split_scr", "?")].append(seq.name)
                key = (fam, rec["family"])
                if key not in picks and t == len(seq) // 2:
                    picks[key] = (seq, t)
    return picks, stats


def _savefig(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def write_preview(root: str | Path) -> list[Path]:
    """Write ``preview.png``, ``card.md`` and ``card_hist.png`` into the dataset folder ``root``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(root)
    ds = read_native(root)
    picks, stats = _collect(ds)
    fams = sorted({k[0] for k in picks})
    shapes = [s for s in ("point", "blob", "polygon", "aircraft") if any(k[1] == s for k in picks)]
    fig, axes = plt.subplots(
        len(fams), len(shapes), figsize=(2.6 * len(shapes), 2.6 * len(fams)), squeeze=False
    )
    for i, fam in enumerate(fams):
        for j, shp in enumerate(shapes):
            ax = axes[i][j]
            ax.axis("off")
            if (fam, shp) not in picks:
                continue
            seq, t = picks[(fam, shp)]
            img = seq.load_frame(t)
            lo, hi = np.percentile(img, [0.5, 99.8])
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            for rec in seq.labels[t].extra["targets"]:
                x1, y1, x2, y2 = rec["bbox_xyxy"]
                r = max(x2 - x1, y2 - y1) / 2 + 4
                ax.add_patch(plt.Circle(rec["center_xy"], r, fill=False, color="r", lw=0.8))
            scr = np.mean([r["scr_measured"] for r in seq.labels[t].extra["targets"]])
            ax.set_title(f"{fam} / {shp}\n{seq.name} t={t} SCR={scr:.1f}", fontsize=7)
            ax.axis("on")
            ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    sheet = root / "preview.png"
    _savefig(fig, sheet)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    axes[0].hist(stats["scr"], bins=40)
    axes[0].set_xlabel("SCR (scr_clean, stored frame)")
    axes[1].hist(stats["area"], bins=40)
    axes[1].set_xlabel("target area (px)")
    axes[2].hist(stats["speed"], bins=40)
    axes[2].set_xlabel("image speed (px/frame)")
    fig.tight_layout()
    hist = root / "card_hist.png"
    _savefig(fig, hist)
    plt.close(fig)

    meta = ds.meta
    lines = [
        f"# {ds.name}",
        "",
        f"Generator `{meta.get('generator')}`, preset `{meta.get('config', {}).get('preset')}`, seed {meta.get('seed')}.",
        f"{len(ds)} sequences, {ds.num_frames} frames, splits: "
        + ", ".join(f"{k} {len(v)}" for k, v in ds.splits.items())
        + ".",
        "",
        "| split | sequences | mSCR < 3 | mSCR ≥ 3 |",
        "|---|---|---|---|",
    ]
    for split, names in ds.splits.items():
        low = sum(ds[n].meta["split_scr"] == "low" for n in names)
        lines.append(f"| {split} | {len(names)} | {low} | {len(names) - low} |")
    fam_count = defaultdict(int)
    for seq in ds:
        fam_count[seq.meta["family"]] += 1
    lines += ["", "Background families: " + ", ".join(f"{k} {v}" for k, v in sorted(fam_count.items())) + "."]
    for key, unit in (("scr", ""), ("area", " px"), ("speed", " px/frame")):
        v = np.asarray(stats[key], float)
        lines.append(
            f"- {key}: n = {v.size}, median {np.median(v):.2f}{unit}, 5–95 % [{np.percentile(v, 5):.2f}, {np.percentile(v, 95):.2f}]{unit}"
        )
    lines += ["", "![contact sheet](preview.png)", "", "![histograms](card_hist.png)", ""]
    card = root / "card.md"
    atomic_write_text(card, "\n".join(lines))
    return [sheet, card, hist]
