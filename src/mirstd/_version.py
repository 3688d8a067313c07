"""The package version, importable from any layer without importing the package root (and its API)."""

__version__ = "0.1.0"
