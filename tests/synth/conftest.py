import pytest

from mirstd.synth.engine import plan_dataset, render
from mirstd.synth.presets import resolve_config


@pytest.fixture(scope="session")
def smoke_rendered():
    """All smoke sequences (seed 0, S0 uniform over [0.5, 10], 1–3 targets) with their target-free frames."""
    cfg = resolve_config("smoke", scr=[0.5, 10.0], targets=[0.2, 0.4, 0.4])
    return cfg, [render(cfg, 0, p, keep_background=True) for p in plan_dataset(cfg, 0)]
