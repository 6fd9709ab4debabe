"""The TensorFlow Playground's data sets, generated as its src/dataset.ts does."""

import numpy as np
import pytest

from recipes.mlp import ALL_FEATURES, generate
from zoo.layers import PLAYGROUND_FEATURES


def rng():
    return np.random.default_rng(0)


def test_circle_is_a_disc_of_radius_2_5_inside_a_ring_from_3_5_to_5():
    points, labels = generate("circle", 500, 0.0, rng())
    radius = np.linalg.norm(points, axis=1)
    assert labels.sum() == 250
    assert radius[labels == 1].max() <= 2.5
    assert radius[labels == 0].min() >= 3.5 and radius[labels == 0].max() <= 5


def test_noise_flips_circle_labels_near_the_border_only():
    points, labels = generate("circle", 2000, 0.5, rng())
    radius = np.linalg.norm(points, axis=1)
    inner_positive = labels[radius <= 2.5].mean()
    assert 0.3 < inner_positive < 0.95  # some inner points now carry the outer label
    # At noise 0.25 a label is decided up to 1.25 * sqrt(2) = 1.77 away from its point, so points
    # farther than that from the border (radius 2.5) keep their labels, and some nearer ones flip.
    points, labels = generate("circle", 4000, 0.25, rng())
    radius = np.linalg.norm(points, axis=1)
    assert (radius < 0.7).any() and labels[radius < 0.7].all()
    assert (radius > 4.3).any() and not labels[radius > 4.3].any()
    near = (radius > 1.5) & (radius < 2.5)
    assert 0 < 1 - labels[near].mean() < 0.5


def test_xor_labels_follow_the_quadrant_and_keep_clear_of_the_axes():
    points, labels = generate("xor", 500, 0.0, rng())
    assert np.all(np.abs(points) >= 0.3)
    np.testing.assert_array_equal(labels, (points[:, 0] * points[:, 1] >= 0).astype(int))


def test_gauss_clusters_sit_at_plus_and_minus_two():
    points, labels = generate("gauss", 1000, 0.0, rng())
    np.testing.assert_allclose(points[labels == 1].mean(axis=0), [2, 2], atol=0.15)
    np.testing.assert_allclose(points[labels == 0].mean(axis=0), [-2, -2], atol=0.15)
    assert points[labels == 1].var(axis=0).mean() == pytest.approx(0.5, rel=0.2)


def test_spiral_arms_wind_out_to_radius_5_and_are_opposite():
    points, labels = generate("spiral", 500, 0.0, rng())
    radius = np.linalg.norm(points, axis=1)
    assert radius.max() < 5 and radius.min() == 0
    np.testing.assert_allclose(points[labels == 1], -points[labels == 0], atol=1e-5)  # shifted by pi


def test_regression_targets_lie_in_minus_one_to_one():
    points, targets = generate("reg_plane", 1200, 0.0, rng())
    np.testing.assert_allclose(targets, points.sum(axis=1) / 10, atol=1e-6)
    _, targets = generate("reg_gauss", 1200, 0.0, rng())
    assert targets.min() >= -1 and targets.max() <= 1 and targets.dtype == np.float32


def test_unknown_data_set():
    with pytest.raises(ValueError, match="Unknown dataset 'moons'"):
        generate("moons", 10, 0.0, rng())


def test_the_recipe_offers_exactly_the_features_the_model_layer_computes():
    # The recipe keeps its own list so `zoo run mlp --help` need not import Keras.
    assert ALL_FEATURES == tuple(PLAYGROUND_FEATURES)
