"""``mirstd predict``, ``mirstd val`` and ``mirstd eval``: keys from the ``predict`` / ``val`` / ``eval``
sections of ``configs/default.yaml``, validated by :func:`mirstd.utils.config.task_config`."""

from __future__ import annotations

import json

from mirstd.infer.evaluate import evaluate_saved, flat_numbers, validate
from mirstd.infer.predict import predict
from mirstd.metrics.report import markdown_table
from mirstd.utils.config import ConfigError, parse_overrides, task_config

PREDICT_HELP = """usage: mirstd predict (weights=PATH | model=NAME) source=PATH [out=DIR] [conf=0.5] [key=value ...]

source: a dataset (any supported layout, or synth:PRESET; split=all), a folder of frames of one
sequence (natural order: 1, 2, ..., 10), or a video (.mp4/.avi/.mov/.mkv; pip install 'mirstd[video]').
Writes to out (default runs/<task>/predict, predict2, ...): scores/<seq>/<frame>.png (16-bit,
prob x 65535; save_scores=npy for exact floats), overlay/<seq>/<frame>.png, predictions.json (COCO
results, image_id "<seq>/<frame>") and predictions.csv. `mirstd eval pred=OUT data=...` scores it.
save_video=true adds overlay/<seq>/overlay.mp4 (targets, scores, frame index; written as frames come).
weights=FILE.onnx runs a `mirstd export` through onnxruntime. cache=true (default; stream=true is the same) encodes each frame
once for models that offer it (pstfnet, dtum; same outputs), see mirstd.infer.stream.
dtype=bfloat16 (bf16) runs the network under torch.autocast bf16 (score maps within ~1e-2 of float32,
see benchmarks/results/bf16.json); box decoding and NMS stay float32. On a CPU without native bf16
(no avx512_bf16 / amx_bf16 flag in /proc/cpuinfo) bf16 is emulated, slower than float32: predict
then warns and runs float32. Videos and frame folders are read one frame at a time and all outputs
are written as frames come, so memory does not grow with the video length.
Keys: see the predict: section of configs/default.yaml."""

VAL_HELP = """usage: mirstd val weights=PATH [data=PATH] [split=val|test|...] [out=DIR] [key=value ...]
       mirstd val model=tophat data=PATH [model_args.size=7] [split=test]   (parameter-free methods)

Scores a checkpoint; writes metrics_<split>.json / .md (and plots) to the checkpoint's run folder (or
out=). Protocol keys as for `mirstd eval` (protocols=, thr=, scr_thresholds=, dnanet_compat=, ...);
clip keys frames=, pad=, key_stride=, mask_from=."""

EVAL_HELP = """usage: mirstd eval pred=DIR|FILE.json data=PATH [split=test] [out=DIR] [key=value ...]

Scores saved predictions: a `mirstd predict` output folder, <pred>/<seq>/<frame_id>.png|.npy score
maps, or a COCO results json (image_id "<seq>/<frame_id>" or 1-based frame number over the split).
Writes metrics_<split>.json / .md and plots to out (default <pred>_eval)."""


def _help(argv: list[str], text: str) -> bool:
    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(text)
        return True
    return False


def predict_main(argv: list[str]) -> int:
    if _help(argv, PREDICT_HELP):
        return 0
    cfg = task_config("predict", parse_overrides(argv))
    if not cfg.get("source"):
        raise ConfigError("mirstd predict needs source=PATH (a dataset, a folder of frames or a video)")
    out = predict(**cfg)
    print(describe_output(out))
    return 0


def describe_output(out) -> str:  # noqa: ANN001
    """What a predict run wrote, for the command line: the folder, its files, the overlay videos."""
    from pathlib import Path

    out = Path(out)
    lines = [f"predictions saved to {out}"]
    csv_path = out / "predictions.csv"
    if csv_path.is_file():
        with open(csv_path, encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
        lines.append(f"  {csv_path} ({rows} target rows)")
    if (out / "predictions.json").is_file():
        lines.append(f"  {out / 'predictions.json'} (COCO results)")
    for sub, what in (("scores", "score maps"), ("overlay", "overlay frames")):
        d = out / sub
        if d.is_dir():
            n = sum(1 for p in d.rglob("*") if p.suffix in (".png", ".npy"))
            if n:
                lines.append(f"  {d}/ ({n} {what})")
    lines += [f"  {v}" for v in sorted((out / "overlay").glob("*/overlay.mp4"))]
    return "\n".join(lines)


def val_main(argv: list[str]) -> int:
    if _help(argv, VAL_HELP):
        return 0
    cfg = task_config("val", parse_overrides(argv))
    res = validate(**cfg)
    print(json.dumps(flat_numbers(res), indent=1))
    return 0


def eval_main(argv: list[str]) -> int:
    if _help(argv, EVAL_HELP):
        return 0
    cfg = task_config("eval", parse_overrides(argv))
    for req in ("pred", "data"):
        if cfg.get(req) is None:
            raise ConfigError(f"mirstd eval needs {req}=...")
    res = evaluate_saved(**cfg)
    print(markdown_table(res, f"{cfg['pred']} on {cfg['data']}:{cfg['split']}"))
    return 0
