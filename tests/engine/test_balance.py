"""Training data of merged datasets: ``balance: true`` (equal clips per source), mixed-label masks and
``val_frames`` (at most N key frames per validation sequence)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mirstd.data.clips import ClipDataset
from mirstd.data.readers import merge_datasets
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.engine.data import balance_parts, clip_dataset
from mirstd.infer.evaluate import eval_dataset


def _seq(name: str, n: int, labels: list[FrameLabels] | None = None) -> Sequence:
    frames = [lambda k=k: np.full((16, 16), float(k), np.float32) for k in range(n)]
    return Sequence(name, frames, labels or [FrameLabels() for _ in range(n)])


def _ds(name: str, lengths: dict[str, int]) -> SequenceDataset:
    return SequenceDataset({n: _seq(n, k) for n, k in lengths.items()}, {"train": list(lengths)}, name)


def _merged() -> SequenceDataset:
    # part 0: 3 + 4 = 7 key frames; part 1: 2 key frames (and a name that collides with part 0)
    return merge_datasets([_ds("big", {"a": 3, "b": 4}), _ds("small", {"a": 2})])


def _parts(ds: ClipDataset) -> Counter:
    return Counter(ds.sequences[si].meta["part"] for si, _ in ds.index)


def test_balance_parts_equal_counts_smaller_repeated_in_order():
    ds = ClipDataset(_merged().split("train"), num_frames=2)
    assert _parts(ds) == {0: 7, 1: 2}
    before = list(ds.index)
    balance_parts(ds)
    assert _parts(ds) == {0: 7, 1: 7} and len(ds) == 14
    small = [k for k in before if ds.sequences[k[0]].meta["part"] == 1]
    big = [k for k in before if ds.sequences[k[0]].meta["part"] == 0]
    assert ds.index[:7] == big  # the largest part is unchanged
    assert ds.index[7:] == [small[k % 2] for k in range(7)]
    item = ds[len(ds) - 1]  # a repeated key frame loads like any other
    assert tuple(item["clip"].shape) == (1, 2, 16, 16) and item["meta"]["sequence"].endswith("__a")
    assert ds.sequences[ds.index[-1][0]].meta["part"] == 1


def test_balance_three_parts_and_skip_pad():
    m = merge_datasets([_ds("p", {"x": 10}), _ds("q", {"y": 4}), _ds("r", {"z": 3, "w": 3})])
    ds = ClipDataset(m.split("all"), num_frames=3, pad="skip")  # keys from frame 2 on: 8, 2, 1 + 1
    balance_parts(ds)
    assert _parts(ds) == {0: 8, 1: 8, 2: 8}
    assert all(i >= 2 for _, i in ds.index)  # only valid key frames are repeated


def test_balance_is_a_no_op_for_one_source():
    ds = ClipDataset([_seq("a", 3), _seq("b", 5)], num_frames=1)
    before = list(ds.index)
    balance_parts(ds)  # no "part" meta: everything is one source
    assert ds.index == before
    one = ClipDataset(merge_datasets([_ds("only", {"a": 3})]).split("all"), num_frames=1)
    balance_parts(one)
    assert len(one) == 3


@pytest.mark.parametrize("train,balanced", [(True, True), (False, False)])
def test_clip_dataset_balance_key(train, balanced):
    cfg = {"frames": 1, "pad": "repeat", "imgsz": 8, "balance": True, "flip": False}
    ds = clip_dataset(_merged().split("train"), cfg, channels=1, train=train)
    assert _parts(ds) == ({0: 7, 1: 7} if balanced else {0: 7, 1: 2})
    cfg["balance"] = False
    assert _parts(clip_dataset(_merged().split("train"), cfg, channels=1, train=True)) == {0: 7, 1: 2}


def test_mask_from_auto_boxes_where_present_else_points():
    boxed = [FrameLabels(boxes=[[2, 3, 6, 5]], has_boxes=True), FrameLabels(has_boxes=True)]
    pointed = [FrameLabels(points=[[8, 8]], has_points=True) for _ in range(2)]
    seqs = [_seq("boxes", 2, boxed), _seq("points", 2, pointed)]
    ds = ClipDataset(seqs, num_frames=1, mask_from="auto", mask_radius=1)
    m = [ds[k]["mask"].numpy().reshape(16, 16) for k in range(4)]
    assert all(ds[k]["has_mask"] for k in range(4))
    want = np.zeros((16, 16), np.uint8)
    want[3:5, 2:6] = 1
    np.testing.assert_array_equal(m[0], want)  # the filled box, not a square at its centre
    assert m[1].sum() == 0  # a labelled frame without targets: an empty mask
    want = np.zeros((16, 16), np.uint8)
    want[7:10, 7:10] = 1
    np.testing.assert_array_equal(m[2], want)  # points: (2r+1)^2 squares
    with pytest.raises(ValueError, match="'auto'"):
        ClipDataset(seqs, num_frames=1, mask_from="nope")


def test_eval_max_keys_evenly_spaced_per_sequence():
    seqs = [_seq("long", 11), _seq("short", 2)]
    ds = eval_dataset(seqs, frames=2, max_keys=3)
    assert ds.index == [(0, 0), (0, 5), (0, 10), (1, 0), (1, 1)]
    strided = eval_dataset(seqs, frames=2, key_stride=2, max_keys=4)  # keys 0, 2, .., 10 -> 4 of 6
    assert [i for si, i in strided.index if si == 0] == [0, 4, 6, 10] and len(strided) == 5
    assert len(eval_dataset(seqs, frames=2)) == 13 and len(eval_dataset(seqs, frames=2, max_keys=None)) == 13


def _pointed(name: str, n: int, xy: tuple[float, float]) -> Sequence:
    labels = [FrameLabels(points=[list(xy)], has_points=True) for _ in range(n)]
    return _seq(name, n, labels)


def _two_sources() -> SequenceDataset:
    # source 0: 6 frames, target at (4, 4); source 1: 2 frames, target at (12, 12)
    return merge_datasets(
        [
            SequenceDataset({"a": _pointed("a", 6, (4, 4))}, {"val": ["a"]}, "many"),
            SequenceDataset({"b": _pointed("b", 2, (12, 12))}, {"val": ["b"]}, "few"),
        ]
    )


def _blob_at_4_4(seq, i):  # a saved-prediction lookup: one blob, on source 0's target only
    p = np.zeros((16, 16), np.float32)
    p[3:6, 3:6] = 0.9
    return {"scores": p}


def test_run_evaluation_by_part_scores_each_source_apart():
    from mirstd.infer.evaluate import flat_numbers, run_evaluation
    from mirstd.metrics import Evaluator

    ds = eval_dataset(_two_sources().split("val"), frames=1)
    by_part = {0: Evaluator(protocols=["point_curve"]), 1: Evaluator(protocols=["point_curve"])}
    pooled = run_evaluation(_blob_at_4_4, ds, Evaluator(protocols=["point_curve"]), by_part=by_part)
    key = "pd@fapf1[point_curve]"
    per = {p: flat_numbers(e.compute())[key] for p, e in by_part.items()}
    assert per == {0: 1.0, 1: 0.0}  # source 0 found in all 6 frames, source 1 in none of its 2
    assert flat_numbers(pooled.compute())[key] == pytest.approx(6 / 8)  # pooled: the big source rules


def test_val_balance_selects_on_the_mean_over_sources(tmp_path):
    import csv

    import standins

    from mirstd.engine import train

    val = eval_dataset(_two_sources().split("val"), frames=3)
    metric = "pd@fapf1[point_curve]"
    run = train(
        train_data=standins.ClipSamples(8),
        val_data=val,
        model=standins.TINY,
        model_args={"num_frames": 3},
        progress=False,
        milestones=[],
        steps=2,
        batch=4,
        val_every=1,
        val_balance=True,
        metric=metric,
        project=str(tmp_path),
    )
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert len(rows) == 2
    for r in rows:
        per = [float(r[f"metrics/part{p}/{metric}"]) for p in (0, 1)]
        assert float(r[f"metrics/balanced/{metric}"]) == pytest.approx(np.mean(per))
    from mirstd.engine.checkpoint import load_checkpoint

    best = max(float(r[f"metrics/balanced/{metric}"]) for r in rows)
    assert load_checkpoint(run / "weights" / "best.pt")["best_metric"] == pytest.approx(best)
