"""paperzoo-asymsiam: asymmetric Siamese learning on paperzoo-mocov2's MoCo.

"On the Importance of Asymmetry for Siamese Representation Learning" (Wang, Fan, Tian, Kihara,
Chen; CVPR 2022, arXiv:2204.00613). Models ``asymsiam_resnet50`` (the official checkpoints
load) and ``asymsiam_resnet10_narrow``; the method ``asymsiam``; recipes ``asymsiam_tiny`` (a
claim study) and ``asymsiam_paper[_<design>]``.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
