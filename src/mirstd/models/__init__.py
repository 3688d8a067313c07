"""Network families (one file each) behind a registry."""

from mirstd.models.registry import create, list_models, register_model
from mirstd.models.weights import load_reference

__all__ = ["create", "list_models", "load_reference", "register_model"]
