"""The tiny recipe's claim, over 3 seeds: SlowFast beats Slow-only on motion direction.

Measured (README, Reproduce): direction accuracy 98.9 +- 1.3 % for SlowFast vs 90.8 +- 4.4 %
for Slow-only of the same widths, SlowFast ahead on each of the 3 seeds.
"""

import pytest

from paperzoo.core import get_recipe
from paperzoo.core.run import run_recipe


@pytest.mark.slow
def test_slowfast_beats_slow_only_on_direction_over_three_seeds(tmp_path):
    overrides = ["moving_digits.seeds=0,1,2", "trainer.progress=false"]
    summary = run_recipe(get_recipe("slowfast_tiny"), out_dir=tmp_path, overrides=overrides)
    m = summary["metrics"]
    assert m["slowfast_tiny/direction_acc"] > m["slow_tiny/direction_acc"]
    assert m["seeds_won"] >= 2
    # Both models learn the task well above chance (25 % direction, 5 % class).
    assert m["slow_tiny/direction_acc"] > 50 and m["slowfast_tiny/top1"] > 20
