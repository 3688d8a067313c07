"""Every reader: a fixture in the exact source layout -> read -> write native -> read back -> identical."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _data_fixtures import frame, mask_with, write_img
from scipy.io import savemat

from mirstd.data import load_dataset
from mirstd.data.native import read_native, write_native


def roundtrip(ds, tmp_path: Path):
    out = write_native(ds, tmp_path / "native")
    back = load_dataset(out)
    assert back.format == "native"
    assert list(back.sequences) == list(ds.sequences)
    assert back.splits == ds.splits
    for name, seq in ds.sequences.items():
        other = back[name]
        assert len(other) == len(seq)
        for i in range(len(seq)):
            assert seq.labels[i].same_as(other.labels[i]), (name, i)
            assert np.array_equal(seq.load_frame(i), other.load_frame(i))
            m1, m2 = seq.load_mask(i), other.load_mask(i)
            assert (m1 is None) == (m2 is None)
            if m1 is not None:
                assert np.array_equal(m1 > 0, m2 > 0)
    return back


def make_tensoristd(root: Path, newline: bool = False) -> Path:
    for s, n in (("sequence1", 3), ("sequence2", 4)):
        for k in range(n):
            write_img(root / "data" / s / f"{k + 1:04d}.bmp", frame(k))
        lines = [f"{10 + k}\t{5 + k}" for k in range(n)]
        (root / "anno").mkdir(exist_ok=True)
        (root / "anno" / f"{s}.txt").write_text("\n".join(lines) + ("\n" if newline else ""))
    return root


def test_tensoristd(tmp_path):
    ds = load_dataset(make_tensoristd(tmp_path / "t"))
    assert ds.format == "tensoristd" and len(ds) == 2 and ds.num_frames == 7
    assert ds["sequence2"].labels[3].points.tolist() == [[12.0, 7.0]]  # "13 8" 1-based -> 0-based
    assert ds["sequence1"].size == (32, 40) and ds["sequence1"].bit_depth == 8
    roundtrip(ds, tmp_path)


def make_uestc(root: Path) -> Path:
    lines_tr, lines_te = [], []
    for seq, n, lines in (("data5", 3, lines_tr), ("data8", 2, lines_tr), ("data6", 3, lines_te)):
        sub = "train" if lines is lines_tr else "test"
        for k in range(n):
            write_img(root / "images" / sub / seq / f"{k}.bmp", frame(k))
            boxes = "" if k == 1 and seq == "data8" else f" {k},{k + 1},{k + 8},{k + 9},0"
            if seq == "data6" and k == 2:
                boxes += " 20,20,24,26,0"
            lines.append(f"/home/public/DAUB/images/{sub}/{seq}/{k}.bmp{boxes}")
    (root / "coco_train_DAUB.txt").write_text("\n".join(lines_tr) + "\n")
    (root / "coco_val_DAUB.txt").write_text("\n".join(lines_te) + "\n")
    return root


def test_uestc_lists_remap_and_val_split(tmp_path):
    root = make_uestc(tmp_path / "daub")
    ds = load_dataset(root, root_remap={"/home/public/DAUB": str(root)}, val_fraction=0.5, seed=0)
    assert ds.format == "uestc"
    assert ds.splits["test"] == ["data6"] and sorted(ds.splits["train_all"]) == ["data5", "data8"]
    assert len(ds.splits["val"]) == 1 and set(ds.splits["val"] + ds.splits["train"]) == {"data5", "data8"}
    assert ds["data6"].labels[2].boxes.tolist() == [[2, 3, 10, 11], [20, 20, 24, 26]]
    assert ds["data8"].labels[1].num_targets == 0 and ds["data8"].labels[1].has_boxes
    roundtrip(ds, tmp_path)
    # without root_remap, the missing absolute paths are found from their images/ component
    assert load_dataset(root / "coco_val_DAUB.txt").num_frames == 3


def test_coco_write_and_read(tmp_path):
    from mirstd.data.readers.coco import to_coco, write_coco

    root = make_uestc(tmp_path / "daub")
    ds = load_dataset(root, val_fraction=0.0)
    doc = to_coco(ds, split="test")
    assert doc["images"][0]["file_name"] == "images/test/data6/0.bmp"
    assert doc["annotations"][0] == {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "bbox": [0, 1, 8, 8],
        "area": 64,
        "iscrowd": 0,
        "segmentation": [[]],
    }
    (root / "json").mkdir()
    write_coco(ds, root / "json" / "DAUB_instances_test2017.json", split="test")
    back = load_dataset(root / "json" / "DAUB_instances_test2017.json")
    assert back.format == "coco" and list(back.sequences) == ["data6"]
    for i in range(3):
        assert back["data6"].labels[i].same_as(ds["data6"].labels[i])
    roundtrip(back, tmp_path)


def make_nudt(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for s in (1, 47, 85):
        d = root / f"Sequence{s}"
        for k in range(1, 4):
            savemat(
                d / "Mix" / f"{k:05d}.mat" if (d / "Mix").mkdir(parents=True, exist_ok=True) is None else "",
                {"Mix": rng.integers(0, 255, (5, 24, 30)).astype(np.float64)},
            )
            write_img(d / "masks" / f"{k:05d}.png", mask_with(24, 30, [(k, 2, k + 3, 4)]))
            c = np.zeros((24, 30), np.uint8)
            c[2, k + 1] = 255
            write_img(d / "masks_centroid" / f"{k:05d}.png", c)
    (root / "train.txt").write_text("".join(f"Sequence1/Mix/{k:05d}.mat\n" for k in range(1, 4)))
    (root / "test.txt").write_text(
        "".join(f"Sequence{s}/Mix/{k:05d}.mat\n" for s in (47, 85) for k in range(1, 4))
    )
    return root


def test_nudt_mirsdt(tmp_path):
    from mirstd.data import ClipDataset

    ds = load_dataset(make_nudt(tmp_path / "nudt"))
    assert ds.format == "nudt_mirsdt"
    assert ds.splits == {
        "train": ["Sequence1"],
        "test": ["Sequence47", "Sequence85"],
        "test_low": ["Sequence47"],
        "test_high": ["Sequence85"],
    }
    seq = ds["Sequence47"]
    assert seq.size == (24, 30) and seq.load_frame(0).shape == (24, 30)
    assert seq.labels[1].boxes.tolist() == [[2, 2, 5, 4]] and seq.labels[1].points.tolist() == [[3.0, 2.5]]
    hist = seq.load_history(2, 5)
    assert np.array_equal(hist[-1], seq.load_frame(2))
    clip = ClipDataset([seq], num_frames=5, pad="source")[2]["clip"]
    assert np.allclose(clip[0].numpy() * 255, hist, atol=1e-3)
    roundtrip(ds, tmp_path)


def make_basicirstd(root: Path, nested_lists: bool = True) -> Path:
    for k, stem in enumerate(["Misc_1", "000541", "XDU189"]):
        write_img(root / "images" / f"{stem}.png", frame(k, 32, 32 + 8 * k))
        write_img(
            root / "masks" / f"{stem}.png",
            mask_with(32, 32 + 8 * k, [(3, 4, 6, 6), (20, 20, 21, 21)][: k + 1]),
        )
    d = root / "img_idx" if nested_lists else root
    d.mkdir(parents=True, exist_ok=True)
    (d / "train_SIRST3.txt").write_text("Misc_1\n000541\n")
    (d / "test_SIRST3.txt").write_text("XDU189")
    return root


@pytest.mark.parametrize("nested", [True, False])
def test_basicirstd(tmp_path, nested):
    ds = load_dataset(make_basicirstd(tmp_path / "SIRST3", nested))
    assert ds.format == "basicirstd" and ds.splits == {"train": ["Misc_1", "000541"], "test": ["XDU189"]}
    assert ds["XDU189"].size == (32, 48) and ds["XDU189"].meta["single_frame"]
    assert ds["000541"].labels[0].boxes.tolist() == [[3, 4, 6, 6], [20, 20, 21, 21]]
    roundtrip(ds, tmp_path)


def test_single_frame_rejected_for_multiframe_training(tmp_path):
    from mirstd.data import ClipDataset

    ds = load_dataset(make_basicirstd(tmp_path / "SIRST3"))
    with pytest.raises(
        ValueError, match="multi-frame training .* single-frame dataset with a per-frame split"
    ):
        ClipDataset(ds, num_frames=5, train=True)
    assert ClipDataset(ds, num_frames=1, train=True, crop=16)[0]["clip"].shape == (1, 1, 16, 16)


def _voc(objs: list[str]) -> str:
    return "<annotation><folder>images</folder>" + "".join(objs) + "</annotation>"


def _obj(box: tuple[int, int, int, int] | None) -> str:
    bb = (
        ""
        if box is None
        else "<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>".format(*box)
    )
    return f"<object><name>Target</name><difficult>0</difficult><pixels><id>0</id></pixels>{bb}</object>"


def make_sirst_v2(root: Path) -> Path:
    write_img(root / "mixed" / "Misc_1.png", frame(0, 40, 48))
    write_img(
        root / "annotations" / "masks" / "Misc_1_pixels0.png",
        mask_with(40, 48, [(70 - 60, 74 - 60, 72 - 60, 76 - 60)]),
    )
    # v2 XML rule: edge box = (xmin-1, ymin-1, xmax-1, ymax-1) -> mask box (10,14,12,16)
    (root / "annotations" / "bboxes").mkdir(parents=True)
    (root / "annotations" / "bboxes" / "Misc_1.xml").write_text(_voc([_obj((11, 15, 13, 17))]))
    write_img(root / "mixed" / "bg-1.png", frame(1, 30, 30))
    write_img(root / "annotations" / "masks" / "bg-1_pixels0.png", np.zeros((30, 30), np.uint8))
    (root / "annotations" / "bboxes" / "bg-1.xml").write_text(_voc([_obj(None)]))  # placeholder object
    (root / "splits").mkdir()
    (root / "splits" / "trainval_full.txt").write_text("Misc_1\nbg-1\n")
    return root


def test_sirst_v2_boxes_and_placeholders(tmp_path):
    from mirstd.data.readers.sirst import parse_xml_boxes

    root = make_sirst_v2(tmp_path / "v2")
    ds = load_dataset(root)
    assert ds.format == "sirst_v2"
    assert parse_xml_boxes(root / "annotations/bboxes/bg-1.xml", 2).shape == (0, 4)
    assert ds["Misc_1"].labels[0].boxes.tolist() == [[10, 14, 12, 16]]
    assert ds["bg-1"].labels[0].num_targets == 0
    assert ds.splits == {"trainval_full": ["Misc_1", "bg-1"]}
    roundtrip(ds, tmp_path)


def make_sirst_v1(root: Path) -> Path:
    write_img(root / "images" / "Misc_1.png", np.dstack([frame(0, 40, 48)] * 3))
    write_img(root / "masks" / "Misc_1_pixels0.png", mask_with(40, 48, [(5, 5, 7, 7), (30, 20, 33, 23)]))
    # one merged box spanning both targets, as in the real Misc_1.xml
    (root / "masks" / "Misc_1.xml").write_text(_voc([_obj((5, 5, 32, 22))]))
    write_img(root / "images" / "Misc_2.png", frame(1, 40, 48))
    write_img(root / "masks" / "Misc_2_pixels0.png", mask_with(40, 48, [(8, 9, 10, 12)]))
    (root / "masks" / "Misc_2.xml").write_text(_voc([_obj((8, 9, 9, 11))]))  # 0-based inclusive: agrees
    (root / "idx_427").mkdir()
    (root / "idx_427" / "train.txt").write_text("Misc_1\n")
    (root / "idx_427" / "test.txt").write_text("Misc_2\n")
    return root


def test_sirst_v1_mask_boxes_and_check(tmp_path):
    from mirstd.data.check import check_dataset

    root = make_sirst_v1(tmp_path / "sirst")
    ds = load_dataset(root)
    assert ds.format == "sirst_v1" and ds.splits == {"test": ["Misc_2"], "train": ["Misc_1"]}
    assert ds["Misc_1"].labels[0].boxes.tolist() == [[5, 5, 7, 7], [30, 20, 33, 23]]
    found = check_dataset(root)
    assert [(Path(f.path).name, f.severity, f.kind) for f in found] == [
        ("Misc_1.xml", "warning", "xml_mask_disagree")
    ]
    assert "boxes are taken from the mask" in found[0].message
    roundtrip(ds, tmp_path)


def make_mist(root: Path) -> Path:
    for s in ("seq_a", "seq_b", "seq_c"):
        for k in range(3):
            write_img(root / "image" / s / f"{k:04d}.png", frame(k))
            write_img(root / "mask" / s / f"{k:04d}.png", mask_with(32, 40, [(k, 1, k + 2, 3)]))
    (root / "train.txt").write_text("seq_a\nseq_b\n")
    (root / "val_all.txt").write_text("seq_c\n")
    (root / "val_hard.txt").write_text("seq_c\n")
    return root


def test_mist(tmp_path):
    ds = load_dataset(make_mist(tmp_path / "mist"))
    assert ds.format == "mist" and ds.norm == (0.359, 0.15)
    assert (
        ds.splits["test"] == ["seq_c"]
        and ds.splits["val_hard"] == ["seq_c"]
        and ds.splits["train"] == ["seq_a", "seq_b"]
    )
    assert ds["seq_b"].labels[2].boxes.tolist() == [[2, 1, 4, 3]]
    back = roundtrip(ds, tmp_path)
    assert read_native(back.root).splits == ds.splits


def test_format_selectable_by_name_and_unknown(tmp_path):
    root = make_tensoristd(tmp_path / "t")
    assert load_dataset(root, format="tensoristd_points").num_frames == 7
    with pytest.raises(ValueError, match="unknown dataset format 'nope'"):
        load_dataset(root, format="nope")
    with pytest.raises(ValueError, match="unknown key 'bogus' for mirstd data"):
        load_dataset(root, bogus=1)


def test_synth_missing_is_clear(monkeypatch):
    import sys

    import mirstd.data.readers as readers

    monkeypatch.setattr(readers, "_SOURCES", {})  # as if mirstd.synth had never registered itself
    monkeypatch.setitem(sys.modules, "mirstd.synth", None)  # ... and could not be imported
    with pytest.raises(ImportError, match="synth:demo: the synth: source needs mirstd.synth"):
        load_dataset("synth:demo")


def test_native_json_schema(tmp_path):
    ds = load_dataset(make_tensoristd(tmp_path / "t"))
    write_native(ds, tmp_path / "n")
    doc = json.loads((tmp_path / "n" / "annotations" / "sequence1.json").read_text())
    assert doc["frames"][0]["targets"] == [{"id": -1, "point": [9.0, 4.0], "scr": None}]
