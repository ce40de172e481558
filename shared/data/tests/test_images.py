import logging
import shutil

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from paperzoo.data import TooManyBadFilesError
from paperzoo.data.images import (
    ArrayImageDataset,
    CSVImageDataset,
    ImageFolderDataset,
    TwoCropsTransform,
    decode_image_file,
    load_digits_sample,
    moco_v1_augmentation,
    moco_v2_augmentation,
    stratified_split,
)


def test_mnist_sample_is_real_mnist(mnist_sample):
    images, labels = mnist_sample
    assert images.shape == (5000, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and torch.equal(labels.bincount(), torch.full((10,), 500))
    # MNIST digits are centred by mass in a 20x20 box: the 4-px border is almost always blank.
    border = torch.cat([images[:, :3].flatten(1), images[:, -3:].flatten(1)], 1)
    assert border.float().mean() < 2.0 and images.float().mean() > 25.0
    assert images.max() == 255
    # Class means differ (a '1' has far less ink than a '0'): real digits, not noise.
    ink = torch.stack([images[labels == c].float().mean() for c in range(10)])
    assert ink[1] < 0.7 * ink[0]


def test_digits_sample():
    images, labels = load_digits_sample()
    assert images.shape == (1797, 8, 8) and images.dtype == torch.uint8
    assert int(images.max()) == 255 and labels.unique().tolist() == list(range(10))
    # 0..16 gray levels scaled by 255/16: every value is a multiple of ~15.94.
    assert set(np.unique(images.numpy()).tolist()) <= {round(k * 255 / 16) for k in range(17)}


def test_stratified_split_is_stratified_disjoint_and_seeded(mnist_sample):
    _, labels = mnist_sample
    train, test = stratified_split(labels, 0.2, seed=3)
    assert len(set(train.tolist()) & set(test.tolist())) == 0 and len(train) + len(test) == 5000
    assert torch.equal(labels[test].bincount(), torch.full((10,), 100))
    again, _ = stratified_split(labels, 0.2, seed=3)
    other, _ = stratified_split(labels, 0.2, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.5)


def test_array_dataset_hands_transform_a_chw_image(mnist_sample):
    images, labels = mnist_sample
    seen = []
    ds = ArrayImageDataset(images[:10], labels[:10], transform=lambda im: seen.append(im) or im)
    image, label = ds[3]
    assert isinstance(seen[0], tv_tensors.Image) and tuple(seen[0].shape) == (1, 28, 28)
    assert torch.equal(image[0], images[3]) and label == int(labels[3])
    rgb = ArrayImageDataset(np.zeros((2, 5, 6, 3), np.uint8), [0, 1])
    assert tuple(rgb[1][0].shape) == (3, 5, 6)
    with pytest.raises(TypeError, match="uint8"):
        ArrayImageDataset(images[:2].float(), labels[:2])


def _ops(compose):
    return [type(t).__name__ for t in compose.transforms]


def test_moco_v1_and_v2_match_the_official_recipes():
    v1 = moco_v1_augmentation(224)
    assert _ops(v1)[1:5] == [
        "RandomResizedCrop",
        "RandomGrayscale",
        "ColorJitter",
        "RandomHorizontalFlip",
    ]
    crop, gray, jitter = v1.transforms[1], v1.transforms[2], v1.transforms[3]
    assert crop.scale == (0.2, 1.0) and gray.p == 0.2
    assert jitter.brightness == (0.6, 1.4) and jitter.hue == (-0.4, 0.4)

    v2_aug = moco_v2_augmentation(224)
    names = _ops(v2_aug)
    assert names[1:6] == [
        "RandomResizedCrop",
        "RandomApply",
        "RandomGrayscale",
        "RandomApply",
        "RandomHorizontalFlip",
    ]
    jitter_apply, blur_apply = v2_aug.transforms[2], v2_aug.transforms[4]
    assert jitter_apply.p == 0.8 and jitter_apply.transforms[0].hue == (-0.1, 0.1)
    assert jitter_apply.transforms[0].saturation == (0.6, 1.4)
    assert blur_apply.p == 0.5 and blur_apply.transforms[0].sigma == [0.1, 2.0]
    assert "GaussianBlur" not in str(moco_v2_augmentation(32, blur=False))


@pytest.mark.parametrize("factory", [moco_v1_augmentation, moco_v2_augmentation])
def test_moco_pipelines_on_gray_and_rgb(factory, mnist_sample, skimage_dir):
    torch.manual_seed(0)
    aug = factory(28, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = aug(tv_tensors.Image(mnist_sample[0][0][None]))
    assert out.shape == (3, 28, 28) and out.dtype == torch.float32
    assert type(out) is torch.Tensor and out.min() >= -1.0 and out.max() <= 1.0
    photo = tv_tensors.Image(decode_image_file(skimage_dir / "chelsea.png"))
    out = factory(64)(photo)
    assert out.shape == (3, 64, 64)
    # normalised by ImageNet statistics: roughly centred
    assert abs(float(out.mean())) < 1.5


def test_two_crops_gives_two_different_views(mnist_sample):
    torch.manual_seed(0)
    two = TwoCropsTransform(moco_v2_augmentation(28))
    ds = ArrayImageDataset(mnist_sample[0][:4], mnist_sample[1][:4], transform=two)
    (q, k), _ = ds[0]
    assert q.shape == k.shape == (3, 28, 28) and not torch.allclose(q, k)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0][0].shape == (4, 3, 28, 28) and batch[1].shape == (4,)


# -- users' image folders --------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path, skimage_dir):
    root = tmp_path / "imgs"
    for cls, names in {
        "cat": ["chelsea.png", "coffee.png"],
        "space": ["astronaut.png", "rocket.jpg"],
    }.items():
        (root / cls).mkdir(parents=True)
        for name in names:
            shutil.copy(skimage_dir / name, root / cls / name)
    # a gray PNG and a BMP (Pillow fallback path)
    from PIL import Image

    Image.open(skimage_dir / "camera.png").save(root / "space" / "camera.bmp")
    return root


def test_image_folder_reads_real_images(image_folder):
    ds = ImageFolderDataset(image_folder)
    assert ds.classes == ["cat", "space"] and len(ds) == 5
    labels = [ds[i][1] for i in range(len(ds))]
    assert labels == [0, 0, 1, 1, 1]
    for i in range(len(ds)):
        image, _ = ds[i]
        assert (
            isinstance(image, tv_tensors.Image)
            and image.shape[0] == 3
            and image.dtype == torch.uint8
        )
    assert tuple(ds[0][0].shape) == (3, 300, 451)  # chelsea.png
    assert ds.skipped.count == 0


def test_image_folder_skips_and_counts_bad_files_then_errors(image_folder, caplog):
    (image_folder / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (image_folder / "cat" / "empty.jpg").write_bytes(b"")
    ds = ImageFolderDataset(image_folder, max_bad_fraction=0.3)  # 7 files -> up to 2 bad
    with caplog.at_level(logging.WARNING, logger="paperzoo.data"):
        items = [ds[i] for i in range(len(ds))]
    assert ds.skipped.count == 2 and "broken.png" in caplog.text and "empty.jpg" in caplog.text
    assert all(img.shape[0] == 3 for img, _ in items)  # bad entries replaced by good images
    assert ds.skipped.reset() == 2 and ds.skipped.count == 0

    strict = ImageFolderDataset(image_folder, max_bad_fraction=0.1)  # 0 allowed
    with pytest.raises(TooManyBadFilesError, match=r"broken\.png|empty\.jpg") as err:
        for i in range(len(strict)):
            strict[i]
    assert "max_bad_fraction" in str(err.value)


def test_image_folder_missing_or_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        ImageFolderDataset(tmp_path / "empty")


def test_csv_image_dataset(image_folder, tmp_path):
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(
        "path,label\n"
        f"{image_folder}/cat/chelsea.png,cat\n"
        "imgs/space/rocket.jpg,rocket\n"
        "imgs/space/astronaut.png,person\n"
    )
    ds = CSVImageDataset(csv_path, transform=v2.Resize((32, 32)))
    assert ds.classes == ["cat", "person", "rocket"] and len(ds) == 3
    assert [ds[i][1] for i in range(3)] == [0, 2, 1]
    assert tuple(ds[1][0].shape) == (3, 32, 32)
    ints = tmp_path / "ints.csv"
    ints.write_text(f"{image_folder}/cat/coffee.png,4\n")
    assert CSVImageDataset(ints)[0][1] == 4
    with pytest.raises(FileNotFoundError):
        CSVImageDataset(tmp_path / "missing.csv")
