"""Hook implementations for paperzoo-train: the evaluation protocols as metric specs.

Keep this module light: it imports only ``paperzoo.core`` (no torch), so listing metrics never
imports the trainer.
"""

from __future__ import annotations

from paperzoo.core import MetricSpec, hookimpl

__all__ = ["paperzoo_metrics"]


@hookimpl
def paperzoo_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="knn",
            factory="paperzoo.train.eval:knn_metric",
            description="weighted kNN top-1/top-5 on frozen features (InstDisc: k=200, T=0.07)",
            tags=("eval", "ssl"),
        ),
        MetricSpec(
            name="linear_probe",
            factory="paperzoo.train.eval:linear_probe_metric",
            description="linear probe top-1/top-5 on frozen features ('paper': MoCo SGD lr 30; 'tiny': L-BFGS)",
            tags=("eval", "ssl"),
        ),
        MetricSpec(
            name="retrieval",
            factory="paperzoo.train.retrieval:retrieval_metric",
            description=(
                "text<->video retrieval from a similarity matrix: R@1/5/10, MdR, MnR in both "
                "directions (ties count against the model)"
            ),
            tags=("eval", "retrieval"),
        ),
        MetricSpec(
            name="mAP",
            factory="paperzoo.train.multilabel:multilabel_map_metric",
            description=(
                "AudioSet-style multi-label mAP: the mean over classes of the step-wise average "
                "precision (scikit-learn's), classes without a positive left out and counted"
            ),
            tags=("eval", "multi-label", "audio"),
        ),
    ]
