"""Zero-shot score of the authors' ResUNet-DTUM weights on airground-real (point protocol).

    .venv/bin/python tools/golden/dtum_airground_zeroshot.py CKPT [--data /work/shared/data/airground-real]

``CKPT`` = the DTUM repository's ``results/ResUNet_DTUM_SpatialDeepSupFalse_fullySup/
ResUNet_DTUM_para.pth`` (trained on NUDT-MIRSDT; imported with ``load_reference("dtum", CKPT)``).
Every frame (``--stride k``: every k-th frame) of every sequence is scored with its 5-frame history
(frames before the first repeat the first, as the DTUM loaders clamp the history); the per-frame ResUNet features are
computed once per frame and reused (eval mode: identical to running the model per clip).
Evaluation: ``mirstd.metrics.Evaluator(protocols=["point"])`` at p > 0.5, centre distance < 3 px.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from mirstd.data.image import read_frame  # noqa: E402
from mirstd.metrics import Evaluator  # noqa: E402
from mirstd.models.weights import load_reference  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/airground-real"))
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--stride", type=int, default=1, help="score every k-th frame (CPU time)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model, rep = load_reference("dtum", args.ckpt)
    print(rep.summary())
    ev = Evaluator(protocols=["point"], threshold=args.threshold)
    t0 = time.time()
    for seq_dir in sorted((args.data / "data").iterdir()):
        frames = sorted(seq_dir.glob("*.png"))
        ev_seq = Evaluator(protocols=["point"], threshold=args.threshold)
        pts = np.loadtxt(args.data / "anno" / f"{seq_dir.name}.txt", ndmin=2)[:, :2] - 1.0  # 1-based
        clip = torch.from_numpy(np.stack([read_frame(f)[0] for f in frames]) / 255.0).float()
        with torch.no_grad():
            x = model.norm(clip[None, None].repeat(1, 3, 1, 1, 1))
            feats = torch.stack([model.backbone.forward_frame(x[:, :, t]) for t in range(x.shape[2])], 2)
            for t in range(args.stride - 1, len(frames), args.stride):
                idx = [max(0, t - k) for k in range(model.num_frames - 1, -1, -1)]
                prob = torch.sigmoid(model.dtum(feats[:, :, idx]))[0, 0].numpy().astype(np.float64)
                for e in (ev, ev_seq):
                    e.update(prob, gt_points=pts[t : t + 1], sequence=seq_dir.name, frame=t)
        r = {k: v for k, v in ev_seq.compute().items() if k != "meta"}
        print(f"{seq_dir.name}: {len(frames)} frames ({time.time() - t0:.0f} s) {r}", flush=True)
    res = ev.compute()
    keep = {k: v for k, v in res.items() if k != "meta"}
    print(json.dumps(keep, indent=1, default=str))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
