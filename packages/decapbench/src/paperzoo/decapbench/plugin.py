"""Hook implementations for paperzoo-decapbench (imports paperzoo.core only)."""

from __future__ import annotations

from paperzoo.core import MetricSpec, PaperSpec, hookimpl

_PKG = "paperzoo.decapbench"


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="decapbench",
            title="Painting with Words: Elevating Detailed Image Captioning with Benchmark and "
            "Alignment Learning",
            authors=("Qinghao Ye", "Xianhan Zeng", "Fu Li", "Chunyuan Li", "Haoqi Fan"),
            year=2025,
            arxiv="2503.07906",
            venue="ICLR 2025",
            official_code="https://github.com/MAGAer13/DeCapBench",
            description="DeCapBench (400 ImageInWords test images with human oracle facts) and "
            "DCScore: a judge splits a caption into primitive information units, matches them "
            "to the oracle facts and verifies each against the image; FeedQuill turns the "
            "per-unit verification into preference pairs.",
        )
    ]


@hookimpl
def paperzoo_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="decapbench",
            factory=f"{_PKG}.benchmark:DeCapBench",
            description="DCScore on DeCapBench: (F1 + F1 of relevant units) / 2 x 100, "
            "judged (extract, 3 matchings, 3 verifications with the image)",
            tags=("benchmark", "captioning", "judged"),
        ),
        MetricSpec(
            name="feedquill",
            factory=f"{_PKG}.benchmark:FeedQuill",
            description="FeedQuill feedback: sample captions from the model under test, verify "
            "their units against the image, write DPO preference pairs (TRL format)",
            tags=("benchmark", "captioning", "judged", "preference-data"),
        ),
    ]
