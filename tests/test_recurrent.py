"""FusedLSTM is keras.layers.LSTM: same weights, same outputs and gradients (float64, so the
comparison is tight), the fast path is really taken, and everything else falls back."""

import numpy as np
import pytest

import keras
import zoo
from zoo.layers import FusedLSTM, recurrent

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the fast path is TensorFlow's")

tf = pytest.importorskip("tensorflow")
RNG = np.random.default_rng(0)


def pair(units=4, features=5, dtype="float64", batch=None, **options):
    """A stock and a fused layer with the same (non-default, so every gate matters) weights."""
    stock, fused = keras.layers.LSTM(units, dtype=dtype, **options), FusedLSTM(units, dtype=dtype, **options)
    stock.build((batch, None, features))
    fused.build((batch, None, features))
    stock.set_weights([weight + RNG.normal(size=weight.shape) * 0.3 for weight in stock.get_weights()])
    fused.set_weights(stock.get_weights())
    return stock, fused


def outputs_and_gradients(layer, inputs, mask=None, initial_state=None, training=True):
    variables = [tf.constant(inputs)] + ([] if initial_state is None else [tf.constant(s) for s in initial_state])

    @tf.function
    def run(*values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            state = None if initial_state is None else list(values[1:])
            results = layer(values[0], mask=mask, initial_state=state, training=training)
            results = list(results) if isinstance(results, (list, tuple)) else [results]
            # Weights that differ per position, so every output element reaches the gradient.
            loss = sum(tf.reduce_sum(r * tf.reshape(tf.cast(tf.range(tf.size(r)) % 7 - 3, r.dtype), tf.shape(r)))
                       for r in results)
        return results, tape.gradient(loss, list(values) + layer.trainable_weights)

    results, gradients = run(*variables)
    return [np.asarray(value) for value in results + gradients]


def assert_same(stock_values, fused_values, tolerance=1e-10):
    assert len(stock_values) == len(fused_values)
    for stock_value, fused_value in zip(stock_values, fused_values):
        np.testing.assert_allclose(fused_value, stock_value, rtol=tolerance, atol=tolerance)


def padding_mask(batch=4, steps=7):
    mask = np.ones((batch, steps), dtype=bool)
    mask[0, :3] = False   # left padding
    mask[1, 5:] = False   # right padding
    mask[2, :] = False    # nothing at all
    return mask


@tensorflow_only
@pytest.mark.parametrize("options, masked, with_state", [
    (dict(), False, False),
    (dict(return_sequences=True), False, True),
    (dict(return_sequences=True, return_state=True, go_backwards=True), False, True),
    (dict(return_sequences=True), True, False),
    (dict(return_state=True), True, True),
    (dict(return_sequences=True, return_state=True, go_backwards=True), True, True),
    (dict(return_sequences=True, zero_output_for_mask=True), True, True),
    (dict(return_sequences=True, use_bias=False, unit_forget_bias=False), True, False),
])
def test_outputs_and_gradients_equal_keras_lstm(options, masked, with_state):
    stock, fused = pair(**options)
    inputs = RNG.normal(size=(4, 7, 5))
    mask = padding_mask() if masked else None
    state = [RNG.normal(size=(4, 4)), RNG.normal(size=(4, 4))] if with_state else None
    before = recurrent.FAST_PATH_TRACES["count"]
    fused_values = outputs_and_gradients(fused, inputs, mask, state)
    assert recurrent.FAST_PATH_TRACES["count"] > before, "the fast path was not taken"
    assert_same(outputs_and_gradients(stock, inputs, mask, state), fused_values)


@tensorflow_only
def test_float32_matches_to_1e_5():
    stock, fused = pair(units=16, features=8, dtype="float32", return_sequences=True)
    inputs = RNG.normal(size=(3, 20, 8)).astype("float32")
    assert_same(outputs_and_gradients(stock, inputs, padding_mask(3, 20)),
                outputs_and_gradients(fused, inputs, padding_mask(3, 20)), tolerance=1e-5)


@tensorflow_only
@tensorflow_only
def test_inference_runs_keras_own_loop_with_the_same_outputs():
    stock, fused = pair(return_sequences=True)
    inputs = RNG.normal(size=(3, 7, 5))
    before = recurrent.FAST_PATH_TRACES["count"]
    np.testing.assert_allclose(fused(inputs, training=False), stock(inputs, training=False), rtol=1e-10, atol=1e-10)
    assert recurrent.FAST_PATH_TRACES["count"] == before  # what exporters trace is Keras's own graph


@pytest.mark.parametrize("options", [dict(activation="relu"), dict(recurrent_dropout=0.3), dict(unroll=True)])
def test_an_ineligible_layer_falls_back_and_still_matches(options):
    stock, fused = pair(return_sequences=True, **options)
    inputs = RNG.normal(size=(2, 6, 5))
    before = recurrent.FAST_PATH_TRACES["count"]
    trained = outputs_and_gradients(fused, inputs)  # training, where the fast path would run
    assert recurrent.FAST_PATH_TRACES["count"] == before
    if options.get("recurrent_dropout"):  # each layer draws its own masks: compare without them
        trained = outputs_and_gradients(fused, inputs, training=False)
    assert_same(outputs_and_gradients(stock, inputs, training=not options.get("recurrent_dropout")), trained)


def bidirectional_model(layer_class, vocab=30):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, 5, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(layer_class(6, return_sequences=True))(x)
    x = keras.layers.Bidirectional(layer_class(4))(x)  # stacked: the mask flows on
    return keras.Model(inputs, keras.layers.Dense(2)(x))


@tensorflow_only
def test_bidirectional_stack_with_masks_equals_keras():
    stock, fused = bidirectional_model(keras.layers.LSTM), bidirectional_model(FusedLSTM)
    fused.set_weights(stock.get_weights())
    assert all(isinstance(layer.backward_layer, FusedLSTM) for layer in fused.layers[2:4])
    ids = RNG.integers(1, 30, (4, 9)).astype("int32")
    ids[0, :4] = 0
    ids[1, 6:] = 0
    ids[2, :] = 0
    targets = RNG.normal(size=(4, 2))
    results = []
    for model in (stock, fused):
        with tf.GradientTape() as tape:
            predictions = model(ids, training=True)
            loss = tf.reduce_sum((predictions - targets) ** 2)
        results.append([predictions] + [tf.convert_to_tensor(gradient) for gradient in
                                        tape.gradient(loss, model.trainable_weights)])
    assert_same(*[[np.asarray(value) for value in values] for values in results], tolerance=1e-5)


@tensorflow_only
def test_weights_move_both_ways_and_a_keras_file_round_trips(tmp_path):
    stock, fused = bidirectional_model(keras.layers.LSTM), bidirectional_model(FusedLSTM)
    assert [(w.name, w.shape) for w in stock.weights] == [(w.name, w.shape) for w in fused.weights]
    stock.save_weights(tmp_path / "stock.weights.h5")
    fused.load_weights(tmp_path / "stock.weights.h5")
    ids = RNG.integers(0, 30, (3, 8)).astype("int32")
    np.testing.assert_allclose(fused.predict(ids, verbose=0), stock.predict(ids, verbose=0), rtol=1e-5, atol=1e-6)
    fused.save(tmp_path / "fused.keras")
    loaded = keras.models.load_model(tmp_path / "fused.keras")
    assert isinstance(loaded.layers[2].forward_layer, FusedLSTM)
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), fused.predict(ids, verbose=0))
    stock.set_weights(loaded.get_weights())
    np.testing.assert_allclose(stock.predict(ids, verbose=0), fused.predict(ids, verbose=0), rtol=1e-5, atol=1e-6)


