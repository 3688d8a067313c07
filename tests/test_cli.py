from mirstd.cli import main
from mirstd.utils.config import parse_overrides


def test_help_lists_tasks(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for task in ("data", "synth", "train", "eval", "demo"):
        assert task in out


def test_unknown_task_exit_code(capsys):
    assert main(["nonsense"]) == 2
    assert "unknown task 'nonsense'" in capsys.readouterr().err


def test_parse_overrides_types_and_nesting():
    cfg = parse_overrides(["lr=1e-3", "amp=false", "imgsz=[64,64]", "optim.name=sgd", "name=run1"])
    assert cfg == {"lr": 1e-3, "amp": False, "imgsz": [64, 64], "optim": {"name": "sgd"}, "name": "run1"}


def test_parse_overrides_rejects_bare_word():
    import pytest

    with pytest.raises(ValueError, match="'oops' is not of the form key=value"):
        parse_overrides(["oops"])
