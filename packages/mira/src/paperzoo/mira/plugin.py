"""Hook implementations for paperzoo-mira.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only and names the benchmark
by import string.
"""

from __future__ import annotations

from paperzoo.core import MetricSpec, PaperSpec, hookimpl


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="mira",
            title=(
                "When Visualizing is the First Step to Reasoning: MIRA, a Benchmark for Visual "
                "Chain-of-Thought"
            ),
            authors=(
                "Yiyang Zhou",
                "Haoqin Tu",
                "Zijun Wang",
                "Zeyu Wang",
                "Niklas Muennighoff",
                "Fan Nie",
                "Yejin Choi",
                "James Zou",
                "Chaorui Deng",
                "Shen Yan",
                "Haoqi Fan",
                "Cihang Xie",
                "Huaxiu Yao",
                "Qinghao Ye",
            ),
            year=2025,
            arxiv="2511.02779",
            official_code="https://github.com/aiming-lab/MIRA",
            headline_results={
                "average relative gain of Visual-CoT over the text-only inputs, all models (%)": 33.7,
            },
            description=(
                "546 problems in 20 tasks (4 aspects) whose solution needs intermediate images; "
                "three input levels (direct, text-CoT, visual-CoT with the annotated "
                "intermediate images); <answer> exact match with an optional LLM judge, pass@k "
                "and majority vote."
            ),
        )
    ]


@hookimpl
def paperzoo_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="mira",
            factory="paperzoo.mira.benchmark:Mira",
            description=(
                "MIRA accuracy (%), per task and aspect, pass@k and majority vote; "
                "--set level=direct|text_cot|visual_cot --set samples=N [--set judge=true]"
            ),
            tags=("benchmark",),
        )
    ]
