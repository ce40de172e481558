"""The digit Frechet distance and its shipped classifier, on the real bundled MNIST digits.

The shipped weights must classify the held-out digits; the distance must rank real digits
below blurred ones, blurred below noise, and punish mode collapse; the training script must
reproduce bit for bit and the shipped file must name the arguments that made it.
"""

from __future__ import annotations

import pytest
import torch

from paperzoo.train.digit_features import (
    DIGIT_FEATURE_DIM,
    _train_defaults,
    digit_classifier,
    digit_classifier_metadata,
    digit_features,
    digit_frechet_distance,
    digit_precision_recall,
    digit_reference_statistics,
    digit_validation_split,
    main,
    train_digit_classifier,
)

images_module = pytest.importorskip(
    "paperzoo.data.images", reason="the bundled digits need paperzoo-data[samples]"
)
pytest.importorskip("scipy.linalg", reason="the Frechet distance needs scipy (the fid extra)")


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 bundled MNIST digits: float (5000, 1, 28, 28) in [0, 1] and labels."""
    images, labels = images_module.load_mnist_sample()
    return images[:, None].float() / 255.0, labels


@pytest.fixture(scope="module")
def halves(digits):
    """Two disjoint random halves (2,500 each) of the real digits, with the second's labels."""
    images, labels = digits
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    a, b = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    return images[a], images[b], labels[b]


@pytest.fixture(scope="module")
def reference(halves):
    return digit_reference_statistics(halves[0])


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.v2.functional import gaussian_blur

    return gaussian_blur(images, kernel_size=[9, 9], sigma=[sigma, sigma])


# ----------------------------------------------------------------------- shipped weights


def test_shipped_weights_classify_held_out_digits(digits):
    images, labels = digits
    _, val_idx = digit_validation_split()
    assert len(val_idx) == 500 and torch.bincount(labels[val_idx]).tolist() == [50] * 10
    model = digit_classifier()
    with torch.inference_mode():
        predictions = model(images[val_idx]).argmax(1)
    accuracy = float((predictions == labels[val_idx]).float().mean())
    assert accuracy >= 0.95
    # The recorded number is this measurement (one digit of slack for another CPU's round-off).
    assert accuracy == pytest.approx(digit_classifier_metadata()["val_accuracy"], abs=0.0021)


def test_shipped_metadata_names_the_script_arguments():
    meta = digit_classifier_metadata()
    assert meta["format"] == "paperzoo.digit_classifier/1"
    # The shipped file was made by the command line with its defaults: rerunning them reproduces it.
    assert meta["arguments"] == _train_defaults()
    assert meta["command"].startswith("python -m paperzoo.train.digit_features train --out ")
    for name, value in meta["arguments"].items():
        if value is not None:
            assert f"--{name.replace('_', '-')} {value}" in meta["command"]
    assert (meta["train_size"], meta["val_size"]) == (4500, 500)
    assert meta["val_accuracy"] >= 0.97


# ---------------------------------------------------------------------- the distance


def test_frechet_distance_ranks_real_blur_noise_and_collapse(halves, reference):
    real_a, real_b, labels_b = halves
    noise = torch.rand(real_b.shape, generator=torch.Generator().manual_seed(1))
    same = digit_frechet_distance(real_b, reference)
    blurred = digit_frechet_distance(_gaussian_blur(real_b, 1.0), reference)
    noisy = digit_frechet_distance(noise, reference)
    collapsed = digit_frechet_distance(real_b[labels_b == 0], reference)
    # Measured with the shipped weights: same 3.3, blur 1535, noise 2829, one class 2119.
    assert same < 20.0
    assert blurred > 50 * same
    assert noisy > 1.4 * blurred
    assert collapsed > 50 * same
    # Images or precomputed statistics as `real` give the same number.
    assert digit_frechet_distance(real_b, real_a) == pytest.approx(same, rel=1e-9)


def test_precision_recall_sees_mode_collapse(halves):
    real_a, real_b, labels_b = halves
    real_a, real_b, labels_b = real_a[:1000], real_b[:1000], labels_b[:1000]
    matched = digit_precision_recall(real_b, real_a)
    collapsed = digit_precision_recall(real_b[labels_b == 1], real_a)
    assert matched["precision"] > 0.8 and matched["recall"] > 0.8
    # Ones are real digits (high precision) but cover a tenth of the real manifold.
    assert collapsed["precision"] > 0.8 and collapsed["recall"] < 0.5


# ------------------------------------------------------------------- input handling


def test_value_range_and_32px_padding_give_the_same_features(digits):
    images = digits[0][:256]
    features = digit_features(images)
    assert features.shape == (256, DIGIT_FEATURE_DIM) and features.dtype == torch.float32
    signed = digit_features(images * 2 - 1, value_range=(-1, 1))
    torch.testing.assert_close(signed, features, atol=1e-4, rtol=1e-4)
    as_uint8 = digit_features((images * 255).round().to(torch.uint8))
    torch.testing.assert_close(as_uint8, features, atol=1e-4, rtol=1e-4)
    padded = digit_features(torch.nn.functional.pad(images, (2, 2, 2, 2)))
    torch.testing.assert_close(padded, features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(digit_features(images, batch_size=7), features)


def test_inputs_outside_value_range_or_of_other_shapes_are_errors(digits):
    images = digits[0][:8]
    with pytest.raises(ValueError, match="value_range=\\(-1, 1\\)"):
        digit_features(images * 2 - 1)  # [-1, 1] images passed without value_range
    with pytest.raises(ValueError, match="28 x 28"):
        digit_features(torch.zeros(2, 1, 64, 64))
    with pytest.raises(ValueError, match="gray digits"):
        digit_features(torch.zeros(2, 3, 28, 28))


# -------------------------------------------------------------------------- training


def test_training_is_deterministic_and_the_cli_writes_the_same_file(tmp_path):
    kwargs = {"seed": 3, "epochs": 1, "train_limit": 256}
    first = train_digit_classifier(tmp_path / "a.safetensors", **kwargs)
    cli = ["--seed", "3", "--epochs", "1", "--train-limit", "256"]
    main(["train", "--out", str(tmp_path / "b.safetensors"), *cli])
    other_seed = train_digit_classifier(tmp_path / "c.safetensors", **{**kwargs, "seed": 4})
    a, b, c = (digit_classifier(tmp_path / f"{name}.safetensors").state_dict() for name in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    meta = digit_classifier_metadata(tmp_path / "b.safetensors")
    assert meta["arguments"] == {**_train_defaults(), **kwargs}
    assert meta["val_accuracy"] == first["val_accuracy"]
    assert meta["train_size"] == 256 and other_seed["arguments"]["seed"] == 4


@pytest.mark.slow
def test_full_training_reaches_the_shipped_accuracy(tmp_path):
    shipped = digit_classifier_metadata()
    meta = train_digit_classifier(tmp_path / "digit_classifier.safetensors", **shipped["arguments"])
    assert meta["val_accuracy"] == pytest.approx(shipped["val_accuracy"], abs=0.005)
