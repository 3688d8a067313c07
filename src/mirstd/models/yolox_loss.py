"""YOLOX detection machinery for single-level (stride-8) heads: decoding, SimOTA, loss, post-processing.

Reference: Ge et al., "YOLOX: Exceeding YOLO Series in 2021" (arXiv:2107.08430), as used by
SSTNet/SMFNet (``yolo_training.py``, spec ``smfnet.md`` §7, §10). Raw head output layout:
``(B, 5+nc, h, w)`` = ``[tx, ty, tw, th, obj, cls_0..]`` logits. For grid cell (row i, col j)::

    cx = (tx + j)·s,  cy = (ty + i)·s,  w = exp(tw)·s,  h = exp(th)·s        (no +0.5 in decoding)

Coordinates are continuous pixel coordinates of the network input in which mirstd edge boxes live
(pixel k spans [k, k+1)), so an edge box ``(x1, y1, x2, y2)`` has centre ``((x1+x2)/2, (y1+y2)/2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mirstd.utils.boxes import batched_nms, cxcywh_to_xyxy, xyxy_to_cxcywh

CENTER_RADIUS = 2.5
IOU_COST_WEIGHT = 3.0
OUTSIDE_COST = 100000.0
TOPK_CANDIDATES = 10
IOU_LOSS_WEIGHT = 5.0


def make_grid(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """(h·w, 2) grid of (j, i) = (col, row), row-major like the flattened head output."""
    yv, xv = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xv, yv], -1).reshape(-1, 2).float()


def decode(raw: torch.Tensor, stride: int = 8) -> torch.Tensor:
    """Raw (B, 5+nc, h, w) → (B, h·w, 5+nc): boxes (cx, cy, w, h) in input pixels, obj/cls still logits."""
    b, c, h, w = raw.shape
    out = raw.float().flatten(2).transpose(1, 2)
    grid = make_grid(h, w, raw.device)
    xy = (out[..., :2] + grid) * stride
    wh = torch.exp(out[..., 2:4]) * stride
    return torch.cat([xy, wh, out[..., 4:]], -1)


def postprocess(
    raw: torch.Tensor, stride: int = 8, conf: float = 0.001, nms_iou: float = 0.65
) -> list[torch.Tensor]:
    """Lab evaluation (spec §13.3): score = σ(obj)·max_c σ(cls_c), keep score ≥ conf, class-aware NMS
    at ``nms_iou`` on that score, no top-k. Returns B tensors (N, 6): edge x1, y1, x2, y2, score, class."""
    dec = decode(raw, stride)
    out = []
    for d in dec:
        cls_prob, cls_id = torch.sigmoid(d[:, 5:]).max(dim=1)
        score = torch.sigmoid(d[:, 4]) * cls_prob
        keep = score >= conf
        boxes, score, cls_id = cxcywh_to_xyxy(d[keep, :4]), score[keep], cls_id[keep]
        k = batched_nms(boxes, score, cls_id, nms_iou)
        out.append(torch.cat([boxes[k], score[k, None], cls_id[k, None].float()], 1))
    return out


def raw_reg(raw_k: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """Raw box logits (num_fg, 4) = (tx, ty, tw, th) of the positives of one image (raw_k: (5+nc, h, w))."""
    return raw_k[:4].float().flatten(1).t()[fg]


def l1_target(gt: torch.Tensor, cells: torch.Tensor, stride: int = 8, eps: float = 1e-8) -> torch.Tensor:
    """YOLOX L1 regression target in raw units: (cx/s − j, cy/s − i, log(w/s + ε), log(h/s + ε)).

    ``gt`` (N, 4) cxcywh matched boxes, ``cells`` (N, 2) their positives' cells (j, i); the inverse of
    :func:`decode` (YOLOX ``get_l1_target``)."""
    return torch.cat([gt[:, :2] / stride - cells, torch.log(gt[:, 2:] / stride + eps)], 1)


def pairwise_iou_cxcywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU (N, M) between (cx, cy, w, h) boxes, no +1 (YOLOX ``bboxes_iou(xyxy=False)``)."""
    tl = torch.maximum(a[:, None, :2] - a[:, None, 2:] / 2, b[None, :, :2] - b[None, :, 2:] / 2)
    br = torch.minimum(a[:, None, :2] + a[:, None, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2)
    inter = (br - tl).prod(-1) * (tl < br).all(-1).float()
    return inter / (a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter)


def iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise 1 − IoU² between matched (cx, cy, w, h) boxes (YOLOX ``IOUloss``, type "iou")."""
    tl = torch.maximum(pred[:, :2] - pred[:, 2:] / 2, target[:, :2] - target[:, 2:] / 2)
    br = torch.minimum(pred[:, :2] + pred[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2)
    inter = (br - tl).prod(1) * (tl < br).all(1).to(pred.dtype)
    iou = inter / (pred[:, 2:].prod(1) + target[:, 2:].prod(1) - inter + 1e-16)
    return 1 - iou**2


@torch.no_grad()
def simota_assign(
    pred_boxes: torch.Tensor,
    obj_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    grid: torch.Tensor,
    stride: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimOTA for one image (spec §10 steps 1–9).

    Args: pred_boxes (A, 4) cxcywh; obj_logits (A,); cls_logits (A, nc); gt_boxes (G, 4) cxcywh;
    gt_classes (G,) long; grid (A, 2) cell (j, i).
    Returns ``fg_mask`` (A,) bool, ``matched_gt`` (num_fg,) GT index per positive, ``pred_iou``
    (num_fg,) IoU between each positive's prediction and its GT.

    Candidates: anchor centre c = ((j+.5)s, (i+.5)s) strictly inside a GT box or inside the square of
    half-side 2.5·s around a GT centre. cost = BCE(√(σ(cls)σ(obj)), onehot) + 3·(−log(IoU+1e-8))
    + 1e5·[not (in box and in centre)]; each GT takes its k = max(1, ⌊Σ top-min(10, #cand) IoUs⌋)
    cheapest candidates; a candidate claimed by several GTs goes to the cheapest one.
    """
    centres = (grid + 0.5) * stride  # (A, 2)
    g_lo = gt_boxes[:, None, :2] - gt_boxes[:, None, 2:] / 2
    g_hi = gt_boxes[:, None, :2] + gt_boxes[:, None, 2:] / 2
    in_box = torch.cat([centres - g_lo, g_hi - centres], -1).amin(-1) > 0  # (G, A)
    r = CENTER_RADIUS * stride
    c_d = (centres[None] - gt_boxes[:, None, :2]).abs()
    in_ctr = (r - c_d).amin(-1) > 0
    cand = (in_box | in_ctr).any(0)  # (A,)
    num_anchors, num_gt = pred_boxes.shape[0], gt_boxes.shape[0]
    fg_mask = torch.zeros(num_anchors, dtype=torch.bool, device=pred_boxes.device)
    if not cand.any():
        return fg_mask, gt_classes.new_zeros(0), pred_boxes.new_zeros(0)
    both = (in_box & in_ctr)[:, cand]  # (G, C)
    ious = pairwise_iou_cxcywh(gt_boxes, pred_boxes[cand])  # (G, C)
    iou_cost = -torch.log(ious + 1e-8)
    nc = cls_logits.shape[1]
    p = (torch.sigmoid(cls_logits[cand].float()) * torch.sigmoid(obj_logits[cand].float())[:, None]).sqrt()
    onehot = F.one_hot(gt_classes, nc).float()  # (G, nc)
    cls_cost = F.binary_cross_entropy(
        p[None].expand(num_gt, -1, -1), onehot[:, None].expand(-1, p.shape[0], -1), reduction="none"
    ).sum(-1)
    cost = cls_cost + IOU_COST_WEIGHT * iou_cost + OUTSIDE_COST * (~both).float()

    q = min(TOPK_CANDIDATES, ious.shape[1])
    dynamic_k = torch.clamp(ious.topk(q, dim=1).values.sum(1).int(), min=1)
    matching = torch.zeros_like(cost)
    for g in range(num_gt):
        idx = torch.topk(cost[g], int(dynamic_k[g]), largest=False).indices
        matching[g, idx] = 1.0
    multi = matching.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        matching[:, multi] = 0.0
        matching[best, multi.nonzero().squeeze(1)] = 1.0
    fg_cand = matching.sum(0) > 0
    cand_idx = cand.nonzero().squeeze(1)
    fg_mask[cand_idx[fg_cand]] = True
    matched_gt = matching[:, fg_cand].argmax(0)
    pred_iou = (matching * ious).sum(0)[fg_cand]
    return fg_mask, matched_gt, pred_iou


def yolox_loss(
    raw: torch.Tensor,
    gt_boxes: Sequence[torch.Tensor],
    gt_classes: Sequence[torch.Tensor] | None = None,
    stride: int = 8,
    min_size: float = 0.0,
    l1_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """YOLOX/SimOTA loss on one output level (spec §10).

    ``L = (5·Σ(1 − IoU²) + Σ BCE(obj, fg) + Σ_pos BCE(cls, onehot·IoU)) / max(num_fg, 1)``, sums over the
    whole batch (objectness over all points, the others over positives), not divided by batch size.

    Args:
        raw: head output (B, 5+nc, h, w).
        gt_boxes: B tensors (N, 4) of edge boxes in input pixels (the collate dict's ``boxes``).
        gt_classes: optional B tensors (N,) of class ids (default: all 0).
        min_size: drop GT boxes with width or height ≤ min_size (the lab loader uses 1, spec §11.3).
        l1_weight: weight of YOLOX's optional L1 term ``Σ_pos |t − t*| / num_fg`` on the raw box logits
            (target :func:`l1_target`); YOLOX switches it on for its last epochs, the SSTNet/SMFNet lab
            never does (spec §10: "No L1 term"), so the faithful default is 0. Reported as ``parts["l1"]``.
    Returns ``(total, {"iou", "obj", "cls", "num_fg"})``; parts are already divided by num_fg.
    """
    b, c, h, w = raw.shape
    nc = c - 5
    if len(gt_boxes) != b:
        raise ValueError(f"yolox_loss: batch['boxes'] has {len(gt_boxes)} entries for a batch of {b}")
    dec = decode(raw, stride)  # (B, A, 5+nc), fp32
    grid = make_grid(h, w, raw.device)
    obj_t = torch.zeros(dec.shape[:2], device=raw.device)
    box_p, box_t, cls_p, cls_t, l1_p, l1_t = [], [], [], [], [], []
    for k in range(b):
        boxes = torch.as_tensor(gt_boxes[k], dtype=torch.float32, device=raw.device).reshape(-1, 4)
        classes = (
            torch.zeros(len(boxes), dtype=torch.long, device=raw.device)
            if gt_classes is None
            else torch.as_tensor(gt_classes[k], device=raw.device).long().reshape(-1)
        )
        if len(classes) != len(boxes):
            raise ValueError(f"yolox_loss: sample {k} has {len(boxes)} boxes but {len(classes)} classes")
        ok = ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)
        boxes, classes = xyxy_to_cxcywh(boxes[ok]), classes[ok]
        if (classes >= nc).any() or (classes < 0).any():
            raise ValueError(f"yolox_loss: sample {k} has class ids outside [0, {nc})")
        if len(boxes) == 0:
            continue
        d = dec[k]
        fg, gt_idx, piou = simota_assign(
            d[:, :4].detach(), d[:, 4].detach(), d[:, 5:].detach(), boxes, classes, grid, stride
        )
        obj_t[k, fg] = 1.0
        box_p.append(d[fg, :4])
        box_t.append(boxes[gt_idx])
        cls_p.append(d[fg, 5:])
        cls_t.append(F.one_hot(classes[gt_idx], nc).float() * piou[:, None])
        if l1_weight > 0:
            l1_p.append(raw_reg(raw[k], fg))
            l1_t.append(l1_target(boxes[gt_idx], grid[fg], stride))
    num_fg = sum(len(p) for p in box_p)
    norm = float(max(num_fg, 1))
    l_obj = F.binary_cross_entropy_with_logits(dec[..., 4], obj_t, reduction="sum")
    if num_fg:
        l_iou = iou_loss(torch.cat(box_p), torch.cat(box_t)).sum()
        l_cls = F.binary_cross_entropy_with_logits(torch.cat(cls_p), torch.cat(cls_t), reduction="sum")
    else:
        l_iou = l_cls = dec.sum() * 0.0
    total = (IOU_LOSS_WEIGHT * l_iou + l_obj + l_cls) / norm
    l_l1 = None
    if l1_weight > 0:
        l_l1 = F.l1_loss(torch.cat(l1_p), torch.cat(l1_t), reduction="sum") if num_fg else dec.sum() * 0.0
        total = total + l1_weight * l_l1 / norm
    parts = {
        "iou": float(IOU_LOSS_WEIGHT * l_iou.detach() / norm),
        "obj": float(l_obj.detach() / norm),
        "cls": float(l_cls.detach() / norm),
        "num_fg": float(num_fg),
    }
    if l_l1 is not None:
        parts["l1"] = float(l1_weight * l_l1.detach() / norm)
    return total, parts
