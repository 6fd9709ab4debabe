"""Recursive networks: the root equals the tree computed by hand, padding (however much,
wherever, whatever it holds) never changes it, one composition layer serves every tree,
and the classifier learns, alone and through the rnn recipe on 2 logical CPU replicas."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras
import recipes
import zoo
from recipes.runtime import config as config_lib
from recipes.runtime import data, train
from tests.test_recipes import quick_row_on_two_replicas
from zoo.recursive import TreeComposer, balanced_tree


def root_by_hand(tree, leaves, kernel, bias):
    """The root of ``tree`` (nested index pairs) composed with numpy: tanh(W [left; right] + b)."""
    if isinstance(tree, int):
        return leaves[tree]
    left, right = (root_by_hand(child, leaves, kernel, bias) for child in tree)
    return np.tanh(np.concatenate([left, right]) @ kernel + bias)


def encoder_of(model):
    """Token ids -> root vector: the model up to its tree layer."""
    return keras.Model(model.input, model.get_layer("tree").output)


def test_balanced_tree_pairs_neighbours_and_carries_the_odd_one_up():
    assert balanced_tree(0) is None and balanced_tree(1) == 0 and balanced_tree(2) == (0, 1)
    assert balanced_tree(3) == ((0, 1), 2)
    assert balanced_tree(5) == (((0, 1), (2, 3)), 4)
    assert balanced_tree(6) == (((0, 1), (2, 3)), (4, 5))
    with pytest.raises(ValueError, match="count must be at least 0, got -1"):
        balanced_tree(-1)


def test_three_tokens_compose_as_computed_by_hand():
    layer = TreeComposer()
    leaves = np.array([[[0.5, -1.0], [2.0, 0.0], [-0.3, 0.7]]], dtype="float32")  # a, b, c
    layer.build(leaves.shape)
    kernel = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, -0.5]], dtype="float32")  # [I; diag(.5, -.5)]
    bias = np.array([0.1, -0.2], dtype="float32")
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    a, b, c = leaves[0]
    ab = np.tanh(a + [0.5 * b[0], -0.5 * b[1]] + bias)  # ((a, b), c): a and b pair, c is carried up
    expected = np.tanh(ab + [0.5 * c[0], -0.5 * c[1]] + bias)
    np.testing.assert_allclose(layer(leaves)[0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("count", [1, 2, 5, 8, 11])
def test_the_root_is_the_balanced_tree_over_the_real_steps(count):
    keras.utils.set_random_seed(0)
    layer = TreeComposer(kernel_initializer="glorot_uniform")
    leaves = np.random.default_rng(count).normal(size=(1, 13, 4)).astype("float32")
    mask = np.arange(13)[None] < count
    root = layer(leaves, mask=mask)[0]
    expected = root_by_hand(balanced_tree(count), leaves[0], layer.kernel.numpy(), layer.bias.numpy())
    np.testing.assert_allclose(root, expected, rtol=1e-5, atol=1e-6)


def test_the_same_sentence_gets_the_same_root_however_the_batch_is_padded():
    keras.utils.set_random_seed(0)
    encoder = encoder_of(zoo.build("recursive_tiny", kernel_initializer="glorot_uniform"))
    rng = np.random.default_rng(0)
    sentence = rng.integers(1, 100, 5).astype("int32")

    def batch(length, companions, left_padded=False):
        """``sentence`` first, then companions of random lengths, all padded to ``length``."""
        ids = np.zeros((1 + companions, length), dtype="int32")
        for row, tokens in enumerate([sentence] + [rng.integers(1, 100, rng.integers(1, length + 1))
                                                   for _ in range(companions)]):
            if left_padded:
                ids[row, length - len(tokens):] = tokens
            else:
                ids[row, :len(tokens)] = tokens
        return ids

    reference = encoder(sentence[None])[0].numpy()
    assert np.abs(reference).max() > 0.05  # a real vector, not the all-padding zeros
    for length, companions, left_padded in [(5, 3, False), (6, 0, False), (17, 7, False), (64, 2, False),
                                            (9, 4, True), (33, 1, True)]:
        ids = batch(length, companions, left_padded)
        np.testing.assert_allclose(encoder(ids)[0], reference, rtol=1e-5, atol=1e-6)
        # predict runs a compiled graph; after a retrace the length is unknown there, so
        # both the unrolled and the looped levels are checked.
        np.testing.assert_allclose(encoder.predict(ids, verbose=0)[0], reference, rtol=1e-5, atol=1e-6)
    # Padding in the middle is dropped too: the tree is over the real tokens only.
    holes = np.zeros((1, 9), dtype="int32")
    holes[0, [0, 2, 3, 6, 8]] = sentence
    np.testing.assert_allclose(encoder(holes)[0], reference, rtol=1e-5, atol=1e-6)
    # The padding is ignored, not the tokens: changing a real token changes the root.
    changed = sentence.copy()
    changed[4] = 1 + changed[4] % 99
    assert not np.allclose(encoder(changed[None])[0], reference, atol=1e-4)


def test_padding_contents_change_neither_the_root_nor_the_gradients():
    keras.utils.set_random_seed(0)
    layer = TreeComposer()
    rng = np.random.default_rng(1)
    leaves = rng.normal(size=(3, 10, 6)).astype("float32")
    mask = np.ones((3, 10), dtype=bool)
    mask[0, 4:] = mask[1, 7:] = False
    mask[2, :] = False  # no real step at all
    garbage = np.where(mask[..., None], leaves, rng.normal(0, 1e3, leaves.shape)).astype("float32")
    roots = layer(leaves, mask=mask)
    np.testing.assert_array_equal(layer(garbage, mask=mask), roots)
    np.testing.assert_array_equal(roots[2], np.zeros(6))
    inputs = tf.constant(garbage)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        total = tf.reduce_sum(layer(inputs, mask=mask))
    gradient = tape.gradient(total, inputs).numpy()
    assert np.all(gradient[~mask] == 0) and np.abs(gradient[mask]).min() > 0
    # In a model, the embedding row of padding id 0 plays no part either.
    model = zoo.build("recursive_tiny")
    ids = np.array([[5, 7, 9, 0, 0, 0]], dtype="int32")
    before = model(ids).numpy()
    embedding = model.get_layer("embedding")
    table = embedding.embeddings.numpy()
    table[0] = 50.0
    embedding.embeddings.assign(table)
    np.testing.assert_array_equal(model(ids), before)


def test_one_composition_layer_serves_trees_of_every_size():
    layer = TreeComposer()
    for steps in (3, 400):
        layer(np.zeros((2, steps, 16), dtype="float32"))
    assert [tuple(weight.shape) for weight in layer.weights] == [(32, 16), (16,)]
    sizes = {zoo.build("recursive_tiny", sequence_length=length).count_params() for length in (None, 3, 400)}
    assert sizes == {100 * 8 + 2 * 8 * 8 + 8 + 8 * 2 + 2}  # embedding, the one composition, the head


def test_the_untrained_composition_averages_its_children():
    keras.utils.set_random_seed(0)
    layer = TreeComposer(activation="linear")
    leaves = np.random.default_rng(2).normal(size=(1, 4, 32)).astype("float32")
    root, mean = layer(leaves)[0].numpy(), leaves[0].mean(axis=0)
    assert np.abs(layer.kernel.numpy() - 0.5 * np.concatenate([np.eye(32), np.eye(32)])).max() < 0.06
    assert root @ mean / (np.linalg.norm(root) * np.linalg.norm(mean)) > 0.95  # about the mean, up to the noise
    glorot = TreeComposer(activation="linear", kernel_initializer="glorot_uniform")
    root = glorot(leaves)[0].numpy()
    assert root @ mean / (np.linalg.norm(root) * np.linalg.norm(mean)) < 0.5  # the test can tell


@pytest.mark.parametrize("bad, message", [
    (dict(units=(8, 8)), r"units must be one positive node size"),
    (dict(vocab_size=None), "needs vocab_size"),
    (dict(input_shape=(8,)), r"input_shape must be \(steps, features\)"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(activation="sigmoidal"), "sigmoidal"),
])
def test_bad_arguments_name_the_value(bad, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("recursive_tiny", **bad)


def digit_rows():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype("float32"), digits.target.astype("int32")  # 8 rows of 8 pixels


def test_recursive_classifier_learns_digits_read_as_rows():
    keras.utils.set_random_seed(0)
    images, labels = digit_rows()
    model = zoo.build("recursive_nn", units=(64,), input_shape=(8, 8), num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images[:1400], labels[:1400], batch_size=32, epochs=6, verbose=0)
    accuracy = model.evaluate(images[1400:], labels[1400:], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.85, accuracy  # chance is 0.1


def test_rnn_quick_mode_trains_imdb_recursive_on_two_replicas(tmp_path):
    row = quick_row_on_two_replicas(tmp_path, "rnn", "digits", "--model", "imdb_recursive", "--epochs", "4")
    assert (row["model"], row["dataset"], row["epochs"]) == ("imdb_recursive", "digits", 4)
    assert row["test_accuracy"] > 0.8, row["test_accuracy"]


def test_rnn_sentiment_with_a_recursive_model_under_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "network_reachable", lambda: True)  # mock_data stands in for the download
    module = recipes.load("rnn")
    config = config_lib.make_config(module.config, dataset="imdb_reviews", model="recursive_tiny", epochs=1,
                                    vocab_size=200, sequence_length=16, strategy="cpu", verbose=0,
                                    data_dir=str(tmp_path / "tfds"), output_dir=str(tmp_path / "run"),
                                    results_dir=str(tmp_path / "results"))
    with tfds.testing.mock_data(num_examples=64):
        row = train.run(module, config, command="test", log=lambda message: None)
    assert (row["dataset"], row["model"], row["epochs"]) == ("imdb_reviews", "recursive_tiny", 1)
    text_model = keras.models.load_model(tmp_path / "run" / "text_model.keras")
    assert text_model.predict(np.array(["a review in words"], dtype=object), verbose=0).shape == (1, 2)
