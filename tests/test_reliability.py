"""Issue 14: nothing lost, nothing escapes, every bad input gets one clear line.

Every case runs the CLI front end (``mirstd.cli.main``) on fixtures built here and checks: exit code 1,
ONE line on stderr naming the key or file, no traceback, and (hashing the tree) that nothing outside
``out=`` or in a pre-existing folder changed. The kill -9 cases run ``python -m mirstd`` in a
subprocess and SIGKILL it mid-way.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from mirstd.cli import main
from mirstd.utils.io import increment_dir

PY = sys.executable
ENGINE_TESTS = Path(__file__).parent / "engine"


# ------------------------------------------------------------------------------------------ helpers
def tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and '<dir>' for every folder) under ``root``."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "<dir>"
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def cli(capsys, *argv) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def one_line(rc: int, err: str, *needles: str) -> str:
    """Exit code 1, one line on stderr containing every needle, no traceback."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 1, (rc, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def unchanged(root: Path):
    """Context: assert the tree under ``root`` is byte-identical afterwards."""

    class _Ctx:
        def __enter__(self):
            self.before = tree(root)
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                assert tree(root) == self.before, "files changed"
            return False

    return _Ctx()


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    """A tiny native dataset (3 sequences of 4 frames, 32x32, masks)."""
    from mirstd.synth import generate

    root = tmp_path_factory.mktemp("native") / "ds"
    return generate(
        "smoke", root, progress=False, frames=4, size=32, splits={"train": 1, "val": 1, "test": 1}
    )


@pytest.fixture
def ws(tmp_path, native, monkeypatch) -> Path:
    """A work folder holding a copy of the native dataset at ``ws/ds``; cwd is ``ws``."""
    shutil.copytree(native, tmp_path / "ds")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_frames(d: Path, n: int, size=(16, 16), dtype=np.uint8, names=None) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        name = names[i] if names else f"{i + 1:04d}.png"
        a = rng.integers(0, 200, size).astype(dtype)
        cv2.imwrite(str(d / name), a)
        out.append(d / name)
    return out


def tensoristd(root: Path, lines: list[str], n: int = 4) -> Path:
    write_frames(root / "data" / "s1", n)
    (root / "anno").mkdir(parents=True, exist_ok=True)
    (root / "anno" / "s1.txt").write_text("\n".join(lines) + "\n")
    return root


# ------------------------------------------------------------------------- path traversal (escape)
def test_sequence_name_with_dotdot_is_refused_by_reader_check_and_predict(ws, capsys):
    idx = ws / "ds" / "dataset.yaml"
    doc = yaml.safe_load(idx.read_text())
    doc["sequences"] = ["../../escape_target/seq"]
    doc["splits"] = []
    idx.write_text(yaml.safe_dump(doc))
    (ws / "escape_target" / "seq").mkdir(parents=True)
    with unchanged(ws):
        one_line(*cli(capsys, "predict", "model=tophat", "source=ds", "out=o", "progress=false"), "dataset.yaml",
                 "sequence name")  # fmt: skip
        rc = main(["data", "check", "ds"])
        out = capsys.readouterr().out
        assert rc == 1 and "../../escape_target/seq" in out and "0 error" not in out


def test_absolute_sequence_name_is_refused(ws, capsys):
    idx = ws / "ds" / "dataset.yaml"
    doc = yaml.safe_load(idx.read_text())
    doc["sequences"], doc["splits"] = [str(ws / "elsewhere")], []
    idx.write_text(yaml.safe_dump(doc))
    with unchanged(ws):
        rc = main(["data", "check", "ds"])
        assert rc == 1 and "not a plain name" in capsys.readouterr().out


def test_predict_writer_never_writes_outside_out(tmp_path):
    from mirstd.infer.predict import PredictionWriter

    w = PredictionWriter(tmp_path / "out")
    r = {"scores": np.zeros((4, 4), np.float32), "boxes": None, "targets": np.zeros((0, 8))}
    with unchanged(tmp_path):
        with pytest.raises(ValueError, match="outside out="):
            w.add("../../x", "00000", np.zeros((4, 4), np.float32), r)
        with pytest.raises(ValueError, match="outside out="):
            w.add("seq", "../../../y", np.zeros((4, 4), np.float32), r)


