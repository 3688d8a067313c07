"""Network families (one file each) behind a registry."""

from mirstd.models.registry import create, list_models, register_model

__all__ = ["create", "list_models", "register_model"]
