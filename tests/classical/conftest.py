"""Fixtures of the classical tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from classical_scenes import make_scene  # noqa: E402


@pytest.fixture
def scene1():
    return make_scene(64, 64, frames=1)


@pytest.fixture
def scene5():
    return make_scene(64, 64, frames=5)
