"""A static HTML report (no server, no framework): sortable tables, curve plots, detection thumbnails.

Pure functions, data in, file paths out: :func:`curve_plots` writes PNGs (matplotlib Agg) and returns
their paths, :func:`detection_image` writes one thumbnail and returns its hit / miss / false-alarm
counts, :func:`write_report` writes ``report.html`` referring to the images by relative paths (the
folder can be copied or served as it is). The only script is a few lines of vanilla JS that sort a
table when its header is clicked.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.utils.io import atomic_write_bytes, atomic_write_text

# kind -> (scale, format) of a table cell
FORMATS = {
    "pct": (100.0, "{:.2f}"),
    "fa": (1e6, "{:.2f}"),
    "num": (1.0, "{:.3f}"),
    "num2": (1.0, "{:.2f}"),
    "int": (1.0, "{:,.0f}"),
    "flops": (1.0, "{:.3f}"),
    "ms": (1.0, "{:.1f}"),
    "s": (1.0, "{:.1f}"),
}

COLOURS = {"hit": (0, 200, 0), "miss": (0, 220, 255), "false": (0, 0, 255)}  # BGR: green, yellow, red


# ------------------------------------------------------------------------------------ images
def curve_plots(
    per_method: dict[str, dict[str, Any]], out: Path, prefix: str = "", title: str = ""
) -> list[Path]:
    """Pixel ROC, centroid Pd-Fa and PR (:func:`mirstd.metrics.report.plot_curves`), plus Pd against
    false alarms per frame when the curves have one (``pd_fapf[...]``, the real-data protocol);
    ``per_method`` maps a label to its ``Evaluator.curves()`` (arrays or lists). Returns the PNGs."""
    from mirstd.metrics.report import plot_curves, save_fig

    out = Path(out)
    written = plot_curves(per_method, out, prefix, title)
    lines = {}
    for lab, c in per_method.items():
        key = next((k for k in (c or {}) if k.startswith("pd_fapf")), None)
        if key:
            lines[lab] = c[key]
    if lines:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4))
        for lab, c in lines.items():
            x, y = np.asarray(c["fa_per_frame"], float), np.asarray(c["pd"], float)
            ok = x > 0
            ax.plot(x[ok], y[ok], marker=".", ms=3, label=lab)
        ax.set(xscale="log", xlabel="false alarms per frame", ylabel="Pd (point rule)", ylim=(0, 1.02),
               title=f"Pd vs FA/frame {title}".strip())  # fmt: skip
        ax.legend(fontsize=7)
        path = out / f"{prefix}pd_fapf.png"
        save_fig(fig, path)
        plt.close(fig)
        written.append(path)
    return written


def _stretch(frame: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(frame, [1.0, 99.7])
    return np.clip((frame - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)


def match_targets(
    targets: np.ndarray, gt: np.ndarray, distance: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching of predicted target points to GT points (nearest first, within
    ``distance`` px). Returns (per-prediction GT index or -1, per-GT matched flag)."""
    pred_of = np.full(len(targets), -1)
    gt_hit = np.zeros(len(gt), bool)
    if len(targets) and len(gt):
        d = np.hypot(targets[:, None, 0] - gt[None, :, 0], targets[:, None, 1] - gt[None, :, 1])
        for flat in np.argsort(d, axis=None):
            p, g = np.unravel_index(flat, d.shape)
            if d[p, g] >= distance:
                break
            if pred_of[p] < 0 and not gt_hit[g]:
                pred_of[p], gt_hit[g] = g, True
    return pred_of, gt_hit


