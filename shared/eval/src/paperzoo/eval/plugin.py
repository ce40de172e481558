"""Hook implementations for paperzoo-eval: the ``paperzoo eval`` command (imports no openai)."""

from __future__ import annotations

from paperzoo.core import CommandSpec, hookimpl


@hookimpl
def paperzoo_commands() -> list[CommandSpec]:
    return [
        CommandSpec(
            name="eval",
            command="paperzoo.eval.cli:main",
            help="score a benchmark: judged, cached, resumable (paperzoo eval BENCHMARK --help)",
        )
    ]
