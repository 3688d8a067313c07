"""Real-data protocol (docs/real-data.md): score methods on the real test splits; ship trained weights.

    python benchmarks/real_data.py eval  [--models pstfnet resunet tophat] [--weights NAME=CKPT ...]
                                         [--drone-stride 10] [--out benchmarks/results/real_data.json]
                                         [--merge] [--cards]   # --cards: scores -> shipped model cards
                                         [--on val]   # the val splits instead (real_val.json): choose runs
    python benchmarks/real_data.py ship  RUN_DIR NAME [--train-minutes M]   # best.pt -> mirstd/weights/NAME.pt

Test splits (``mirstd.data.protocols``): ``airground-real`` test sequences (every frame; point protocol,
d < 3 px) and ``drone-ir`` ``test_distant`` videos (every ``--drone-stride``-th key frame, each with its
full clip history; COCO AP50 and point-in-box Pd, box enlarged by 2 px). For every method: Pd at
0.05 / 0.1 / 0.2 / 0.5 / 1 false alarms per frame (the Pd-FA curve over score thresholds, the
``point_curve`` protocol), Pd and false alarms per frame at the method's own threshold (0.5), AP50.
A name without ``--weights`` uses the package's shipped weights (trainable) or runs as is (classical).
Results (with CPU, ISA and versions) go to one JSON; nothing here selects anything on a test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import mirstd
from mirstd.infer.evaluate import validate
from mirstd.models.checkpoint import load_checkpoint
from mirstd.models.pretrained import WEIGHTS_DIR, pretrained_path, to_shipped
from mirstd.report.bench import cpu_info
from mirstd.utils.io import write_json

TESTS = {
    "airground_test": {"data": "real:airground", "split": "test", "key_stride": 1},
    "drone_test_distant": {"data": "real:drone-ir", "split": "test_distant", "key_stride": 10},
}
#: ``--on val``: the same protocol on the validation splits, to choose between runs (whole val
#: sequences; the trainer validates on ``val_frames`` key frames only, so airground's one val
#: sequence was 8 of its 168 frames there).
VALS = {
    "airground_val": {"data": "real:airground", "split": "val", "key_stride": 1},
    "drone_val_distant": {"data": "real:drone-ir", "split": "val_distant", "key_stride": 10},
}
KEYS = (
    "pd@fapf0.05[point_curve]", "pd@fapf0.1[point_curve]", "pd@fapf0.2[point_curve]",
    "pd@fapf0.5[point_curve]", "pd@fapf1[point_curve]", "pd[point]", "fa_per_frame[point]", "ap50",
    "frames",
)  # fmt: skip


def _cpu() -> dict[str, Any]:
    """The bench's CPU record (name, ISA, cores, threads) plus torch's kernel set."""
    return {**cpu_info(), "torch_capability": torch.backends.cpu.get_cpu_capability()}


def score(
    name: str, weights: str | None, stride: int | None = None, splits: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every test split's figures for one method (``splits``: :data:`VALS` for the val splits)."""
    if weights is None and pretrained_path(name) is not None:
        weights = str(pretrained_path(name))
    out: dict[str, Any] = {"weights": weights}
    for test, spec in (splits or TESTS).items():
        spec = dict(spec)
        if stride and test.startswith("drone"):
            spec["key_stride"] = stride
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            kw = {"weights": weights} if weights else {"model": name}
            res = validate(**kw, data=spec.pop("data"), split=spec.pop("split"), out=tmp, plots=False,
                           mask_from="none", **spec)  # fmt: skip
        out[test] = {k: res.get(k) for k in KEYS if k in res}
        ap = next((v for k, v in res.items() if k.startswith("ap50") and isinstance(v, float)), None)
        out[test]["ap50"] = ap
        out[test]["seconds"] = round(time.time() - t0, 1)
        print(f"{name:<10} {test:<20} " + "  ".join(f"{k}={v:.3f}" for k, v in out[test].items()
                                                    if isinstance(v, float)), flush=True)  # fmt: skip
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    given = dict(w.split("=", 1) for w in args.weights)
    splits = VALS if args.on == "val" else TESTS
    if args.on == "val" and args.cards:
        raise SystemExit("--cards writes test scores; it does not go with --on val")
    names = list(dict.fromkeys([*args.models, *given]))
    results = {"env": {**_cpu(), "mirstd": mirstd.__version__, "torch": torch.__version__,
                       "python": sys.version.split()[0]}, "tests": splits, "methods": {}}  # fmt: skip
    for n in names:  # each method keeps the machine it was scored on (a --merge mixes runs)
        results["methods"][n] = {**score(n, given.get(n), args.drone_stride, splits), "env": results["env"]}
    out = Path(args.out or f"benchmarks/results/real_{'val' if args.on == 'val' else 'data'}.json")
    old = json.loads(out.read_text()) if out.is_file() and args.merge else {}
    if old:
        old.setdefault("methods", {}).update(results["methods"])
        old["env"] = results["env"]
        results = old
    write_json(out, results)
    print(f"wrote {out}")
    if args.cards:
        for n in names:
            if n not in given and pretrained_path(n) is not None:
                _card_scores(n, results["methods"][n], out)
    return 0


