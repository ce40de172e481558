"""Hook implementations for paperzoo-vqva (imports paperzoo.core only).

Registers the paper, the ``intelligentbench`` benchmark (``paperzoo eval intelligentbench``)
and the ``paperzoo vqva-pipeline`` command; everything else is named by import string.
"""

from __future__ import annotations

from paperzoo.core import CommandSpec, MetricSpec, PaperSpec, hookimpl

_PKG = "paperzoo.vqva"


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="vqva",
            title="VQ-VA World: Towards High-Quality Visual Question-Visual Answering",
            authors=(
                "Chenhui Gou",
                "Zilong Chen",
                "Zeyu Wang",
                "Feng Li",
                "Deyao Zhu",
                "Zicheng Duan",
                "Kunchang Li",
                "Chaorui Deng",
                "Hongyi Yuan",
                "Haoqi Fan",
                "Cihang Xie",
                "Jianfei Cai",
                "Hamid Rezatofighi",
            ),
            year=2025,
            arxiv="2511.20573",
            official_code="https://github.com/chenhuigou/VQ-VA-World",
            headline_results={
                "IntelligentBench overall, LightFusion + VQ-VA World data": 53.06,
                "IntelligentBench overall, vanilla LightFusion": 7.78,
                "IntelligentBench overall, NanoBanana": 81.67,
                "IntelligentBench overall, GPT-Image": 82.64,
            },
            description=(
                "Visual question-visual answering: answering a visual question with an image. "
                "An agentic pipeline (classify/filter interleaved web documents, then "
                "retriever, filter, instruction generator, rewriter, reasoner) builds ~1.8M "
                "training samples; IntelligentBench (360 human-curated items: world 171, "
                "design 88, reasoning 101) is scored 0/1/2 by a VLM judge."
            ),
        )
    ]


@hookimpl
def paperzoo_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="intelligentbench",
            factory=f"{_PKG}.benchmark:intelligentbench",
            description=(
                "IntelligentBench (VQ-VA World): answer images from --predictions judged 0/1/2 "
                "by a VLM with the official rubric; sum / (2N) x 100 overall and per class "
                "(world, design, reasoning) over the scored items"
            ),
            tags=("benchmark",),
        )
    ]


@hookimpl
def paperzoo_commands() -> list[CommandSpec]:
    return [
        CommandSpec(
            name="vqva-pipeline",
            command=f"{_PKG}.pipeline:main",
            help="the VQ-VA World data pipeline over interleaved documents: resumable parquet "
            "shards (paperzoo vqva-pipeline --help)",
        )
    ]
