"""mirstd: multi-frame infrared small target detection toolkit."""

__version__ = "0.1.0"
__all__ = ["__version__"]
