"""Inference on sequences, frame folders and videos: ``Predictor(weights).predict_sequence(seq)``."""

from mirstd.infer.predictor import Predictor

__all__ = ["Predictor"]
