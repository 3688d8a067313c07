"""Weights shipped inside the package (``mirstd.models.pretrained``): listing, loading, `mirstd models`
marking them and `mirstd predict model=NAME` picking them up. WEIGHTS_DIR points at a tmp folder
holding one tiny checkpoint made here, so these tests never depend on what the package ships."""

from __future__ import annotations

import pytest
import torch

from mirstd.models import create, pretrained
from mirstd.utils.config import ConfigError


@pytest.fixture
def original() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in create("resunet").state_dict().items()}


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch, original):
    ckpt = {"model_name": "resunet", "model_args": {}, "task": "segment", "model": original, "optimizer": {}}
    shipped = pretrained.to_shipped(ckpt, {"data": "synth:smoke", "steps": 0})
    assert "optimizer" not in shipped and shipped["card"]["steps"] == 0
    assert all(v.dtype == torch.float16 for v in shipped["model"].values() if v.is_floating_point())
    assert any(not v.is_floating_point() for v in shipped["model"].values())  # num_batches_tracked kept
    torch.save(shipped, tmp_path / "resunet.pt")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_names_and_path(shipped_dir):
    assert pretrained.pretrained_names() == ["resunet"]
    assert pretrained.pretrained_path("resunet") == shipped_dir / "resunet.pt"
    assert pretrained.pretrained_path("rdian") is None
    assert pretrained.model_card("rdian") == {}


def test_load_pretrained_gives_fp16_rounded_float32_weights(shipped_dir, original):
    model, ckpt = pretrained.load_pretrained("resunet")
    assert ckpt["model_name"] == "resunet" and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    state = model.state_dict()
    assert set(state) == set(original)
    for k, v in original.items():
        want = v.half().float() if v.is_floating_point() else v
        assert torch.equal(state[k], want), k
    with pytest.raises(ValueError, match=r"model='rdian' has no shipped weights \(shipped: resunet\)"):
        pretrained.load_pretrained("rdian")


def test_models_cli_marks_shipped_names(shipped_dir, capsys):
    from mirstd.models.cli import main

    assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = {ln.split()[0] for ln in lines if ln[:16].strip() and ln[16:17] == "*"}
    assert marked == {"resunet"}
    assert any(ln.startswith("rdian") and ln[16:17] == " " for ln in lines)


def test_predict_model_name_uses_shipped_weights(shipped_dir):
    from mirstd.infer.predict import _model

    cpu = torch.device("cpu")
    assert _model(None, "resunet", None, cpu) == shipped_dir / "resunet.pt"
    with pytest.raises(ConfigError, match=r"no weights.*shipped weights: resunet\)"):
        _model(None, "rdian", None, cpu)
    with pytest.raises(ConfigError, match="model_args are not allowed"):
        _model(None, "resunet", {"variant": "dtum"}, cpu)


def test_predict_without_shipped_weights_names_none(tmp_path, monkeypatch):
    from mirstd.infer.predict import _model

    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "absent")
    assert pretrained.pretrained_names() == []
    with pytest.raises(ConfigError, match=r"give weights=PATH \(names with shipped weights: none\)"):
        _model(None, "resunet", None, torch.device("cpu"))


def test_transfer_weights_starts_pstfnet_from_shipped_resunet(shipped_dir, original):
    torch.manual_seed(1)
    model = create("pstfnet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copied, total = pretrained.transfer_weights(model, "resunet")
    assert (copied, total) == (len(original), len(before))  # PSTFNet holds all of ResUNet, same names
    state = model.state_dict()
    for k, v in original.items():  # encoder, decoder and input norm: the shipped fp16 values, as float32
        want = v.half().float() if v.is_floating_point() else v
        assert state[k].dtype == before[k].dtype and torch.equal(state[k], want), k
    rest = [k for k in before if k not in original]
    assert rest and all(k.startswith(("ptam.", "msfm.")) for k in rest)
    assert all(torch.equal(state[k], before[k]) for k in rest)  # temporal and fusion modules untouched


def test_transfer_weights_from_a_path_and_its_errors(shipped_dir, original):
    model = create("resunet")
    assert pretrained.transfer_weights(model, shipped_dir / "resunet.pt") == (len(original), len(original))
    with pytest.raises(
        ValueError, match=r"pretrained='rdian': no such checkpoint file .*\(shipped: resunet\)"
    ):
        pretrained.transfer_weights(model, "rdian")
    with pytest.raises(ValueError, match=r"pretrained='resunet': none of its \d+ tensors fits model SMFNet"):
        pretrained.transfer_weights(create("smfnet", width=0.25), "resunet")
