"""Training loop on stand-ins: loss falls, run folder, checkpoints, exact resume after SIGKILL, DDP."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import standins
import torch
import yaml

from mirstd.engine import train
from mirstd.engine.checkpoint import load_checkpoint

HERE = Path(__file__).parent
PY = sys.executable
TINY = {"model": standins.TINY, "model_args": {"num_frames": 3}, "progress": False, "milestones": []}


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_falls_and_run_folder(tmp_path, stand_in_evaluator, seed):
    torch.set_num_threads(1)
    run = train(
        train_data=standins.ClipSamples(32),
        val_data=standins.ClipSamples(8, augment=False),
        **{**TINY, "seed": seed},
        steps=40,
        batch=8,
        val_every=10,
        lr=1e-2,
        project=str(tmp_path),
    )
    assert run == tmp_path / "segment" / "exp"
    for f in ("weights/best.pt", "weights/last.pt", "args.yaml", "env.yaml", "results.csv", "results.png"):
        assert (run / f).is_file(), f
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40]
    losses = [float(r["train/loss"]) for r in rows]
    assert losses[-1] < 0.5 * losses[0], losses
    assert {"metrics/iou", "lr", "time", "epoch"} <= set(rows[0])
    env = yaml.safe_load(open(run / "env.yaml"))
    assert env["torch"] == str(torch.__version__) and env["mirstd"] == "0.1.0"
    ck = load_checkpoint(run / "weights" / "best.pt")  # weights_only=True
    best = max(float(r["metrics/iou"]) for r in rows)
    assert ck["best_metric"] == pytest.approx(best) and ck["metric"] == "iou"
    for key in (
        "model",
        "ema",
        "optimizer",
        "scheduler",
        "step",
        "epoch",
        "rng",
        "config",
        "model_name",
        "model_args",
        "best_metric",
        "mirstd_version",
    ):
        assert key in ck
    assert load_checkpoint(run / "weights" / "last.pt")["step"] == 40
    # a second run auto-increments the name
    run2 = train(
        train_data=standins.ClipSamples(8),
        **TINY,
        steps=1,
        batch=8,
        val_every=0,
        project=str(tmp_path),
        plots=False,
    )
    assert run2.name == "exp2"


def test_test_split_refused_for_selection(tmp_path):
    with pytest.raises(
        ValueError, match="val_split='test': the test split must not be used for model selection"
    ):
        train(
            train_data=standins.ClipSamples(8),
            **TINY,
            steps=1,
            batch=8,
            val_split="test",
            project=str(tmp_path),
        )


def test_ema_and_epochs(tmp_path):
    run = train(
        train_data=standins.ClipSamples(16),
        **TINY,
        epochs=2,
        batch=8,
        val_every=0,
        ema=True,
        ema_tau=1.0,
        project=str(tmp_path),
        plots=False,
    )
    ck = load_checkpoint(run / "weights" / "last.pt")
    assert ck["step"] == 4 and ck["epoch"] == 2 and ck["ema"]["updates"] == 4


def test_pretrained_starts_from_another_runs_weights(tmp_path, capsys):
    common = {**TINY, "batch": 8, "val_every": 0, "plots": False, "project": str(tmp_path)}
    first = train(train_data=standins.ClipSamples(16), **common, steps=4, lr=1e-2, name="a")
    source = load_checkpoint(first / "weights" / "last.pt")["model"]
    # lr=0 and one step: the second run's weights are the ones it started from
    second = train(
        train_data=standins.ClipSamples(16),
        **common,
        steps=1,
        lr=0.0,
        name="b",
        pretrained=str(first / "weights" / "last.pt"),
    )
    out = capsys.readouterr().out
    assert (
        f"pretrained={first / 'weights' / 'last.pt'}: {len(source)} of the model's {len(source)} tensors copied"
        in out
    )
    started = load_checkpoint(second / "weights" / "last.pt")["model"]
    fresh = train(train_data=standins.ClipSamples(16), **common, steps=1, lr=0.0, name="c")
    init = load_checkpoint(fresh / "weights" / "last.pt")["model"]
    weights = [k for k, v in source.items() if v.is_floating_point() and "running" not in k]
    assert weights and all(torch.equal(started[k], source[k]) for k in weights)
    assert not all(torch.equal(init[k], source[k]) for k in weights)  # the copy is what set them


def test_pretrained_unknown_refused_before_the_run_folder(tmp_path):
    with pytest.raises(
        ValueError, match=r"pretrained='nope\.pt': no such checkpoint file and no shipped weights"
    ):
        train(
            train_data=standins.ClipSamples(8),
            **TINY,
            steps=1,
            batch=8,
            pretrained="nope.pt",
            project=str(tmp_path),
        )
    assert not (tmp_path / "segment").exists()


def _final_state(run: Path) -> dict:
    return load_checkpoint(run / "weights" / "last.pt")


def test_sigkill_resume_matches_straight_run(tmp_path):
    """A run killed with SIGKILL after a checkpoint resumes to identical final weights (CPU, deterministic)."""
    common = [f"project={tmp_path}", "steps=24", "batch=4", "save_every=4"]
    subprocess.run(
        [PY, str(HERE / "run_standin.py"), *common, "name=straight"], check=True, env=_env(), timeout=120
    )
    # slow samples (20 ms) so the kill lands between checkpoints
    p = subprocess.Popen([PY, str(HERE / "run_standin.py"), *common, "name=killed", "delay=0.02"], env=_env())
    last = tmp_path / "segment" / "killed" / "weights" / "last.pt"
    t0 = time.time()
    while not last.exists() and time.time() - t0 < 100 and p.poll() is None:
        time.sleep(0.01)
    time.sleep(0.15)  # let it get past the checkpoint, mid-way to the next one
    assert p.poll() is None, "run finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    killed_at = load_checkpoint(last)["step"]
    assert 4 <= killed_at < 24
    subprocess.run(
        [PY, str(HERE / "run_standin.py"), f"project={tmp_path}", "name=killed", "resume=true"],
        check=True,
        env=_env(),
        timeout=120,
    )
    a, b = _final_state(tmp_path / "segment" / "straight"), _final_state(tmp_path / "segment" / "killed")
    assert a["step"] == b["step"] == 24
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)


def test_torchrun_two_processes_match_single(tmp_path):
    """torchrun --nproc_per_node=2 (gloo, CPU) over 20 steps equals one process with the same global batch."""
    common = ["steps=20", "batch=8", f"project={tmp_path}", "samples=48"]
    subprocess.run(
        [PY, str(HERE / "run_standin.py"), *common, "name=single"], check=True, env=_env(), timeout=120
    )
    torchrun = [PY, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    subprocess.run(
        [*torchrun, str(HERE / "run_standin.py"), *common, "name=ddp"], check=True, env=_env(), timeout=150
    )
    a, b = _final_state(tmp_path / "segment" / "single"), _final_state(tmp_path / "segment" / "ddp")
    assert b["step"] == 20 and b["config"]["batch"] == 8
    assert yaml.safe_load(open(tmp_path / "segment" / "ddp" / "env.yaml"))["world_size"] == 2
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-4, atol=1e-5)
    # the weights moved: the comparison is not trivially between two initialisations
    assert not torch.equal(a["model"]["head.weight"], load_init()["head.weight"])


def load_init() -> dict:
    torch.manual_seed(3)
    return standins.TinySeg(num_frames=3).state_dict()


def test_detect_model_uses_its_own_loss(tmp_path, monkeypatch):
    import mirstd.engine.trainer as v

    monkeypatch.setattr(v, "make_evaluator", standins.BoxEvaluator)
    run = train(
        train_data=standins.ClipSamples(16),
        val_data=standins.ClipSamples(4),
        model="test_tiny_det",
        model_args={"num_frames": 3},
        steps=4,
        batch=8,
        val_every=2,
        lr=1e-2,
        project=str(tmp_path),
        progress=False,
        plots=False,
        milestones=[],
    )
    assert run == tmp_path / "detect" / "exp"
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert {"train/loss", "train/obj", "train/iou", "metrics/ap50"} <= set(rows[0])
    # total = 2 * obj, as the model's loss defines it
    assert float(rows[0]["train/loss"]) == pytest.approx(2 * float(rows[0]["train/obj"]), rel=1e-5)
    assert load_checkpoint(run / "weights" / "best.pt")["metric"] == "ap50"
