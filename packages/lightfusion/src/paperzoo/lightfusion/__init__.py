"""paperzoo.lightfusion: LightFusion (arXiv 2510.22946), fusing publicly available understanding
and generation models.

Modules: ``model`` (the fusion layers, the layer pairing, :class:`~.model.LightFusion` and its
factories), ``method`` (stage-1 rectified flow and guided sampling), ``convert`` (the official
checkpoint layout), ``recipes`` / ``reproduce`` / ``paper`` (the tiny study and the paper
recipe), ``data`` (the study's prompts).
"""

__all__: list[str] = []