# ------------------------------------------------------------------------------------ overwriting
def test_synth_refuses_non_empty_out_and_exist_ok_replaces_an_earlier_dataset_whole(ws, capsys):
    user = ws / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with unchanged(ws):
        one_line(*cli(capsys, "synth", "preset=smoke", f"out={user}", "frames=2", "size=32"), "out=", "mine",
                 "exist_ok=true")  # fmt: skip
        # exist_ok only replaces an earlier mirstd dataset, never a user's folder
        one_line(*cli(capsys, "synth", "preset=smoke", f"out={user}", "exist_ok=true", "frames=2", "size=32"),
                 "not an earlier mirstd output")  # fmt: skip
    stale = ws / "ds" / "image" / "seq0000" / "00099.png"
    shutil.copy(ws / "ds" / "image" / "seq0000" / "00000.png", stale)
    rc, _ = cli(capsys, "synth", "preset=smoke", "out=ds", "exist_ok=true", "frames=2", "size=32",
                "splits={train: 1, val: 1, test: 1}")  # fmt: skip
    assert rc == 0 and not stale.exists()  # replaced whole: no stale frames beside the new ones
    assert sorted(p.name for p in (ws / "ds" / "image" / "seq0000").iterdir()) == ["00000.png", "00001.png"]
    assert not [p for p in ws.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert main(["data", "check", "ds"]) == 0


def test_convert_refuses_non_empty_dst_another_dataset_and_its_own_source(ws, capsys):
    other = ws / "other"
    shutil.copytree(ws / "ds", other)
    label = ws / "ds" / "annotations" / "seq0000.json"
    (ws / "x.json").write_text("{}")
    with unchanged(ws):
        one_line(*cli(capsys, "data", "convert", "ds", "other"), "DST=", "other", "exist_ok=true")
        one_line(*cli(capsys, "data", "convert", "ds", str(label), "format=coco"), "inside the source")
        one_line(*cli(capsys, "data", "convert", "ds", "ds/sub"), "inside the source")
        one_line(*cli(capsys, "data", "convert", "ds", "ds"), "inside the source")
        one_line(*cli(capsys, "data", "convert", "ds", "."), "holds the source")
        one_line(*cli(capsys, "data", "convert", "ds", "x.json", "format=coco"), "x.json", "exist_ok=true")
    assert main(["data", "convert", "ds", "new"]) == 0
    assert tree(ws / "new").keys() >= {"dataset.yaml", "annotations/seq0000.json"}


def test_predict_refuses_non_empty_out_and_exist_ok_leaves_no_stale_frames(ws, capsys):
    user = ws / "o"
    user.mkdir()
    (user / "keep.txt").write_text("x")
    with unchanged(ws):
        one_line(*cli(capsys, "predict", "model=tophat", "source=ds", "out=o", "progress=false"), "out=o")
    assert main(["predict", "model=tophat", "source=ds", "out=p", "progress=false"]) == 0
    stale = ws / "p" / "scores" / "seq0000" / "stale.png"
    stale.write_bytes(b"old")
    assert main(["predict", "model=tophat", "source=ds", "out=p", "exist_ok=true", "progress=false"]) == 0
    assert not stale.exists() and (ws / "p" / "predictions.json").is_file()
    capsys.readouterr()


def test_eval_and_val_refuse_a_non_empty_out(ws, capsys):
    assert main(["predict", "model=tophat", "source=ds", "out=p", "progress=false", "split=test"]) == 0
    (ws / "busy").mkdir()
    (ws / "busy" / "f.txt").write_text("x")
    capsys.readouterr()
    with unchanged(ws):
        one_line(*cli(capsys, "eval", "pred=p", "data=ds", "out=busy", "progress=false"), "out=busy")
        one_line(*cli(capsys, "val", "model=tophat", "data=ds", "out=busy", "progress=false"), "out=busy")


# ------------------------------------------------------------------------------- run folders
def test_run_folders_are_claimed_atomically(tmp_path):
    got: list[Path] = []
    errors: list[Exception] = []

    def claim(name):
        try:
            got.append(increment_dir(tmp_path, name))
        except FileExistsError as e:
            errors.append(e)

    threads = [threading.Thread(target=claim, args=(None,)) for _ in range(8)]
    threads += [threading.Thread(target=claim, args=("fixed",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    unnamed = [p for p in got if p.name != "fixed"]
    assert len(set(unnamed)) == 8  # distinct exp, exp2, ...
    assert [p.name for p in got].count("fixed") == 1 and len(errors) == 3
    assert "pick another name=" in str(errors[0])


def test_train_name_reused_is_one_line(ws, capsys):
    (ws / "runs" / "segment" / "taken").mkdir(parents=True)
    with unchanged(ws):
        one_line(*cli(capsys, "train", "data=ds", "name=taken", "steps=1", "device=cpu", "progress=false"),
                 "taken", "name=")  # fmt: skip


# --------------------------------------------------------------------- damaged data, no fallback
def test_corrupt_dataset_yaml_is_an_error_naming_it(ws, capsys):
    (ws / "ds" / "dataset.yaml").write_text("format: mirstd-native\nsequences: [a, b\n  - : :\n")
    with unchanged(ws):
        one_line(*cli(capsys, "data", "info", "ds"), "dataset.yaml", "does not parse")
        rc = main(["data", "check", "ds"])
        out = capsys.readouterr().out
        assert rc == 1 and "dataset.yaml" in out


def test_unfinished_native_dataset_is_not_read_as_mist(ws, capsys):
    (ws / "ds" / "dataset.yaml").unlink()
    with unchanged(ws):
        one_line(*cli(capsys, "data", "info", "ds"), "dataset.yaml", "unfinished")
        assert main(["data", "check", "ds"]) == 1
        capsys.readouterr()


def test_missing_annotation_file_is_an_error(ws, capsys):
    (ws / "ds" / "annotations" / "seq0001.json").unlink()
    with unchanged(ws):
        one_line(
            *cli(capsys, "predict", "model=tophat", "source=ds", "out=o", "progress=false"), "seq0001.json"
        )
        rc = main(["data", "check", "ds"])
        out = capsys.readouterr().out
        assert rc == 1 and "seq0001.json" in out and "missing_labels" in out


def test_fewer_frame_records_than_frames_is_an_error(ws, capsys):
    p = ws / "ds" / "annotations" / "seq0000.json"
    doc = json.loads(p.read_text())
    doc["frames"] = doc["frames"][:2]
    p.write_text(json.dumps(doc))
    with unchanged(ws):
        assert main(["data", "check", "ds"]) == 1
        assert "2 frame records but 4 frames" in capsys.readouterr().out
        one_line(*cli(capsys, "data", "info", "ds"), "seq0000.json")


def test_native_frame_gap_is_found(ws, capsys):
    seq = ws / "ds"
    for sub in ("image", "mask", "instance"):
        (seq / sub / "seq0000" / "00002.png").unlink()
    p = seq / "annotations" / "seq0000.json"
    doc = json.loads(p.read_text())
    doc["frames"] = doc["frames"][:3]
    p.write_text(json.dumps(doc))
    with unchanged(ws):
        assert main(["data", "check", "ds"]) == 1
        assert "missing_frame" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- data check
def test_check_finds_nan_and_extra_columns_in_point_files(tmp_path, capsys):
    root = tensoristd(tmp_path / "t", ["3 4", "nan nan", "100 90 30 40", "5 6"])
    with unchanged(tmp_path):
        assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "s1.txt:2" in out and "non-finite" in out
    assert "s1.txt:3" in out and "4 columns" in out


def test_check_finds_mixed_bit_depth_and_reader_refuses_it(tmp_path, capsys):
    root = tensoristd(tmp_path / "t", ["3 4"] * 4)
    cv2.imwrite(str(root / "data" / "s1" / "0003.png"), np.full((16, 16), 1000, np.uint16))
    with unchanged(tmp_path):
        assert main(["data", "check", str(root)]) == 1
        assert "mixed_bit_depth" in capsys.readouterr().out
        one_line(*cli(capsys, "predict", "model=tophat", f"source={root}", f"out={tmp_path}/o", "progress=false"),
                 "0003.png", "16-bit")  # fmt: skip


def test_segmentation_training_on_point_labels_needs_mask_from(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tensoristd(tmp_path / "t", ["3 4"] * 4)
    with unchanged(tmp_path):
        one_line(*cli(capsys, "train", "model=resunet", f"data={root}", "train_split=all", "val_every=0",
                      "steps=1", "device=cpu", "progress=false"), "mask_from=points")  # fmt: skip


# ------------------------------------------------------------------------------------------ eval
def _coco(ws: Path, det: dict) -> Path:
    p = ws / "res.json"
    p.write_text(json.dumps([{"image_id": "seq0000/00000", "category_id": 1, **det}]))
    return p


@pytest.mark.parametrize(
    "det,needle",
    [({"bbox": [1, 1, -3, 2], "score": 0.5}, "negative width"),
     ({"bbox": [1, 1, 3, 2], "score": 7.5}, "outside [0, 1]")],
)  # fmt: skip
def test_eval_refuses_bad_coco_results(ws, capsys, det, needle):
    p = _coco(ws, det)
    with unchanged(ws):
        one_line(*cli(capsys, "eval", f"pred={p}", "data=ds", "split=all", "out=e", "progress=false"),
                 "res.json", needle)  # fmt: skip


def test_eval_refuses_thr_nan(ws, capsys):
    p = _coco(ws, {"bbox": [1, 1, 3, 2], "score": 0.5})
    with unchanged(ws):
        one_line(*cli(capsys, "eval", f"pred={p}", "data=ds", "thr=nan"), "thr=nan")


def test_non_square_imgsz_is_refused(ws, capsys):
    with unchanged(ws):
        one_line(*cli(capsys, "train", "data=ds", "imgsz=[64,32]", "steps=1"), "imgsz=[64, 32]", "square")


# --------------------------------------------------------------------------------------- resume
def _standin_run(tmp_path: Path, **kw) -> Path:
    sys.path.insert(0, str(ENGINE_TESTS))
    import standins

    from mirstd.engine import train

    base = dict(model=standins.TINY, model_args={"num_frames": 3}, val_every=0, progress=False, plots=False,
                deterministic=True, steps=4, batch=4, save_every=2, project=str(tmp_path), name="r", seed=1)  # fmt: skip
    return train(train_data=standins.ClipSamples(16, size=24), **{**base, **kw})


def test_resume_refuses_changed_and_unknown_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _standin_run(tmp_path)
    with unchanged(tmp_path):
        one_line(*cli(capsys, "train", "resume=true", f"project={tmp_path}", "name=r", "lr=0.1"), "lr=0.1",
                 "resume")  # fmt: skip
        one_line(*cli(capsys, "train", "resume=true", f"project={tmp_path}", "name=r", "stpes=9"), "stpes",
                 "steps")  # fmt: skip
        one_line(*cli(capsys, "train", "resume=true", f"project={tmp_path}", "name=r", "steps=2"), "steps=2")
    assert run.is_dir()


def test_resume_applies_more_steps_and_keeps_results_rows(tmp_path):
    sys.path.insert(0, str(ENGINE_TESTS))
    import standins

    from mirstd.engine import train
    from mirstd.engine.checkpoint import load_checkpoint

    run = _standin_run(tmp_path)
    before = (run / "results.csv").read_text().splitlines()
    assert len(before) >= 3
    train(train_data=standins.ClipSamples(16, size=24), resume=True, project=str(tmp_path), name="r", steps=8,
          progress=False)  # fmt: skip
    after = (run / "results.csv").read_text().splitlines()
    assert after[: len(before)] == before  # rows of the first run kept as written (epochs too)
    assert load_checkpoint(run / "weights" / "last.pt")["step"] == 8
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [float(r["epoch"]) for r in rows] == sorted(float(r["epoch"]) for r in rows)


# ----------------------------------------------------------------------- the one error boundary
def _ckpts(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "ck"
    d.mkdir()
    (d / "text.pt").write_text("not a checkpoint\n")
    (d / "zero.pt").write_bytes(b"")
    torch.save({"model": {"w": torch.zeros(3)}, "model_name": "resunet"}, d / "other_model.pt")
    torch.save({"a": 1}, d / "foreign.pt")
    buf = (d / "other_model.pt").read_bytes()
    (d / "truncated.pt").write_bytes(buf[: len(buf) // 2])
    return {p.stem: p for p in d.iterdir()}


POOR = [
    (["train", "steps=abc"], ["steps='abc'"]),
    (["train", "batch=0"], ["batch=0"]),
    (["train", "data=ds", "device=gpu0", "steps=1"], ["device='gpu0'"]),
    (["val", "model=tophat", "data=ds", "device=gpu0"], ["device='gpu0'"]),
    (["predict", "model=tophat", "source=ds", "device=gpu0", "out=o"], ["device='gpu0'"]),
    (["profile", "model=resunet", "device=gpu0"], ["device='gpu0'"]),
]


@pytest.mark.parametrize("argv,needles", POOR, ids=[" ".join(a[:1] + a[-1:]) for a, _ in POOR])
def test_bad_values_are_one_line(ws, capsys, argv, needles):
    with unchanged(ws):
        one_line(*cli(capsys, *argv), *needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("task", ["train", "val", "predict", "profile"])
def test_cuda_without_cuda_is_one_line(ws, capsys, task):
    argv = {"train": ["train", "data=ds", "steps=1"], "val": ["val", "model=tophat", "data=ds"],
            "predict": ["predict", "model=tophat", "source=ds", "out=o"], "profile": ["profile", "model=resunet"]}[task]  # fmt: skip
    with unchanged(ws):
        one_line(*cli(capsys, *argv, "device=cuda"), "device='cuda'", "CUDA is not available")


@pytest.mark.parametrize("kind", ["text", "zero", "truncated", "other_model", "foreign"])
@pytest.mark.parametrize("task", ["val", "predict"])
def test_bad_checkpoints_are_one_line_naming_the_file(ws, capsys, kind, task):
    ck = _ckpts(ws)[kind]
    argv = (
        ["val", f"weights={ck}", "data=ds"]
        if task == "val"
        else ["predict", f"weights={ck}", "source=ds", "out=o"]
    )
    with unchanged(ws):
        one_line(*cli(capsys, *argv), ck.name)


def test_predict_frame_of_another_size_is_one_line(tmp_path, capsys):
    d = tmp_path / "frames"
    write_frames(d, 3)
    write_frames(d, 1, size=(20, 16), names=["0004.png"])
    with unchanged(tmp_path):
        one_line(*cli(capsys, "predict", "model=tophat", f"source={d}", f"out={tmp_path}/o", "progress=false"),
                 "frame 3")  # fmt: skip


def test_predict_natural_frame_order(tmp_path, capsys):
    d = tmp_path / "frames"
    write_frames(d, 12, names=[f"{i}.png" for i in range(1, 13)])
    assert main(["predict", "model=tophat", f"source={d}", f"out={tmp_path}/o", "progress=false"]) == 0
    rows = json.loads((tmp_path / "o" / "predictions.json").read_text())
    frames = sorted(p.stem for p in (tmp_path / "o" / "scores" / "frames").iterdir())
    assert len(frames) == 12 and isinstance(rows, list)
    from mirstd.infer.predictor import frame_files

    assert [p.stem for p in frame_files(d)] == [str(i) for i in range(1, 13)]
    capsys.readouterr()


def test_long_sequence_name_is_fine_or_one_line(tmp_path, capsys):
    d = tmp_path / ("s" * 240)
    write_frames(d, 2)
    rc, err = cli(capsys, "predict", "model=tophat", f"source={d}", f"out={tmp_path}/o", "progress=false")
    if rc:
        one_line(rc, err)
    else:
        assert len(list((tmp_path / "o" / "scores" / d.name).iterdir())) == 2


# ------------------------------------------------------------------------------------ kill -9
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    return env


def _kill_when(p: subprocess.Popen, ready, timeout: float = 60.0) -> None:
    t0 = time.time()
    while not ready() and p.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.02)
    assert p.poll() is None, "finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


def _partials(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.endswith(".partial")]


def test_kill9_synth_leaves_no_half_dataset(tmp_path):
    out = tmp_path / "syn"
    p = subprocess.Popen([PY, "-m", "mirstd", "synth", "preset=smoke", f"out={out}", "frames=30", "size=64"],
                         env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _kill_when(p, lambda: any(_partials(tmp_path)) and any(_partials(tmp_path)[0].rglob("*.json")))
    assert not out.exists()  # nothing under the final name
    from mirstd.data.readers import load_dataset

    with pytest.raises(FileNotFoundError):
        load_dataset(out)


def test_kill9_convert_keeps_the_previous_dataset(tmp_path, native):
    from mirstd.synth import generate

    src = generate("smoke", tmp_path / "src", progress=False, frames=30, size=64)
    dst = tmp_path / "dst"
    shutil.copytree(native, dst)
    before = tree(dst)
    p = subprocess.Popen([PY, "-m", "mirstd", "data", "convert", str(src), str(dst), "exist_ok=true"],
                         env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _kill_when(p, lambda: any(_partials(tmp_path)) and any(_partials(tmp_path)[0].rglob("*.json")))
    assert tree(dst) == before  # the previous dataset, untouched
    assert subprocess.run([PY, "-m", "mirstd", "data", "convert", str(src), str(dst), "exist_ok=true"],
                          env=_env(), capture_output=True).returncode == 0  # fmt: skip
    assert main(["data", "check", str(dst)]) == 0
    assert len(_partials(tmp_path)) == 1  # only the killed run's temporary (never under the final name)


def test_kill9_train_leaves_a_loadable_run(tmp_path):
    from mirstd.engine.checkpoint import load_checkpoint

    args = [f"project={tmp_path}", "name=k", "steps=24", "batch=4", "save_every=2", "delay=0.01"]
    p = subprocess.Popen([PY, str(ENGINE_TESTS / "run_standin.py"), *args], env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    last = tmp_path / "segment" / "k" / "weights" / "last.pt"
    _kill_when(p, lambda: last.exists() and load_checkpoint(last)["step"] >= 4)
    ck = load_checkpoint(last)  # never a torn checkpoint
    assert 4 <= ck["step"] < 24
    rows = list(csv.DictReader(open(last.parent.parent / "results.csv")))
    assert rows and all(int(r["step"]) <= 24 for r in rows)
    # resuming completes the run from the last intact checkpoint
    subprocess.run([PY, str(ENGINE_TESTS / "run_standin.py"), f"project={tmp_path}", "name=k", "resume=true"],
                   env=_env(), check=True, capture_output=True)  # fmt: skip
    assert load_checkpoint(last)["step"] == 24


def test_atomic_writes_get_the_mode_of_an_ordinary_file(tmp_path):
    # mkstemp creates 0o600 files: run folders and shipped model cards would be unreadable to others
    from mirstd.utils.io import atomic_write_text, staged_dir, write_json

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    want = plain.stat().st_mode & 0o777
    for path in (atomic_write_text(tmp_path / "a.txt", "x"), write_json(tmp_path / "b.json", {"a": 1})):
        assert path.stat().st_mode & 0o777 == want, path
    (tmp_path / "plain").mkdir()
    with staged_dir(tmp_path / "staged") as d:
        (d / "f.txt").write_text("x")
    assert (tmp_path / "staged").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
