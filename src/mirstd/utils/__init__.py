"""Small shared helpers: atomic file writes, key=value configs, seeding, version records."""

from mirstd.utils.config import parse_overrides
from mirstd.utils.io import atomic_save_torch, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_save_torch", "parse_overrides"]
