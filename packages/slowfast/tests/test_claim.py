"""The tiny study's claim, over 3 seeds: SlowFast beats Slow-only on motion direction (mean).

The README's Reproduce section gives the measured numbers (test direction accuracy per seed).
"""

import io

import pytest

from paperzoo.core import get_recipe
from paperzoo.train.study import run_study


@pytest.mark.slow
def test_slowfast_beats_slow_only_on_direction_over_three_seeds(tmp_path):
    summary = run_study(get_recipe("slowfast_tiny"), out_dir=tmp_path, stream=io.StringIO())
    (claim,) = summary["claims"]
    # README: the mean advantage is stable (+6.4, +8.1 points in two runs) but the every-seed
    # rule held in one run and not in the other (seed 0 lost by 0.8), so only the mean is checked.
    assert claim["delta"] > 0, claim
    arms = summary["arms"]
    # Both models learn the task well above chance (25 % direction, 5 % class).
    assert arms["slow"]["metrics"]["direction_acc"]["mean"] > 50
    assert arms["slowfast"]["metrics"]["top1"]["mean"] > 20
