"""Fail if docs/cli.md misses a `paperzoo` sub-command or option (run by `nox -s docs`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paperzoo.core.cli import build_parser


def main() -> int:
    text = (Path(__file__).parent / "cli.md").read_text()
    parser = build_parser()
    missing = []
    for action in parser._actions:  # argparse exposes sub-parsers only through _actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if f"paperzoo {name}" not in text:
                    missing.append(f"paperzoo {name}")
                for opt in sub._actions:
                    for flag in opt.option_strings:
                        if flag.startswith("--") and flag != "--help" and flag not in text:
                            missing.append(f"paperzoo {name} {flag}")
    if missing:
        print("docs/cli.md does not document:\n  " + "\n  ".join(missing))
        return 1
    print("docs/cli.md covers every command and option")
    return 0


if __name__ == "__main__":
    sys.exit(main())
