"""``mirstd predict weights=... source=PATH [out=DIR] [conf=0.5] [split=all] [save_frames=true]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirstd.utils.config import parse_overrides

HELP = """usage: mirstd predict weights=PATH source=PATH [out=DIR] [conf=0.5] [split=all] [device=cpu]

source: a dataset (any supported layout, or synth:PRESET), a folder of frames of one sequence, or a
video file (.mp4/.avi; needs the optional 'av' package: pip install 'mirstd[video]').
Writes to out (default runs/<task>/predict, predict2, ...): <seq>/prob/*.png (segment probability
x255), <seq>/overlay/*.png (targets circled / boxes drawn), predictions.csv with columns
sequence, frame, x, y, x1, y1, x2, y2, score (edge boxes, 0-based points)."""

_KEYS = {"weights", "source", "out", "conf", "split", "device", "save_frames", "frames", "pad", "project"}


def _sources(source: str, split: str) -> list[tuple[str, list[str], Any]]:
    """``(sequence name, frame stems, iterable of frames in [0, 1])`` per sequence of ``source``."""
    from mirstd.infer.predictor import IMAGE_EXTS, VIDEO_EXTS, read_frame_folder, read_video

    p = Path(source)
    if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
        name, frames = read_video(p)
        return [(name, [s for _, s in frames], (f for f, _ in frames))]
    if (
        p.is_dir()
        and any(c.suffix.lower() in IMAGE_EXTS for c in p.iterdir())
        and not (p / "dataset.yaml").exists()
    ):
        name, frames = read_frame_folder(p)
        return [(name, [s for _, s in frames], (f for f, _ in frames))]
    if not source.startswith("synth:") and not p.exists():
        raise FileNotFoundError(f"source {source} does not exist")
    from mirstd.data import load_dataset  # lazy: mirstd.data readers

    ds = load_dataset(source)
    out = []
    for seq in ds.split(split):
        scale = float(2**seq.bit_depth - 1)
        stems = [str(f).replace("/", "_").replace("\\", "_") for f in seq.frame_ids]
        out.append((seq.name, stems, (seq.load_frame(i) / scale for i in range(len(seq)))))
    return out


def predict(
    weights: str | Path,
    source: str,
    out: str | Path | None = None,
    conf: float = 0.5,
    split: str = "all",
    device: str | None = None,
    save_frames: bool = True,
    **kw: Any,
) -> Path:
    """Run a checkpoint over ``source``; returns the output folder (see ``HELP``)."""
    from mirstd.engine.rundir import increment_dir
    from mirstd.infer.predictor import Predictor, rows_for, write_csv, write_frame_outputs

    pred = Predictor(weights, device=device, conf=conf, frames=kw.get("frames"), pad=kw.get("pad"))
    out_dir = (
        Path(out)
        if out
        else increment_dir(Path(kw.get("project") or "runs") / pred.task, None, base="predict")
    )
    rows: list[list[Any]] = []
    for name, stems, frames in _sources(str(source), split):
        results = []
        for stem, frame in zip(stems, frames):
            r = pred.step(frame) if results else (pred.reset() or pred.step(frame))
            if save_frames:
                write_frame_outputs(out_dir, name, stem, frame, r, pred.task)
            results.append({"targets": r["targets"]})
        rows += rows_for(name, stems, results)
    write_csv(out_dir / "predictions.csv", rows)
    return out_dir


def predict_main(argv: list[str]) -> int:
    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(HELP)
        return 0
    args = parse_overrides(argv)
    unknown = sorted(set(args) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; valid: {', '.join(sorted(_KEYS))}")
    for k in ("weights", "source"):
        if k not in args:
            raise ValueError(f"mirstd predict needs {k}=PATH")
    out = predict(**args)
    print(f"predictions saved to {out}")
    return 0
