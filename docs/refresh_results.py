"""Refresh a paper's committed tiny-study result: ``docs/results/<paper>/{summary.json,study.png}``.

    python docs/refresh_results.py mocov2 runs/mocov2_tiny   # copy from a finished study's OUT
    python docs/refresh_results.py mocov2 --run              # run `paperzoo reproduce mocov2` first
    python docs/refresh_results.py omni OUT --recipe tiny_view  # a second study: results/omni/tiny_view

The paper's page (docs/gen_pages.py) shows the arms table, the claims' verdicts and the plot
from these two files; commit them with the change that produced them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def check_summary(path: Path, paper: str) -> dict:
    """The study summary at ``path``, or a clear error if it is not ``paper``'s finished study."""
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: is this the OUT folder of a finished study?")
    summary = json.loads(path.read_text())
    if summary.get("paper") != paper:
        raise SystemExit(f"{path} is a study of {summary.get('paper')!r}, not {paper!r}")
    missing = [k for k in ("arms", "claims", "seeds", "shown_metrics") if k not in summary]
    if missing:
        raise SystemExit(f"{path} is not a study summary (no {', '.join(missing)})")
    unfinished = [
        arm for arm, info in summary["arms"].items() if not info.get("metrics")
    ]  # --collect over a partial study leaves arms without metrics
    if unfinished:
        raise SystemExit(f"{path}: arms {unfinished} have no results; finish the study first")
    return summary


def refresh(paper: str, out: Path, variant: str = "tiny") -> Path:
    summary = check_summary(out / "summary.json", paper)
    if summary.get("recipe") not in (None, variant):
        raise SystemExit(
            f"{out} is the {summary['recipe']!r} study of {paper}, not {variant!r}: "
            f"pass --recipe {summary['recipe']}"
        )
    plot = out / "study.png"
    if not plot.is_file():
        raise SystemExit(f"{plot} does not exist")
    dest = RESULTS / paper if variant == "tiny" else RESULTS / paper / variant
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "summary.json", dest / "summary.json")
    shutil.copyfile(plot, dest / "study.png")
    held = sum(c["holds"] for c in summary["claims"])
    print(f"{dest}: {held} of {len(summary['claims'])} claims hold")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paper")
    parser.add_argument("out", nargs="?", type=Path, help="a finished study's OUT folder")
    parser.add_argument("--run", action="store_true", help="run the tiny study first")
    parser.add_argument("--recipe", default="tiny",
                        help="the study's variant (default tiny; another goes to results/PAPER/VARIANT)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.run == (args.out is not None):
        parser.error("give either OUT or --run")
    if args.run:
        with tempfile.TemporaryDirectory(prefix=f"{args.paper}_study_") as tmp:
            cmd = ["paperzoo", "reproduce", args.paper, "--recipe", args.recipe, "--out", tmp]
            subprocess.run(cmd, check=True)
            refresh(args.paper, Path(tmp), args.recipe)
    else:
        refresh(args.paper, args.out, args.recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
