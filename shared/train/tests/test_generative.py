"""Generative metrics against independent computations: scipy for the Frechet distance, loops
for precision/recall, numpy for the Inception Score, and torch-fidelity's own functions; the
FID Inception network loaded from a file written in the real weights' layout."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from paperzoo.train.generative import (
    FID_WEIGHTS_NAME,
    feature_statistics,
    fid_inception,
    frechet_distance,
    frechet_distance_from_features,
    inception_score,
    load_reference_statistics,
    precision_recall,
    save_reference_statistics,
)

scipy_linalg = pytest.importorskip("scipy.linalg", reason="the fid extra (scipy) is not installed")


# ------------------------------------------------------------------------- Frechet distance


def _scipy_frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    """The definition, written out: float64 moments, scipy's sqrtm, the trace."""
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    m1, m2 = f1.sum(0) / len(f1), f2.sum(0) / len(f2)
    c1 = (f1 - m1).T @ (f1 - m1) / (len(f1) - 1)
    c2 = (f2 - m2).T @ (f2 - m2) / (len(f2) - 1)
    root = scipy_linalg.sqrtm(c1 @ c2).real
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(root))


@pytest.mark.parametrize("seed", [0, 1])
def test_frechet_matches_scipy_and_is_symmetric(seed):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(16, 16))
    f1 = rng.normal(size=(400, 16)) @ mix
    f2 = rng.normal(size=(300, 16)) @ (mix + 0.3 * rng.normal(size=(16, 16))) + 0.5
    expected = _scipy_frechet(f1, f2)
    assert expected > 1.0
    ours = frechet_distance_from_features(f1, f2)
    assert ours == pytest.approx(expected, rel=1e-6)
    assert frechet_distance_from_features(f2, f1) == pytest.approx(ours, rel=1e-9)
    # Tensors (float32 on the way in) give the float64 answer on the float32-rounded values.
    t1, t2 = torch.from_numpy(f1).float(), torch.from_numpy(f2).float()
    expected32 = _scipy_frechet(t1.double().numpy(), t2.double().numpy())
    assert frechet_distance_from_features(t1, t2) == pytest.approx(expected32, rel=1e-6)


def test_frechet_matches_torch_fidelity():
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    rng = np.random.default_rng(3)
    f1, f2 = rng.normal(size=(500, 12)), rng.normal(size=(500, 12)) * 1.3 + 0.2
    mu1, s1 = feature_statistics(f1)
    mu2, s2 = feature_statistics(f2)
    theirs = metric_fid.fid_statistics_to_metric(
        {"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False
    )["frechet_inception_distance"]
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-6)


def test_frechet_zero_for_identical_sets_and_1d_closed_form():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 8))
    assert abs(frechet_distance_from_features(f, f.copy())) < 1e-8
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations.
    m1, s1, m2, s2 = 0.3, 1.7, -1.1, 0.4
    assert frechet_distance([m1], [[s1**2]], [m2], [[s2**2]]) == pytest.approx(
        (m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12
    )
    assert frechet_distance(m1, s1**2, m2, s2**2) == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2)


def test_feature_statistics_is_numpy_cov():
    f = np.random.default_rng(1).normal(size=(50, 5)).astype(np.float32)
    mu, sigma = feature_statistics(torch.from_numpy(f))
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (5, 5)
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-12)
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(f[:1])


def test_frechet_singular_product_retries_with_eps():
    # A product with no square root (nilpotent): sqrtm's answer is infinite, the retry with
    # eps * I on both diagonals has one. (Covariances of real features get here by round-off.)
    mu = np.zeros(2)
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's own "Matrix is singular" LinAlgWarning
        assert not np.isfinite(scipy_linalg.sqrtm(nilpotent)).all()
    eps = 1e-6
    with pytest.warns(RuntimeWarning, match="singular"):
        value = frechet_distance(mu, nilpotent, mu, np.eye(2), eps=eps)
    # sqrt((N + eps I)(1 + eps)) has trace 2 sqrt(eps (1 + eps)).
    assert value == pytest.approx(2.0 - 2 * 2 * np.sqrt(eps * (1 + eps)), rel=1e-9)
    with pytest.raises(ValueError, match="sigma1 and sigma2"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))


def test_frechet_large_imaginary_part_is_an_error():
    # Not a covariance: the product has negative eigenvalues, so its square root is complex.
    mu = np.zeros(2)
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(mu, np.diag([1.0, -4.0]), mu, np.eye(2))


# ------------------------------------------------------------------ ADM reference statistics


