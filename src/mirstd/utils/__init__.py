"""Small shared helpers: atomic file writes, key=value configs, seeding, version records."""

from mirstd.utils.io import atomic_write_bytes, atomic_write_text, atomic_save_torch
from mirstd.utils.config import parse_overrides

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_save_torch", "parse_overrides"]
