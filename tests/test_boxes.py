import numpy as np
import pytest
import torch

from mirstd.utils.boxes import batched_nms, box_iou, letterbox, nms


def _random_boxes(n: int, seed: int, size: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * 30 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


def _iou_ref(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _nms_ref(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep: list[int] = []
    for i in order:
        if all(_iou_ref(boxes[i].tolist(), boxes[j].tolist()) <= thr for j in keep):
            keep.append(i)
    return keep


def test_box_iou_values():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 5, 15, 15], [10, 10, 20, 20], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b)[0].numpy(), [25 / 175, 0.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("thr", [0.3, 0.65])
def test_nms_matches_bruteforce(seed, thr):
    boxes, scores = _random_boxes(120, seed)
    assert nms(boxes, scores, thr).tolist() == _nms_ref(boxes, scores, thr)


def test_batched_nms_is_per_class():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.5).tolist() == [0]
    boxes, scores = _random_boxes(80, 5)
    cls = torch.randint(0, 3, (80,), generator=torch.Generator().manual_seed(5))
    keep = set(batched_nms(boxes, scores, cls, 0.4).tolist())
    ref = set()
    for c in range(3):
        idx = (cls == c).nonzero().flatten()
        ref |= {int(idx[k]) for k in _nms_ref(boxes[idx], scores[idx], 0.4)}
    assert keep == ref


def test_nms_empty():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_letterbox_640x512_and_exact_inverse():
    img = np.random.default_rng(0).random((512, 640)).astype(np.float32)
    out, lb = letterbox(img, 512)
    assert out.shape == (512, 512)
    assert lb.new_hw == (409, 512) and lb.offset == (51, 0)  # spec §11.4
    assert out[0, 0] == pytest.approx(128 / 255)
    boxes = np.array([[100.0, 50.0, 108.0, 58.0], [0, 0, 640, 512]])
    fwd = lb.boxes_to_letterbox(boxes)
    np.testing.assert_allclose(fwd[1], [0, 51, 512, 460], atol=1e-9)
    np.testing.assert_allclose(lb.boxes_to_original(fwd), boxes, atol=1e-9)
    lab = lb.boxes_to_original(fwd, mode="lab")  # round(409.6)=410 rows: ≈0.25 % scale error
    assert not np.allclose(lab, boxes, atol=0.1)
    assert abs(lab[1, 3] - lab[1, 1] - 512 * 409 / 410) < 1e-6


def test_letterbox_torch_boxes_keep_score_column():
    img = np.zeros((480, 640, 3), dtype=np.uint8)
    out, lb = letterbox(img, 512)
    assert out.shape == (512, 512, 3) and out[0, 0, 0] == 128
    det = torch.tensor([[10.0, 74.0, 20.0, 84.0, 0.9, 0.0]])
    back = lb.boxes_to_original(det)
    assert back[0, 4:].tolist() == pytest.approx([0.9, 0.0])
    assert back[0, :4].tolist() == pytest.approx([12.5, 12.5, 25.0, 25.0])


def test_letterbox_rejects_bad_shape():
    with pytest.raises(ValueError, match="letterbox"):
        letterbox(np.zeros((2, 3, 4, 5)), 64)


def test_one_box_to_pixel_rule_for_masks_and_scoring():
    """GT masks from boxes (data) and boxes filled for scoring (metrics) share the pixel-centre rule."""
    import numpy as np

    from mirstd.data.convert import boxes_to_mask as gt_mask
    from mirstd.metrics.convert import boxes_to_mask as scored_mask
    from mirstd.utils.targets import box_pixels

    assert box_pixels(2, 5, 10) == slice(2, 5)  # integral: columns 2, 3, 4
    assert box_pixels(2.4, 5.6, 10) == slice(2, 6)  # centres 2.5 .. 5.5 lie inside [2.4, 5.6)
    assert box_pixels(2.6, 5.4, 10) == slice(3, 5)
    assert box_pixels(-3, 20, 10) == slice(0, 10) and box_pixels(4.2, 4.4, 10) == slice(4, 4)
    rng = np.random.RandomState(0)
    xy = rng.uniform(0, 30, (50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.3, 6, (50, 2))], 1)
    for b in boxes:
        assert np.array_equal(gt_mask(b[None], (32, 32)), scored_mask(b[None], (32, 32)))