@tensorflow_only
def test_input_dropout_uses_one_mask_per_sequence_like_keras():
    stock, fused = pair(return_sequences=True, dropout=0.5, seed=3)
    inputs = RNG.normal(size=(3, 6, 5))
    plain = outputs_and_gradients(fused, inputs, training=False)
    assert_same(outputs_and_gradients(stock, inputs, training=False), plain)  # inference: no dropout
    trained = outputs_and_gradients(fused, inputs, training=True)
    assert not np.allclose(trained[0], plain[0])
    # The same seed draws the same per-sequence mask as the stock layer.
    assert_same(outputs_and_gradients(stock, inputs, training=True), trained)


@tensorflow_only
def test_stateful_layers_carry_the_same_state():
    stock, fused = pair(return_sequences=True, stateful=True, batch=2)
    for _ in range(2):
        inputs = RNG.normal(size=(2, 3, 5))
        np.testing.assert_allclose(fused(inputs, training=True), stock(inputs, training=True), rtol=1e-10, atol=1e-10)


@tensorflow_only
def test_mixed_precision_runs_in_the_compute_dtype():
    stock, fused = pair(units=8, dtype=keras.DTypePolicy("mixed_bfloat16"), return_sequences=True)
    inputs = RNG.normal(size=(2, 10, 5)).astype("float32")
    result = fused(inputs, training=True)
    assert result.dtype == "bfloat16"
    np.testing.assert_allclose(np.asarray(tf.cast(result, "float32")), np.asarray(tf.cast(stock(inputs), "float32")),
                               atol=0.05)


@tensorflow_only
def test_a_tiny_language_model_learns_under_a_distribution_strategy():
    keras.utils.set_random_seed(0)
    ids = np.tile(np.arange(1, 9, dtype="int32"), (16, 2))[:, :12]
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = zoo.build("char_lstm", vocab_size=10, units=(16,), embedding_dim=8)
        model.compile(optimizer=keras.optimizers.Adam(0.02),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = recurrent.FAST_PATH_TRACES["count"]
    history = model.fit(ids[:, :-1], ids[:, 1:], batch_size=8, epochs=5, verbose=0)
    assert recurrent.FAST_PATH_TRACES["count"] > before
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


@tensorflow_only
@pytest.mark.parametrize("name", ["char_lstm", "imdb_bilstm"])
def test_fused_false_builds_the_stock_network_with_the_same_parameters(name):
    default, stock = zoo.build(name), zoo.build(name, fused=False)

    def lstms(model):
        found = [getattr(layer, "forward_layer", layer) for layer in model.layers]
        return [layer for layer in found if isinstance(layer, keras.layers.LSTM)]

    assert lstms(default) and all(isinstance(layer, FusedLSTM) for layer in lstms(default))
    assert lstms(stock) and not any(isinstance(layer, FusedLSTM) for layer in lstms(stock))
    assert default.count_params() == stock.count_params()


@pytest.mark.backends
def test_on_every_backend_a_fused_model_trains_saves_and_loads(tmp_path):
    """On JAX and PyTorch the layer is keras.layers.LSTM's own loop; on TensorFlow the fast path."""
    keras.utils.set_random_seed(0)
    model = zoo.build("rnn", vocab_size=20, embedding_dim=4, units=(6,), bidirectional=True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ids = np.random.default_rng(0).integers(0, 20, (8, 5)).astype("int32")
    model.fit(ids, np.arange(8) % 2, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[2].forward_layer, FusedLSTM)
    np.testing.assert_allclose(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0), rtol=1e-6, atol=1e-6)
