import pytest
import torch

from mirstd.models.yolox_loss import decode, make_grid, postprocess, simota_assign, yolox_loss


def _assign(raw: torch.Tensor, gt_cxcywh: torch.Tensor):
    d = decode(raw, 8)[0]
    return simota_assign(
        d[:, :4],
        d[:, 4],
        d[:, 5:],
        gt_cxcywh,
        torch.zeros(len(gt_cxcywh), dtype=torch.long),
        make_grid(64, 64),
        8,
    )


def test_decode_cell_centres():
    raw = torch.zeros(1, 6, 4, 4)
    raw[0, 0, 2, 3] = 0.5  # tx of row 2, col 3
    d = decode(raw, 8)[0]
    assert d[2 * 4 + 3, :4].tolist() == pytest.approx([28.0, 16.0, 8.0, 8.0])


def test_simota_hand_built_case():
    # spec §17.6: 64×64 grid, zero logits, one GT cx=cy=100, w=h=8
    fg, gt_idx, iou = _assign(torch.zeros(1, 6, 64, 64), torch.tensor([[100.0, 100.0, 8.0, 8.0]]))
    assert fg.nonzero().flatten().tolist() == [12 * 64 + 12]
    assert gt_idx.tolist() == [0]
    assert iou.item() == pytest.approx(16 / 112, abs=1e-6)


def test_simota_dynamic_k_and_conflict():
    # 16×16 predictions centred on cell centres; GT 16×16 at (104, 104). Cells 12/13 overlap 12×12
    # (IoU 144/368), their 8 neighbours 12×4 (IoU 48/464): top-10 sum = 2.39 → dynamic k = 2
    raw = torch.zeros(1, 6, 64, 64)
    raw[0, 0:2] = 0.5
    raw[0, 2:4] = torch.log(torch.tensor(2.0))
    fg, gt_idx, iou = _assign(raw, torch.tensor([[104.0, 104.0, 16.0, 16.0]]))
    assert int(fg.sum()) == 2
    assert set(fg.nonzero().flatten().tolist()) <= {12 * 64 + 12, 12 * 64 + 13, 13 * 64 + 12, 13 * 64 + 13}
    assert iou.tolist() == pytest.approx([144 / 368] * 2, rel=1e-5)
    # two GTs competing for the same cell: every positive goes to exactly one GT
    fg2, gt2, _ = _assign(raw, torch.tensor([[100.0, 100.0, 8.0, 8.0], [101.0, 101.0, 8.0, 8.0]]))
    assert len(gt2) == int(fg2.sum()) and set(gt2.tolist()) <= {0, 1}


def test_loss_terms_for_hand_case():
    raw = torch.zeros(2, 6, 64, 64, requires_grad=True)
    total, parts = yolox_loss(raw, [torch.tensor([[96.0, 96.0, 104.0, 104.0]]), torch.zeros(0, 4)])
    # one positive in the batch: obj = BCE(0, ·) over 2·4096 points = 8192·ln 2;
    # cls target = IoU = 1/7 → BCE(0, 1/7) = ln 2; iou term 5·(1 − (1/7)²)
    assert parts["num_fg"] == 1.0
    assert parts["obj"] == pytest.approx(8192 * 0.693147, rel=1e-5)
    assert parts["cls"] == pytest.approx(0.693147, rel=1e-5)
    assert parts["iou"] == pytest.approx(5 * (1 - 1 / 49), rel=1e-5)
    total.backward()
    assert torch.isfinite(raw.grad).all() and raw.grad[0, 4].abs().sum() > 0


def test_loss_rejects_batch_mismatch():
    with pytest.raises(ValueError, match="batch"):
        yolox_loss(torch.zeros(2, 6, 8, 8), [torch.zeros(0, 4)])


def test_postprocess_thresholds_and_nms():
    raw = torch.full((1, 6, 8, 8), -10.0)
    raw[0, :4] = 0.0
    raw[0, 4:, 3, 3] = 5.0  # confident cell, box centre (24, 24) size 8
    raw[0, 4:, 3, 4] = 4.0  # neighbour shifted left by half a cell: box [24, 32], IoU 1/3
    raw[0, 0, 3, 4] = -0.5
    out = postprocess(raw, conf=0.001, nms_iou=0.65)[0]
    assert out.shape == (2, 6)
    assert out[0, :4].tolist() == pytest.approx([20.0, 20.0, 28.0, 28.0])
    assert out[0, 4].item() == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item() ** 2, rel=1e-6)
    assert len(postprocess(raw, conf=0.001, nms_iou=0.3)[0]) == 1