def test_reference_statistics_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    mu = rng.normal(size=7)
    a = rng.normal(size=(7, 7))
    sigma = a @ a.T
    path = tmp_path / "stats" / "ref.npz"
    save_reference_statistics(path, mu, sigma)
    assert sorted(p.name for p in path.parent.iterdir()) == ["ref.npz"]  # no temp file left
    with np.load(path) as npz:  # ADM's layout: plain mu / sigma arrays
        assert sorted(npz.files) == ["mu", "sigma"]
    mu2, sigma2 = load_reference_statistics(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
    # Overwrites in place, and accepts tensors.
    save_reference_statistics(path, torch.zeros(7), torch.eye(7))
    mu3, sigma3 = load_reference_statistics(path)
    assert mu3.sum() == 0 and np.array_equal(sigma3, np.eye(7))
    # An ADM reference batch with images and spatial statistics too reads its mu / sigma.
    adm = tmp_path / "VIRTUAL_tiny.npz"
    np.savez(
        adm, arr_0=np.zeros((2, 8, 8, 3), np.uint8), mu=mu, sigma=sigma, mu_s=mu, sigma_s=sigma
    )
    np.testing.assert_array_equal(load_reference_statistics(adm)[1], sigma)


def test_reference_statistics_without_mu_sigma_names_the_keys(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, arr_0=np.zeros((2, 8, 8, 3), np.uint8), arr_1=np.arange(2))
    with pytest.raises(KeyError, match=r"found keys \['arr_0', 'arr_1'\].*fid_inception"):
        load_reference_statistics(path)
    with pytest.raises(ValueError, match=r"mu must be \(D,\)"):
        save_reference_statistics(tmp_path / "bad.npz", np.zeros(3), np.eye(4))
    assert not (tmp_path / "bad.npz").exists()


# ------------------------------------------------------------------------ the FID Inception


def _fid_inception_state_dict() -> dict[str, torch.Tensor]:
    """Random weights in the layout of pt_inception-2015-12-05: pytorch-fid builds the network
    as torchvision's Inception3(num_classes=1008, aux_logits=False) and loads that file into it,
    so that module's state dict is the file's layout."""
    models = pytest.importorskip("torchvision.models")
    net = models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif key.endswith("bn.weight"):
            state[key] = 1 + 0.1 * torch.randn(value.shape, generator=g)
        elif value.ndim > 1:  # conv / fc weights, scaled so the activations stay finite
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
    return state


def test_fid_inception_loads_the_file_and_gives_pool3(tmp_path):
    pytest.importorskip("torch_fidelity", reason="torch-fidelity (the fid extra) is not installed")
    state = _fid_inception_state_dict()
    path = tmp_path / FID_WEIGHTS_NAME
    torch.save(state, path)
    net = fid_inception(path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    loaded = net.extractor.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key

    images = torch.randint(
        0, 256, (2, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        features = net(images)
        from_float = net(images.float() / 255)
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and (features >= 0).all()  # an average of ReLUs
    assert features.std() > 0 and not torch.equal(features[0], features[1])
    assert torch.equal(from_float, features)  # [0, 1] floats round back to the same uint8
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        net(images.float())

    logits = fid_inception(path, features="logits_unbiased")(images)
    assert logits.shape == (2, 1008)


def test_fid_against_reference_is_the_frechet_distance_of_the_clamped_features(tmp_path):
    pytest.importorskip("torch_fidelity", reason="torch-fidelity (the fid extra) is not installed")
    from paperzoo.train.generative import fid_against_reference

    weights = tmp_path / FID_WEIGHTS_NAME
    torch.save(_fid_inception_state_dict(), weights)
    g = torch.Generator().manual_seed(2)
    images = torch.rand(6, 3, 40, 40, generator=g) * 2.4 - 1.2  # some pixels outside [-1, 1]
    net = fid_inception(weights)
    with torch.no_grad():
        feats = net(((images + 1) / 2).clamp(0, 1)).numpy().astype(np.float64)
    ref = np.random.default_rng(0).normal(size=(8, 2048))
    mu, sigma = feature_statistics(ref)
    npz = tmp_path / "ref.npz"
    np.savez(npz, mu=mu, sigma=sigma)
    expected = frechet_distance(*feature_statistics(feats), mu, sigma)
    got = fid_against_reference(images, weights, npz, batch_size=4)  # two chunks
    assert got == pytest.approx(expected, rel=1e-6)


def test_fid_inception_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=FID_WEIGHTS_NAME.replace(".", r"\.")):
        fid_inception(tmp_path / "missing.pth")
    pytest.importorskip("torch_fidelity", reason="torch-fidelity (the fid extra) is not installed")
    state = _fid_inception_state_dict()
    del state["fc.weight"]
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(
        ValueError, match=r"(?s)not the FID Inception state dict.*Missing key.*fc\.weight"
    ):
        fid_inception(tmp_path / "wrong.pth")


# --------------------------------------------------------------------- precision and recall


def _brute_force_precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int
) -> tuple[float, float]:
    """Loops: each point's k-th nearest other point, then ball membership one pair at a time."""

    def radii(points):
        out = []
        for i, p in enumerate(points):
            d = sorted(float(np.sqrt(((p - q) ** 2).sum())) for j, q in enumerate(points) if j != i)
            out.append(d[k - 1])
        return out

    def inside(queries, points, r):
        hits = 0
        for q in queries:
            hits += any(np.sqrt(((q - p) ** 2).sum()) <= r[j] for j, p in enumerate(points))
        return hits / len(queries)

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


@pytest.mark.parametrize(("seed", "k"), [(0, 3), (1, 1), (2, 5)])
def test_precision_recall_matches_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(60, 4))
    fake = rng.normal(size=(45, 4)) * 1.5 + 0.7  # partly overlapping: neither 0 nor 1
    precision, recall = _brute_force_precision_recall(real, fake, k)
    assert 0 < precision < 1 or 0 < recall < 1  # not a trivial case
    ours = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, batch_size=7)
    assert ours == {"precision": precision, "recall": recall}


