"""Shapeset-3x2 generator: label law, overlap rule, geometry, determinism."""
import numpy as np
import pytest

from minidl.data import SHAPESET_CLASS_PROBABILITIES, shapeset

# 1 - 1e-4 quantile of the chi-square distribution with 8 degrees of freedom (9 classes - 1).
CHI2_8DOF_QUANTILE_1E4 = 31.8276


@pytest.fixture(scope="module")
def sample():
    return shapeset(6000, seed=3, return_masks=True)


def test_shapes_dtype_and_range(sample):
    images, labels, first, second = sample
    assert images.shape == (6000, 32, 32) and images.dtype == np.float32
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(9))
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_class_frequencies_follow_the_paper(sample):
    _, labels, _, _ = sample
    n = labels.size
    observed = np.bincount(labels, minlength=9)
    expected = n * SHAPESET_CLASS_PROBABILITIES
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < CHI2_8DOF_QUANTILE_1E4, (observed, expected)
    # Each class separately, within 4.5 binomial standard deviations.
    std = np.sqrt(n * SHAPESET_CLASS_PROBABILITIES * (1 - SHAPESET_CLASS_PROBABILITIES))
    assert np.all(np.abs(observed - expected) < 4.5 * std)


def test_uniform_classes_would_fail_the_bound(sample):
    """The chi-square bound can fail: a generator with uniform classes exceeds it at this n."""
    n = sample[1].size
    expected = n * SHAPESET_CLASS_PROBABILITIES
    uniform = np.full(9, n / 9)
    assert ((uniform - expected) ** 2 / expected).sum() > CHI2_8DOF_QUANTILE_1E4


def test_second_shape_covers_at_most_half_of_the_first(sample):
    images, labels, first, second = sample
    two = labels >= 3
    assert not second[~two].any() and second[two].reshape(two.sum(), -1).any(axis=1).all()
    area = first.reshape(len(labels), -1).sum(axis=1)
    covered = (first & second).reshape(len(labels), -1).sum(axis=1)
    assert np.all(covered <= 0.5 * area)
    assert covered.max() > 0.3 * area[covered.argmax()]   # overlaps do happen, up to near the limit


def test_masks_are_what_the_image_shows(sample):
    images, labels, first, second = sample
    for i in range(50):
        image, a, b = images[i], first[i], second[i]
        background = image[~(a | b)]
        assert np.ptp(background) == 0                  # one background level
        assert np.ptp(image[b]) == 0 if b.any() else True
        assert np.ptp(image[a & ~b]) == 0               # each shape one grey level
        # The shape differs from the background by at least 0.25 (levels 0-0.3 vs 0.55-1, maybe inverted).
        assert abs(float(image[a & ~b][0]) - float(background[0])) >= 0.25


def test_shape_sizes_match_the_definition(sample):
    _, labels, first, _ = sample
    area = first.reshape(len(labels), -1).sum(axis=1)
    # Area = pi * scale^2 * proportion: E = pi * E[s^2] * E[p] = pi * (8^3 - 4^3)/(3 * 4) * 0.75 = 88.0 px.
    assert abs(area.mean() - 88.0) < 3.0
    assert area.min() >= 20


def test_deterministic_for_a_seed_and_prefix_stable():
    a_images, a_labels = shapeset(1500, seed=7)
    b_images, b_labels = shapeset(1500, seed=7)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    c_images, c_labels = shapeset(100, seed=7)
    np.testing.assert_array_equal(c_images, a_images[:100])
    np.testing.assert_array_equal(c_labels, a_labels[:100])


def test_different_seeds_differ():
    a_images, a_labels = shapeset(200, seed=0)
    b_images, b_labels = shapeset(200, seed=1)
    assert not np.array_equal(a_labels, b_labels)
    assert np.abs(a_images - b_images).mean() > 0.1


def test_uint8_output_is_the_rounded_float_output():
    images, _ = shapeset(64, seed=2)
    images8, _ = shapeset(64, seed=2, dtype=np.uint8)
    assert images8.dtype == np.uint8
    np.testing.assert_array_equal(images8, np.rint(images * 255.0).astype(np.uint8))


def test_other_image_size_and_empty():
    images, labels = shapeset(10, seed=0, image_size=48)
    assert images.shape == (10, 48, 48)
    images, labels = shapeset(0)
    assert images.shape == (0, 32, 32) and labels.shape == (0,)


@pytest.mark.parametrize("kwargs, error", [
    (dict(n=-1), ValueError), (dict(n=3, seed=-2), ValueError), (dict(n=3, image_size=8), ValueError),
    (dict(n=3, max_overlap=0.0), ValueError), (dict(n=3, dtype=np.int32), TypeError),
    (dict(n=True), ValueError), (dict(n=3, seed=False), ValueError), (dict(n=3, image_size=True), ValueError),
])
def test_bad_arguments(kwargs, error):
    """A bool n, seed or image size ('an integer is required' from deep inside) is refused by name."""
    with pytest.raises(error, match=None if error is TypeError else "shapeset: "):
        shapeset(**kwargs)


@pytest.mark.parametrize("bad", ["0.5", None, True, np.array([0.5, 0.6])])
def test_a_max_overlap_that_is_no_number_is_refused_by_name(bad):
    """"0.5" and None raised "'<' not supported between instances of 'float' and 'str'", an array NumPy's
    "truth value ... is ambiguous", and True was taken as 1.0."""
    with pytest.raises(TypeError, match="shapeset: max_overlap must be a number in \\(0, 1\\]"):
        shapeset(3, max_overlap=bad)


def test_dtype_none_is_the_default_float32():
    """np.dtype(None) is float64: dtype=None gave float64 images where the default is float32."""
    images, _ = shapeset(2, seed=1, dtype=None)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, shapeset(2, seed=1)[0])
