"""Run the test study (study_recipe) into OUT, for test_study.py's SIGKILL test.

Usage: run_study.py OUT [resume]
"""

from __future__ import annotations

import sys

from study_recipe import RECIPE

from paperzoo.train.study import run_study

if __name__ == "__main__":
    run_study(RECIPE, out_dir=sys.argv[1], resume=len(sys.argv) > 2 and sys.argv[2] == "resume")