def _card_scores(name: str, scores: dict[str, Any], source: Path) -> None:
    """Record a shipped model's test-split scores in its model card (``mirstd/weights/NAME.json``)."""
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.is_file():
        print(f"{name}: no model card {path}; its test scores are only in {source}", file=sys.stderr)
        return
    card = json.loads(path.read_text())
    card["test_scores"] = {k: v for k, v in scores.items() if k in TESTS}
    card["test_scores_from"] = f"{source.as_posix()} (benchmarks/real_data.py eval)"
    write_json(path, card)
    print(f"wrote the test scores into {path}")


def _validations(rows: list[str]) -> list[dict[str, Any]]:
    """The val-split figures of every validation in a run's results.csv (Pd at FA/frame budgets, AP50)."""
    if len(rows) < 2:
        return []
    head = rows[0].split(",")
    out = []
    for r in rows[1:]:
        vals = dict(zip(head, r.split(",")))
        keep = {k.split("/", 1)[1]: float(v) for k, v in vals.items()
                if k.startswith(("metrics/pd@fapf", "metrics/ap50")) and v not in ("", "nan")}  # fmt: skip
        out.append({"step": int(float(vals["step"])), "train_loss": float(vals["train/loss"]), **keep})
    return out


def cmd_ship(args: argparse.Namespace) -> int:
    run = Path(args.run)
    ck = load_checkpoint(run / "weights" / f"{args.checkpoint}.pt")
    cfg = ck.get("config") or {}
    rows = (run / "results.csv").read_text().splitlines() if (run / "results.csv").is_file() else []
    wall = None
    if len(rows) > 1:  # the trainer's results.csv: a "time" column of seconds since the start
        head, last = rows[0].split(","), rows[-1].split(",")
        if "time" in head:
            wall = round(float(last[head.index("time")]) / 60, 1)
    card = {
        "name": args.name,
        "model": ck["model_name"],
        "model_args": ck.get("model_args") or {},
        "trained_on": {
            "data": cfg.get("data"),
            "train_split": cfg.get("train_split"),
            "val_split": cfg.get("val_split"),
            "selected_by": cfg.get("metric"),
        },  # fmt: skip
        "recipe": {
            k: cfg.get(k)
            for k in (
                "imgsz",
                "batch",
                "steps",
                "lr",
                "optimizer",
                "scheduler",
                "loss",
                "loss_args",
                "mask_from",
                "mask_radius",
                "point_mask",
                "balance",
                "intensity_jitter",
                "target_crop_prob",
                "weight_decay",
                "warmup_steps",
                "seed",
                "pretrained",
            )
        },
        "checkpoint": f"{args.checkpoint}.pt (step {int(ck.get('step', 0))})",
        "why_this_checkpoint": args.why,
        "validations": _validations(rows),
        "steps_done": int(ck.get("step", 0)),
        "best_val": ck.get("best_metric"),
        "train_wall_minutes": args.train_minutes if args.train_minutes is not None else wall,
        "train_machine": _cpu(),
        "results_rows": len(rows) - 1 if rows else 0,
        "mirstd": mirstd.__version__,
        "storage": "fp16",
    }
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    dst = WEIGHTS_DIR / f"{args.name}.pt"
    tmp = dst.with_suffix(".pt.tmp")
    torch.save(to_shipped(ck, card), tmp)
    tmp.replace(dst)
    write_json(WEIGHTS_DIR / f"{args.name}.json", card)
    print(f"wrote {dst} ({dst.stat().st_size / 2**20:.2f} MiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--models", nargs="*", default=["pstfnet", "resunet", "tophat"])
    e.add_argument("--weights", nargs="*", default=[], help="NAME=CHECKPOINT (instead of shipped weights)")
    e.add_argument("--drone-stride", type=int, default=None)
    e.add_argument("--on", choices=("test", "val"), default="test", help="the test splits, or the val splits")
    e.add_argument(
        "--out", default=None, help="default: benchmarks/results/real_data.json (--on val: real_val.json)"
    )
    e.add_argument("--merge", action="store_true", help="update the methods of an existing results file")
    e.add_argument(
        "--cards", action="store_true", help="write shipped models' test scores into their model cards"
    )
    s = sub.add_parser("ship")
    s.add_argument("run")
    s.add_argument("name")
    s.add_argument("--train-minutes", type=float, default=None)
    s.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="best.pt (chosen on val by the run's metric) or last.pt (end of the schedule)",
    )
    s.add_argument("--why", default="best.pt: the run's validation metric", help="recorded in the model card")
    args = ap.parse_args(argv)
    return cmd_eval(args) if args.cmd == "eval" else cmd_ship(args)


if __name__ == "__main__":
    raise SystemExit(main())
