"""One front end: every task refuses a misspelt key with one line naming it and the right one; the
Python API takes exactly the CLI's keys; layers hold (import-linter) and nothing outside models/
branches on a model's kind."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mirstd
from mirstd.api import BOUND, Model, api_keys
from mirstd.cli import main
from mirstd.utils.config import task_defaults

SRC = Path(mirstd.__file__).resolve().parent

# (argv, the misspelt key as printed, the suggestion)
TYPOS = [
    (["train", "model=resunet", "stpes=10"], "'stpes'", "steps"),
    (["train", "model=resunet", "model_args.chanels=[4,8,16,32]", "data=synth:smoke", "steps=1"], "model_args.chanels", "model_args.channels"),
    (["val", "model=tophat", "data=synth:smoke", "splt=test"], "'splt'", "split"),
    (["val", "model=tophat", "data=synth:smoke", "model_args.sise=5"], "model_args.sise", "model_args.size"),
    (["predict", "model=tophat", "source=synth:smoke", "conff=0.5"], "'conff'", "conf"),
    (["eval", "pred=x", "data=y", "protocls=iou"], "'protocls'", "protocols"),
    (["profile", "model=resunet", "imgsize=64"], "'imgsize'", "imgsz"),
    (["synth", "preset=smoke", "out=/nonexistent/never", "sed=1"], "'sed'", "seed"),
    (["demo", "quik=true"], "'quik'", "quick"),
    (["data", "info", "../shared/data/airground-real", "formt=x"], "'formt'", "format"),
]  # fmt: skip


@pytest.mark.parametrize("argv,key,hint", TYPOS, ids=[t[0][0] + ":" + t[1] for t in TYPOS])
def test_misspelt_key_is_one_line_naming_it_and_the_right_one(argv, key, hint, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anyway; keep any stray output here
    if argv[0] == "data":
        argv = [*argv[:2], str(SRC.parents[2] / "shared" / "data" / "airground-real"), *argv[3:]]
        if not Path(argv[2]).is_dir():
            pytest.skip("../shared/data/airground-real is not beside this checkout")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert key in err and hint in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_bad_values_are_one_line_too(capsys):
    for argv, want in ((["train", "steps=abc"], "steps='abc' is not an integer"),
                       (["train", "batch=0"], "batch=0 must be positive"),
                       (["profile", "model=nope"], "unknown model 'nope'")):  # fmt: skip
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and want in err, err


@pytest.mark.parametrize("task", ["train", "val", "predict", "profile"])
def test_model_methods_take_exactly_the_cli_keys(task):
    cli = set(task_defaults(task))
    assert api_keys(task) == cli - BOUND[task] and BOUND[task] <= cli
    m = Model("tophat")
    with pytest.raises(ValueError, match="unknown key 'nope'"):
        getattr(m, task)(nope=1)


def test_top_level_api_mirrors_the_cli():
    for name in ("Model", "train", "val", "predict", "evaluate", "synth", "demo"):
        assert callable(getattr(mirstd, name))
    with pytest.raises(ValueError, match="did you mean split"):
        mirstd.val(model="tophat", data="synth:smoke", splt="test")


def test_import_layers_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    r = subprocess.run([exe, "--config", str(SRC.parents[1] / "pyproject.toml")], capture_output=True, text=True,
                       cwd=SRC.parents[1], timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:]
    assert "1 kept, 0 broken" in r.stdout


def test_no_branching_on_the_model_kind_outside_models():
    pattern = re.compile(r"task ==|isinstance\(.*model|getattr\(model")
    hits = []
    for path in SRC.rglob("*.py"):
        if "models" in path.relative_to(SRC).parts[:1]:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert hits == []
