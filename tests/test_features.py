"""The fine-tune's feature cache (recipes/runtime/features.py): the split network computes what the
whole one does, cached features stay aligned with their labels, mirrored copies, and feature shifts."""

import numpy as np
import pytest

import keras
from recipes.runtime import features as feature_cache
from recipes.runtime.config import ConfigError
from tests.test_backbones import images
from zoo import backbones


def test_cached_split_computes_what_the_whole_model_computes(digit_checkpoint):
    """The recipe trains the top on features from the bottom: top(bottom(x)) must be the model."""
    path, x, _ = digit_checkpoint
    for features, shape, blocks in ((backbones.from_checkpoint(path), (8, 8, 1), 2),
                                    (backbones.backbone("mobilenet_v2", input_shape=(48, 48, 3)), (8, 8, 1), 5)):
        model = backbones.classifier(features, num_classes=10, input_shape=shape)
        bottom, top = feature_cache.split(model, blocks)
        batch = x[:6]
        np.testing.assert_allclose(top.predict(bottom.predict(batch, verbose=0), verbose=0),
                                   model.predict(batch, verbose=0), rtol=1e-4, atol=1e-6)
        assert set(map(id, top.weights)) <= set(map(id, model.weights))  # shared, not copied


def test_cached_features_stay_aligned_with_labels_on_a_reshuffling_dataset(tmp_path):
    """tfds and image folders reshuffle their files on every pass; features and labels must come from one."""
    import tensorflow as tf

    values = np.arange(100, dtype="float32")
    dataset = tf.data.Dataset.from_tensor_slices((values[:, None], values.astype("int64"))).shuffle(
        100, seed=0, reshuffle_each_iteration=True)
    identity = keras.Sequential([keras.Input((1,)), keras.layers.Identity()])
    lines = []
    features, labels, mirrored = feature_cache.features_and_labels(identity, dataset, str(tmp_path), 100, batch_size=16,
                                                              log=lines.append, every=0)
    assert not np.array_equal(labels, values)  # shuffled ...
    np.testing.assert_array_equal(features[:, 0], labels)  # ... and still paired
    assert mirrored is None
    # Progress: one line per batch here (every=0), counting the images done of the 100.
    assert len(lines) == 7 and lines[0].startswith("16 images of 100,") and lines[-1].startswith("100 images of 100,")


def test_mirrored_features_are_the_bottom_s_on_mirrored_images_paired_with_their_labels(tmp_path):
    import tensorflow as tf

    pictures = images((6, 5, 1), batch=40).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((pictures, np.arange(40))).shuffle(
        40, seed=0, reshuffle_each_iteration=True)  # reshuffles, like an image folder
    bottom = keras.Sequential([keras.Input((6, 5, 1)), keras.layers.Identity()])
    features, labels, mirrored = feature_cache.features_and_labels(bottom, dataset, str(tmp_path / "kept"), 40,
                                                              batch_size=16, mirror=True)
    # Written to the folder and read back memory-mapped, not held in memory.
    assert all(isinstance(array, np.memmap) for array in (features, labels, mirrored))
    assert sorted(file.name for file in (tmp_path / "kept").iterdir()) == ["features.npy", "labels.npy", "mirrored.npy"]
    np.testing.assert_array_equal(features, pictures[labels])
    np.testing.assert_array_equal(mirrored, pictures[labels][:, :, ::-1])
    # Phase 2 sees each example's own features or its mirrored ones, about half of each.
    choose = feature_cache.mirrored_half(seed=1)
    chosen, chosen_labels = choose((tf.constant(features), tf.constant(mirrored)), tf.constant(labels))
    chosen = np.asarray(chosen)
    flipped = [np.array_equal(c, m) and not np.array_equal(c, f) for c, f, m in zip(chosen, features, mirrored)]
    kept = [np.array_equal(c, f) for c, f in zip(chosen, features)]
    assert all(a != b for a, b in zip(flipped, kept)) and 8 <= sum(flipped) <= 32
    np.testing.assert_array_equal(chosen_labels, labels)
    from recipes.runtime.data import DataError

    with pytest.raises(DataError, match="declares 50 examples but gave 40"):
        feature_cache.features_and_labels(bottom, dataset, str(tmp_path / "short"), 50, batch_size=16)


def test_feature_shifts_move_each_map_by_whole_cells_within_the_bound():
    """Phase 2's augmentation: every map moved as a whole, by at most the fraction, edges reflected."""
    maps = np.arange(16 * 8 * 8 * 3, dtype="float32").reshape(16, 8, 8, 3)
    shifted = np.asarray(feature_cache.feature_shifts(maps.shape[1:], 0.25, seed=3)(maps, training=True))
    moves = set()
    for original, moved in zip(maps, shifted):
        padded = np.pad(original, ((2, 2), (2, 2), (0, 0)), mode="symmetric")  # keras "reflect": d c b a | a b c d
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(moved, padded[2 - dy:10 - dy, 2 - dx:10 - dx])]
        assert found, "a map was not moved as a whole by whole cells within 0.25 of its size"
        moves.add(found[0])
    assert len(moves) > 3  # each map its own move
    np.testing.assert_array_equal(feature_cache.feature_shifts(maps.shape[1:], 0.25, seed=3)(maps, training=False), maps)
    with pytest.raises(ConfigError, match="moves feature maps"):
        feature_cache.feature_shifts((128,), 0.25, seed=3)