def detection_image(
    frame: np.ndarray,
    scores: np.ndarray | None,
    boxes: np.ndarray | None,
    gt_points: np.ndarray,
    path: Path,
    thr: float = 0.5,
    distance: float = 3.0,
    size: int = 256,
) -> dict[str, int]:
    """Write ``frame`` (contrast-stretched, enlarged to about ``size`` px) with the prediction's
    targets: hits green, false alarms red (:func:`mirstd.infer.predictor.overlay`), missed GT targets
    as yellow squares. A hit is a predicted target within ``distance`` px of a GT point."""
    import cv2

    from mirstd.infer.predictor import overlay
    from mirstd.utils.targets import prediction_targets

    frame = np.asarray(frame, np.float32)
    h, w = frame.shape
    s = max(1, int(round(size / max(h, w))))
    big = cv2.resize(_stretch(frame), (w * s, h * s), interpolation=cv2.INTER_NEAREST)
    t = prediction_targets(scores, boxes, thr)
    gt = np.asarray(gt_points, float).reshape(-1, 2)
    pred_of, gt_hit = match_targets(t, gt, distance)

    def scaled(rows: np.ndarray) -> np.ndarray:
        r = rows.copy()
        r[:, 0:2] = (r[:, 0:2] + 0.5) * s - 0.5  # pixel centres
        r[:, 2:6] *= s
        return r

    is_box = boxes is not None
    img = overlay(big, scaled(t[pred_of < 0]), is_box)  # false alarms (red)
    for x, y, x1, y1, x2, y2, *_ in scaled(t[pred_of >= 0]):
        if is_box:
            cv2.rectangle(img, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), COLOURS["hit"], 1)
        else:
            r = int(max(x2 - x1, y2 - y1, 6 * s) / 2 + 3)
            cv2.circle(img, (int(round(x)), int(round(y))), r, COLOURS["hit"], 1)
    for x, y in gt[~gt_hit]:
        cx, cy, r = int(round((x + 0.5) * s)), int(round((y + 0.5) * s)), 4 * s
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), COLOURS["miss"], 1)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"could not encode {path}")
    atomic_write_bytes(path, buf.tobytes())
    return {
        "hits": int((pred_of >= 0).sum()),
        "misses": int((~gt_hit).sum()),
        "false_alarms": int((pred_of < 0).sum()),
    }