def test_precision_recall_matches_torch_fidelity():
    metric_prc = pytest.importorskip("torch_fidelity.metric_prc")
    g = torch.Generator().manual_seed(4)
    real = torch.randn(300, 16, generator=g, dtype=torch.float64)
    fake = torch.randn(250, 16, generator=g, dtype=torch.float64) * 1.2 + 0.3
    # torch-fidelity's convention: features_1 generated, features_2 real.
    precision, recall = metric_prc.calculate_precision_recall_full(fake, real, 3, 100)
    ours = precision_recall(real, fake, k=3, batch_size=64)
    # torch-fidelity averages in float32.
    assert ours["precision"] == pytest.approx(precision, abs=1e-6)
    assert ours["recall"] == pytest.approx(recall, abs=1e-6)


def test_precision_recall_limits_and_half_the_modes():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 8, generator=g)
    assert precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0}
    far = torch.randn(300, 8, generator=g) + 100.0
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}

    # Real: two 2-d blobs 20 apart; fake: fresh samples of one of them only. (In more
    # dimensions finite k-NN balls miss more of the tails: same-distribution precision < 1.)
    def blobs(n, which):
        points = torch.randn(n * len(which), 2, generator=g)
        points[:, 0] += torch.tensor(which).repeat_interleave(n) * 20.0
        return points

    real = blobs(1000, [0, 1])
    both = precision_recall(real, blobs(1000, [0, 1]), k=3)
    assert both["precision"] > 0.93 and both["recall"] > 0.93
    half = precision_recall(real, blobs(1000, [0]), k=3)
    assert half["precision"] > 0.93  # 0.95 to 0.99 over seeds
    assert half["recall"] == pytest.approx(0.5, abs=0.05)


def test_precision_recall_errors():
    with pytest.raises(ValueError, match="k=3 needs"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2))
    with pytest.raises(ValueError, match="dimension"):
        precision_recall(torch.randn(10, 2), torch.randn(10, 3))


# --------------------------------------------------------------------------- Inception Score


def _numpy_inception_score(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """openai/improved-gan's inception_score/model.py, on probabilities."""
    scores = []
    n = probs.shape[0]
    for i in range(splits):
        part = probs[(i * n // splits) : ((i + 1) * n // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_limits():
    uniform = torch.full((100, 10), 0.1)
    assert inception_score(uniform)["inception_score_mean"] == pytest.approx(1.0, abs=1e-12)
    assert inception_score(torch.zeros(100, 7))["inception_score_mean"] == pytest.approx(
        1.0
    )  # logits
    # One-hot predictions spread evenly over C classes within every split: IS = C exactly.
    n_classes, splits = 12, 5
    labels = torch.arange(n_classes * 4 * splits) % n_classes
    one_hot = torch.nn.functional.one_hot(labels, n_classes).double()
    result = inception_score(one_hot, splits=splits)
    assert result["inception_score_mean"] == pytest.approx(n_classes, rel=1e-12)
    assert result["inception_score_std"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("splits", [1, 10, 7])
def test_inception_score_matches_numpy_and_torch_fidelity(splits):
    rng = np.random.default_rng(splits)
    logits = rng.normal(size=(503, 20)) * 3
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    mean, std = _numpy_inception_score(probs, splits)
    assert mean > 1.5
    for given in (torch.from_numpy(probs), torch.from_numpy(logits)):
        result = inception_score(given, splits=splits)
        assert result["inception_score_mean"] == pytest.approx(mean, rel=1e-9)
        assert result["inception_score_std"] == pytest.approx(std, rel=1e-6, abs=1e-12)
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    theirs = metric_isc.isc_features_to_metric(
        torch.from_numpy(logits), splits=splits, shuffle=False
    )
    assert theirs["inception_score_mean"] == pytest.approx(mean, rel=1e-9)


def test_inception_score_errors():
    with pytest.raises(ValueError, match="cannot be cut into 10 splits"):
        inception_score(torch.rand(5, 3))
    with pytest.raises(ValueError, match="needs probabilities"):
        inception_score(torch.randn(20, 3), splits=2, from_logits=False)
