"""Named splits of the real data sets, ``real:<name>``, split unions and merged datasets."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from _data_fixtures import frame, write_img

from mirstd.data import load_dataset
from mirstd.data.protocols import AIRGROUND_SPLITS, apply_protocol, data_roots, drone_ir_splits, find_real
from mirstd.data.readers import merge_datasets
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset

CLASSES = ("AIRPLANE", "BIRD", "DRONE", "HELICOPTER")
DISTANCES = ("CLOSE", "DISTANT", "MEDIUM")


def seq(name: str, n: int = 2, **meta) -> Sequence:
    frames = [lambda: np.zeros((8, 8), np.float32) for _ in range(n)]
    return Sequence(name, frames, [FrameLabels() for _ in range(n)], meta=dict(meta))


def fake_drone(order_seed: int | None = None) -> SequenceDataset:
    """Groups of 5..16 videos per (class, distance); names interleave groups, as the real ones do."""
    items = []
    for ci, c in enumerate(CLASSES):
        for di, d in enumerate(DISTANCES):
            for k in range(5 + (3 * ci + 4 * di) % 12):
                items.append((f"IR_{c}_{di}{k:03d}", c, d))
    if order_seed is not None:
        random.Random(order_seed).shuffle(items)
    seqs = {n: seq(n, **{"class": c, "distance_bin": d}) for n, c, d in items}
    return SequenceDataset(seqs, {}, "drone-ir", Path("/nowhere/drone-ir"), "videos")


def _role_counts(n: int) -> tuple[int, int, int]:
    test = sum(1 for p in range(n) if p % 5 == 2)
    val = sum(1 for p in range(n) if p % 5 == 4)
    return n - test - val, val, test


def test_drone_ir_splits_by_video_stratified_and_deterministic():
    ds = fake_drone()
    sp = drone_ir_splits(ds)
    tr, va, te = (set(sp[k]) for k in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == set(ds.sequences)  # every video has exactly one role
    groups: dict[tuple[str, str], list[str]] = {}
    for s in ds:
        groups.setdefault((s.meta["class"], s.meta["distance_bin"]), []).append(s.name)
    for key, names in groups.items():
        names = sorted(names)
        got = tuple(sum(n in part for n in names) for part in (tr, va, te))
        assert got == _role_counts(len(names)), key
        assert min(got) >= 1  # every (class, distance) group is in each split
        # position rule inside the group (name order): 2 -> test, 4 -> val, else train
        assert names[2] in te and names[4] in va and {names[0], names[1], names[3]} <= tr
    n = len(ds)
    assert abs(len(tr) / n - 0.6) < 0.06 and abs(len(va) / n - 0.2) < 0.06 and abs(len(te) / n - 0.2) < 0.06
    for role in ("train", "val", "test"):
        assert sp[role] == sorted(sp[role])
        for d in DISTANCES:
            sub = sp[f"{role}_{d.lower()}"]
            assert sub and set(sub) <= set(sp[role])
            assert all(ds[x].meta["distance_bin"] == d for x in sub)
        assert sorted(sum((sp[f"{role}_{d.lower()}"] for d in DISTANCES), [])) == sp[role]
    # deterministic and independent of the order the reader met the videos in
    assert drone_ir_splits(fake_drone()) == sp and drone_ir_splits(fake_drone(order_seed=3)) == sp


def test_drone_ir_small_groups_fill_train_first():
    seqs = {f"v{k}": seq(f"v{k}", **{"class": "BIRD", "distance_bin": "CLOSE"}) for k in range(3)}
    sp = drone_ir_splits(SequenceDataset(seqs))
    assert sp["train"] == ["v0", "v1"] and sp["test"] == ["v2"] and sp["val"] == []
    assert sp["test_close"] == ["v2"] and sp["val_distant"] == []


def test_apply_protocol_drone_adds_prefixed_copies_and_scoring():
    ds = apply_protocol(fake_drone())
    for k in ("train", "val", "test", "test_distant", "val_medium"):
        assert ds.splits[f"drone_{k}"] == ds.splits[k]
    assert ds.meta["protocol"] == {"name": "drone-ir", "protocol": "point_in_box", "box_margin": 2.0,
                                   "boxes": "coco AP50"}  # fmt: skip
    # a dataset that defines its own train split keeps it; another folder name gets nothing
    own = fake_drone()
    own.splits["train"] = ["IR_BIRD_0000"]
    assert apply_protocol(own).splits == {"train": ["IR_BIRD_0000"]} and "protocol" not in own.meta
    other = fake_drone()
    other.root = Path("/nowhere/my-videos")
    assert apply_protocol(other).splits == {}
    wrong_format = fake_drone()
    wrong_format.format = "native"
    assert apply_protocol(wrong_format).splits == {}
    alias = fake_drone()  # load_dataset(..., format="drone-ir") names the reader by its alias
    alias.format = "drone-ir"
    assert apply_protocol(alias).splits["drone_test"] == ds.splits["test"]


def _airground(names) -> SequenceDataset:
    return SequenceDataset(
        {n: seq(n) for n in names}, {}, "airground-real", Path("/x/airground-real"), "tensoristd"
    )


def test_airground_splits_by_sequence():
    names = sorted(n for v in AIRGROUND_SPLITS.values() for n in v)
    assert len(names) == len(set(names)) == 8
    tr, va, te = (set(AIRGROUND_SPLITS[k]) for k in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    ds = apply_protocol(_airground(names))
    assert {k: set(v) for k, v in ds.splits.items() if "_" not in k} == {"train": tr, "val": va, "test": te}
    assert ds.splits["airground_val"] == ["sequence2"] and ds.meta["protocol"]["protocol"] == "point"
    partial = apply_protocol(_airground(names[:-1]))  # a sequence is missing: no protocol splits
    assert partial.splits == {} and "protocol" not in partial.meta


def test_real_airground_loads_with_its_protocol():
    try:
        root = find_real("airground")
    except FileNotFoundError:
        pytest.skip("airground-real not in any data root")
    if not (root / "data").is_dir():
        pytest.skip("airground-real has no data folder")
    ds = load_dataset("real:airground")
    assert root.name == "airground-real" and ds.format == "tensoristd" and len(ds) == 8
    parts = [set(ds.splits[k]) for k in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == 8 and set().union(*parts) == set(ds.sequences)
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert ds.splits["airground_test"] == ["sequence6", "sequence9"]
    assert ds.meta["protocol"] == {"name": "airground-real", "protocol": "point", "distance": 3.0}


def test_find_real_error_lists_the_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSTD_DATA", str(tmp_path / "mine"))
    roots = data_roots()
    assert roots[0] == tmp_path / "mine" and len(roots) == len(set(roots))
    with pytest.raises(FileNotFoundError) as e:
        find_real("no-such-set")
    msg = str(e.value)
    assert "real:no-such-set" in msg and "MIRSTD_DATA" in msg
    assert all(str(r) in msg for r in roots)
    with pytest.raises(FileNotFoundError, match="real:no-such-set"):
        load_dataset("real:no-such-set")
    (tmp_path / "mine" / "drone-ir").mkdir(parents=True)
    assert find_real("drone") == tmp_path / "mine" / "drone-ir"  # alias, first root wins


def test_split_union():
    ds = SequenceDataset({n: seq(n) for n in "abcd"}, {"x": ["a", "b"], "y": ["b", "c"], "z": ["d"]})
    assert [s.name for s in ds.split("x+y")] == ["a", "b", "c"]
    assert [s.name for s in ds.split("z+x+y")] == ["d", "a", "b", "c"]
    assert [s.name for s in ds.split("x+x")] == ["a", "b"]
    with pytest.raises(KeyError, match="no split 'nope'"):
        ds.split("x+nope")
    ds.splits["x+y"] = ["d"]  # a split literally named so wins over the union
    assert [s.name for s in ds.split("x+y")] == ["d"]


def _ds(name: str, seqs: list[str], splits: dict, norm=None) -> SequenceDataset:
    return SequenceDataset(
        {n: seq(n, src=name) for n in seqs}, splits, name, Path(f"/r/{name}"), "native", norm
    )


def test_merge_datasets_prefixes_collisions_and_tags_parts():
    a = _ds("alpha", ["s1", "s2"], {"train": ["s1"], "val": ["s2"]}, norm=(0.1, 0.2))
    b = _ds("beta", ["s1", "s3"], {"train": ["s1", "s3"], "test": ["s3"]}, norm=(0.1, 0.2))
    a.findings.append("fa")
    m = merge_datasets([a, b])
    names = list(m.sequences)
    assert len(names) == 4 and "s2" in names and "s3" in names and "s1" not in names
    pa = [n for n in names if n.startswith("alpha") and n.endswith("__s1")]
    pb = [n for n in names if n.startswith("beta") and n.endswith("__s1")]
    assert len(pa) == len(pb) == 1
    assert m[pa[0]].meta == {"src": "alpha", "part": 0} and m[pb[0]].meta == {"src": "beta", "part": 1}
    assert m[pa[0]].name == pa[0] and m["s2"].meta["part"] == 0 and m["s3"].meta["part"] == 1
    assert m.splits == {"train": [pa[0], pb[0], "s3"], "val": ["s2"], "test": ["s3"]}
    assert a["s1"].name == "s1" and "part" not in a["s1"].meta  # the parts are left untouched
    assert m.name == "alpha+beta" and m.format == "merged" and m.norm == (0.1, 0.2)
    assert [p["name"] for p in m.meta["parts"]] == ["alpha", "beta"] and m.findings == ["fa"]
    assert merge_datasets([a, _ds("gamma", ["g"], {}, norm=(0.5, 0.5))]).norm is None
    # the same dataset twice still gives distinct names
    twice = merge_datasets([a, a])
    assert len(twice) == 4 and len({s.meta["part"] for s in twice}) == 2


def make_tensoristd(root: Path) -> Path:
    for k in range(3):
        write_img(root / "data" / "sequence1" / f"{k + 1:04d}.bmp", frame(k))
    (root / "anno").mkdir(parents=True)
    (root / "anno" / "sequence1.txt").write_text("10 5\n11 6\n12 7\n")
    return root


def test_load_dataset_list_merges(tmp_path):
    m = load_dataset([make_tensoristd(tmp_path / "a"), make_tensoristd(tmp_path / "b")])
    assert m.format == "merged" and len(m) == 2 and m.num_frames == 6
    assert sorted(s.meta["part"] for s in m) == [0, 1]
    assert all(n.endswith("__sequence1") for n in m.sequences)
    assert [p["format"] for p in m.meta["parts"]] == ["tensoristd", "tensoristd"]
    assert m.split("all")[1].labels[2].points.tolist() == [[11.0, 6.0]]
