import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def stand_in_evaluator(monkeypatch):
    """Validation through the stand-in IoU evaluator (the real one lives in mirstd.metrics)."""
    import standins

    import mirstd.engine.trainer as v

    monkeypatch.setattr(v, "make_evaluator", standins.IoUEvaluator)
    return standins.IoUEvaluator
