"""`mirstd data check` names the file (and line) of every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _data_fixtures import frame, write_img
from scipy.io import savemat

from mirstd.data import DataError, load_dataset
from mirstd.data.check import check_dataset
from mirstd.data.cli import main


def bad_tensoristd(root: Path) -> Path:
    for k in (1, 2, 4, 5):  # frame 0003 missing
        write_img(root / "data" / "seqA" / f"{k:04d}.png", frame(k))
    write_img(root / "data" / "seqA" / "0006.png", frame(6, 20, 20))  # size differs
    (root / "data" / "seqA" / "0007.png").write_bytes(b"not an image at all")  # unreadable
    (root / "anno").mkdir()
    # 6 frames, 8 label lines: lines 7-8 label frames that do not exist; line 2 is outside the image
    (root / "anno" / "seqA.txt").write_text("1 1\n900 5\n3 3\n4 4\n5 5\n6 6\n7 7\n8 8")
    (root / "data" / "empty").mkdir()
    return root


def test_check_reports_each_problem(tmp_path, capsys):
    root = bad_tensoristd(tmp_path / "bad")
    with pytest.raises(DataError, match="0003.png: missing frame"):
        load_dataset(root)
    found = {(Path(f.path).name, f.line, f.kind) for f in check_dataset(root)}
    assert ("0003.png", None, "missing_frame") in found
    assert ("seqA.txt", 7, "label_without_frame") in found and ("seqA.txt", 8, "label_without_frame") in found
    assert ("0006.png", None, "size_mismatch") in found
    assert ("0007.png", None, "unreadable") in found
    assert ("empty", None, "empty_sequence") in found
    assert ("0002.png", None, "point_outside") in found
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "seqA.txt:8: label for frame 8, but the sequence has 6 frames" in out
    assert "frame size 20x20 differs from the sequence's 32x40" in out
    assert "point [899.0, 4.0] of frame seqA/0002 lies outside the 40x32 image" in out


def test_check_uestc_box_outside_and_missing_file(tmp_path, capsys):
    root = tmp_path / "u"
    for k in range(2):
        write_img(root / "images" / "s1" / f"{k}.bmp", frame(k))
    (root / "coco_val_X.txt").write_text(
        f"{root}/images/s1/0.bmp 1,1,9,9,0\n{root}/images/s1/1.bmp 35,1,45,9,0\n{root}/images/s1/2.bmp 1,1,9,9,0\n"
    )
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "coco_val_X.txt:3: frame file" in out and "not found" in out
    assert "coco_val_X.txt:2: box [35.0, 1.0, 45.0, 9.0] of frame s1/1 lies outside the 40x32 image" in out


def test_check_mat_without_mix_and_split_missing(tmp_path, capsys):
    root = tmp_path / "nudt"
    (root / "Sequence1" / "Mix").mkdir(parents=True)
    savemat(root / "Sequence1" / "Mix" / "00001.mat", {"Mix": np.zeros((3, 8, 8))})
    savemat(root / "Sequence1" / "Mix" / "00002.mat", {"Other": np.zeros((3, 8, 8))})
    (root / "train.txt").write_text("Sequence1/Mix/00001.mat\nSequence1/Mix/00009.mat\n")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "00002.mat: unreadable frame" in out and "no key 'Mix' in the .mat file (keys: ['Other'])" in out
    assert "train.txt:2: names 'Sequence1/Mix/00009.mat', which does not exist" in out


def test_empty_dataset_and_missing_path(tmp_path):
    (tmp_path / "e" / "data").mkdir(parents=True)
    (tmp_path / "e" / "anno").mkdir()
    with pytest.raises(DataError, match="dataset is empty"):
        load_dataset(tmp_path / "e")
    assert [f.kind for f in check_dataset(tmp_path / "e")] == ["empty_dataset"]
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_dataset(tmp_path / "nothing")


def test_convert_cli_native_and_coco(tmp_path, capsys):
    root = tmp_path / "u"
    for k in range(2):
        write_img(root / "images" / "s1" / f"{k}.bmp", frame(k))
    (root / "coco_val_X.txt").write_text(f"{root}/images/s1/0.bmp 1,1,9,9,0\n{root}/images/s1/1.bmp\n")
    assert main(["convert", str(root), str(tmp_path / "n")]) == 0
    assert load_dataset(tmp_path / "n")["s1"].labels[0].boxes.tolist() == [[1, 1, 9, 9]]
    assert main(["convert", str(root), str(tmp_path / "c.json"), "format=coco"]) == 0
    assert load_dataset(tmp_path / "c.json", image_root=root)["s1"].labels[0].boxes.tolist() == [[1, 1, 9, 9]]
