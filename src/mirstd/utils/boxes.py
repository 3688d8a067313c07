"""Box operations in plain torch/NumPy (no torchvision): IoU, NMS, class-aware NMS, letterbox.

All boxes are mirstd *edge* boxes ``(x1, y1, x2, y2)`` (docs/design.md): ``x2 = last column + 1``,
so width = ``x2 − x1`` (no "+1" anywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (N, M) of edge boxes ``a`` (N, 4) and ``b`` (M, 4): |a∩b| / (|a| + |b| − |a∩b|)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp(min=torch.finfo(a.dtype).tiny if a.is_floating_point() else 1)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    half = b[..., 2:4] / 2
    return torch.cat([b[..., :2] - half, b[..., :2] + half], -1)


def xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([(b[..., :2] + b[..., 2:4]) / 2, b[..., 2:4] - b[..., :2]], -1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: visit boxes by descending score (stable for ties), keep a box unless its IoU with
    an already kept box is > ``iou_threshold``. Returns kept indices, highest score first
    (torchvision.ops.nms semantics)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order]).cpu().numpy()
    n = len(order)
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):  # loop runs over kept boxes only in effect; each suppresses a row at once
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Class-aware NMS: boxes of different ``idxs`` never suppress each other (coordinate-offset trick)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offset = idxs.to(boxes) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offset[:, None], scores, iou_threshold)


# ----------------------------------------------------------------------------------------------
# Letterbox (spec smfnet.md §11.4)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Letterbox:
    """Forward letterbox parameters: original (h, w), resized (nh, nw), paste offset (top, left), output size."""

    orig_hw: tuple[int, int]
    new_hw: tuple[int, int]
    offset: tuple[int, int]
    size: tuple[int, int]

    def boxes_to_letterbox(self, boxes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Edge boxes in the original frame → edge boxes in the letterboxed frame."""
        sy, sx = self.new_hw[0] / self.orig_hw[0], self.new_hw[1] / self.orig_hw[1]
        scale = _vec(boxes, [sx, sy, sx, sy])
        off = _vec(boxes, [self.offset[1], self.offset[0], self.offset[1], self.offset[0]])
        return boxes[..., :4] * scale + off

    def boxes_to_original(self, boxes: np.ndarray | torch.Tensor, mode: str = "exact"):
        """Letterboxed edge boxes → original-frame edge boxes (extra columns, e.g. score, kept).

        ``mode="exact"`` inverts the forward mapping (``int()`` size, integer offset). ``mode="lab"``
        reproduces the lab's inverse: new size = round(orig·min ratio), offset = (size − new)/2
        (float), which differs from the forward pass by up to one pixel of size (spec §11.4, quirk 12).
        """
        if mode == "exact":
            (nh, nw), (oy, ox) = self.new_hw, self.offset
        elif mode == "lab":
            r = min(self.size[0] / self.orig_hw[0], self.size[1] / self.orig_hw[1])
            nh, nw = round(self.orig_hw[0] * r), round(self.orig_hw[1] * r)
            oy, ox = (self.size[0] - nh) / 2, (self.size[1] - nw) / 2
        else:
            raise ValueError(f"letterbox inverse mode must be 'exact' or 'lab', got {mode!r}")
        h, w = self.orig_hw
        off = _vec(boxes, [ox, oy, ox, oy])
        scale = _vec(boxes, [w / nw, h / nh, w / nw, h / nh])
        out = boxes.clone() if torch.is_tensor(boxes) else np.array(boxes, dtype=np.float64, copy=True)
        out[..., :4] = (boxes[..., :4] - off) * scale
        return out


def _vec(like: np.ndarray | torch.Tensor, values: list[float]):
    if torch.is_tensor(like):
        return torch.tensor(
            values, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device
        )
    return np.asarray(values, dtype=np.float64)


def letterbox(
    image: np.ndarray,
    size: int | tuple[int, int] = 512,
    pad_value: float | None = None,
    interpolation: int = cv2.INTER_CUBIC,
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size`` (lab preprocessing, spec §11.4).

    scale = min(S_h/h, S_w/w); new size = (int(h·scale), int(w·scale)); bicubic resize; paste at
    ((S_h − nh)//2, (S_w − nw)//2) on a constant canvas. ``pad_value`` defaults to 128 for integer
    images and 128/255 for float images (the lab's grey canvas). The lab resizes with PIL bicubic;
    OpenCV's bicubic differs by a few grey levels at edges.
    Returns ``(out, Letterbox)``; ``Letterbox.boxes_to_original`` maps detections back.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"letterbox: image must be (H, W) or (H, W, C), got shape {image.shape}")
    sh, sw = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    r = min(sh / h, sw / w)
    nh, nw = int(h * r), int(w * r)
    if pad_value is None:
        pad_value = 128 if np.issubdtype(image.dtype, np.integer) else 128 / 255
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation) if (nh, nw) != (h, w) else image
    out = np.full((sh, sw) + image.shape[2:], pad_value, dtype=image.dtype)
    oy, ox = (sh - nh) // 2, (sw - nw) // 2
    out[oy : oy + nh, ox : ox + nw] = resized.reshape((nh, nw) + image.shape[2:])
    return out, Letterbox((h, w), (nh, nw), (oy, ox), (sh, sw))
