import subprocess
import sys

from paperzoo.core import create_dataset, get_dataset, list_datasets


def test_registered_datasets():
    assert {"mnist_sample", "digits_sample", "moving_digits"} <= set(list_datasets())
    spec = get_dataset("mnist_sample")
    assert spec.bundled and spec.num_classes == 10 and spec.modality == "image"
    assert get_dataset("moving_digits").modality == "video"


def test_listing_does_not_import_torch():
    code = (
        "import sys\n"
        "import paperzoo.data.plugin, paperzoo.data\n"
        "from paperzoo.core import list_datasets\n"
        "names = list_datasets()\n"
        "assert 'digits_sample' in names, names\n"
        "heavy = [m for m in ('torch', 'torchvision', 'av') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_create_dataset_by_name():
    ds = create_dataset("digits_sample", split="test", test_fraction=0.25, seed=1)
    image, label = ds[0]
    assert tuple(image.shape) == (1, 8, 8) and 0 <= label < 10
    assert len(ds) == sum(
        round(0.25 * n) for n in (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)
    )