# ------------------------------------------------------------------------------------ html
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1150px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0;cursor:pointer;user-select:none}
td:first-child,th:first-child{text-align:left}th.asc:after{content:" ▲"}th.desc:after{content:" ▼"}
.meta td{text-align:left}.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em}
.plots img{width:340px;margin:4px;border:1px solid #ddd}
.thumbs{display:block;overflow-x:auto}.thumbs td{text-align:center;vertical-align:top;font-size:.8em}.thumbs img{image-rendering:pixelated}
.key span{display:inline-block;width:.9em;height:.9em;border:2px solid;margin:0 .3em 0 1em;vertical-align:middle}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:.8em}
"""

JS = """
document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("th").forEach(function (th, i) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      t.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i].getAttribute("data-v"), y = b.cells[i].getAttribute("data-v");
        if (x === "" || x === null) return 1;
        if (y === "" || y === null) return -1;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def cell(value: Any, kind: str) -> tuple[str, str]:
    """(shown text, sort value) of one table cell; missing values show as an en dash."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–", ""
    if isinstance(value, str):
        return value, value
    scale, fmt = FORMATS.get(kind, (1.0, "{}"))
    return fmt.format(float(value) * scale), repr(float(value))


def table_html(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]], first: str = "method") -> str:
    head = f"<th>{_e(first)}</th>" + "".join(f"<th>{_e(h)}</th>" for _, h, _ in columns)
    body = []
    for r in rows:
        tds = [f'<td data-v="{_e(r.get(first, ""))}">{_e(r.get(first, ""))}</td>']
        for key, _, kind in columns:
            text, v = cell(r.get(key), kind)
            tds.append(f'<td data-v="{_e(v)}">{_e(text)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def write_report(
    path: str | Path,
    meta: dict[str, Any],
    sections: list[dict[str, Any]],
    thumbs: dict[str, list[tuple[str, Path, dict[str, Any]]]] | None = None,
    skipped: list[tuple[str, str]] | None = None,
    title: str | None = None,
) -> Path:
    """Write the report. ``meta``: protocol, budget, seed, env (versions, commit, CPU), data,
    recipes, wall_s; optional: wall_label (default "bench wall time"), warning (a highlighted line),
    notes; meta rows whose value is None are left out. ``sections``: ``{"id", "title", "columns":
    [(key, header, kind)], "rows": [{"method": label, key: value}], "plots": [png paths]}``, one per
    group (optional ``"first"``: the key and header of the first column, default "method").
    ``thumbs``: label -> [(caption, png path, counts)] on the same frames for every method."""
    path = Path(path)
    base = path.parent
    env = meta.get("env", {})
    budget = meta.get("budget", "")
    title = title or f"mirstd bench — protocol {meta.get('protocol')}, budget {budget}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if budget == "smoke":
        parts.append('<p class="warn">budget=smoke: a plumbing check (a few training steps on tiny data); '
                     "the numbers mean nothing.</p>")  # fmt: skip
    commit = env.get("commit")
    rows = [
        ("protocol", meta.get("protocol")),
        ("budget", meta.get("budget")),
        ("seed", meta.get("seed")),
        ("methods", ", ".join(meta.get("methods", []))),
        ("mirstd", env.get("mirstd")),
        ("git commit", f"{commit}{' (local changes)' if env.get('dirty') else ''}" if commit else "not a git checkout"),
        ("torch / numpy / python", f"{env.get('torch')} / {env.get('numpy')} / {env.get('python')}"),
        ("device", f"{env.get('device')} {env.get('cuda') or ''}".strip()),
        ("CPU", f"{env.get('cpu')} ({env.get('cores')} cores, {env.get('torch_threads')} torch threads, {env.get('isa')})"),
        ("written", env.get("time")),
        (meta.get("wall_label", "bench wall time"), f"{meta.get('wall_s', float('nan')):.0f} s"),
    ]  # fmt: skip
    if meta.get("warning"):
        parts.append(f'<p class="warn">{_e(meta["warning"])}</p>')
    trs = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v is not None)
    parts.append(f'<table class="meta">{trs}</table>')
    if meta.get("notes"):
        parts += [f"<p>{_e(n)}</p>" for n in meta["notes"]]
    if skipped:
        parts.append("<h2>Skipped methods</h2><ul>")
        parts += [f"<li>{_e(lab)}: {_e(why)}</li>" for lab, why in skipped]
        parts.append("</ul>")
    nav = " · ".join(f'<a href="#{_e(s["id"])}">{_e(s["title"])}</a>' for s in sections)
    if thumbs:
        nav += ' · <a href="#detections">detections</a>'
    parts.append(f"<p>{nav}</p>")
    for s in sections:
        parts.append(f'<h2 id="{_e(s["id"])}">{_e(s["title"])}</h2>')
        parts.append(table_html(s["columns"], s["rows"], s.get("first", "method")))
        if s.get("plots"):
            imgs = "".join(f'<img src="{_e(_rel(p, base))}" alt="{_e(Path(p).stem)}">' for p in s["plots"])
            parts.append(f'<div class="plots">{imgs}</div>')
    if thumbs:
        parts.append('<h2 id="detections">Detections on the same test frames</h2>')
        parts.append(
            '<p class="key">threshold 0.5:<span style="border-color:#00c800"></span>hit'
            '<span style="border-color:#ffdc00"></span>missed target'
            '<span style="border-color:#ff0000"></span>false alarm</p>'
        )
        caps = next(iter(thumbs.values()))
        head = "<th>method</th>" + "".join(f"<th>{_e(c)}</th>" for c, _, _ in caps)
        trs = []
        for lab, items in thumbs.items():
            tds = "".join(
                f'<td><img src="{_e(_rel(p, base))}" alt="{_e(lab)}: {_e(c)}"><br>'
                f"{n.get('hits', 0)} hit, {n.get('misses', 0)} missed, {n.get('false_alarms', 0)} false</td>"
                for c, p, n in items
            )
            trs.append(f"<tr><td>{_e(lab)}</td>{tds}</tr>")
        parts.append(
            f'<table class="thumbs"><thead><tr>{head}</tr></thead><tbody>{"".join(trs)}</tbody></table>'
        )
    parts.append("<h2>Protocol details</h2>")
    parts.append("<details><summary>data</summary><pre>" + _e(json.dumps(meta.get("data"), indent=1, default=str))
                 + "</pre></details>")  # fmt: skip
    if meta.get("recipes"):
        parts.append("<details><summary>training recipes</summary><pre>"
                     + _e(json.dumps(meta["recipes"], indent=1, default=str)) + "</pre></details>")  # fmt: skip
    parts.append("<details><summary>environment</summary><pre>" + _e(json.dumps(env, indent=1, default=str))
                 + "</pre></details>")  # fmt: skip
    parts.append(f"<script>{JS}</script></body></html>")
    return atomic_write_text(path, "\n".join(parts) + "\n")
