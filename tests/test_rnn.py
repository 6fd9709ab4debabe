"""Recurrent builders: masking really ignores padding, heads refuse what they cannot do,
and the forecaster works in raw units relative to the last value."""

import numpy as np
import pytest

import keras
import zoo


def padded(ids, extra):
    return np.concatenate([ids, np.zeros((ids.shape[0], extra), dtype="int32")], axis=1)


@pytest.mark.parametrize("options", [
    dict(cell="lstm", bidirectional=True, pooling="max"),
    dict(cell="gru", bidirectional=True, pooling="mean"),
    dict(cell="simple_rnn", bidirectional=False, pooling="last", units=(16, 8)),
])
def test_padding_does_not_change_the_prediction(options):
    keras.utils.set_random_seed(0)
    model = zoo.build("rnn", vocab_size=50, embedding_dim=8, **({"units": (16,)} | options))
    ids = np.random.default_rng(0).integers(1, 50, (3, 7)).astype("int32")
    ids[1, 5:] = 0  # a shorter review, already padded
    reference = model.predict(ids, verbose=0)
    for extra in (1, 9):
        np.testing.assert_allclose(model.predict(padded(ids, extra), verbose=0), reference, rtol=1e-5, atol=1e-6)
    # The padding is ignored, not the tokens: changing a real token changes the prediction.
    changed = ids.copy()
    changed[0, 0] = 1 + changed[0, 0] % 49
    assert not np.allclose(model.predict(changed, verbose=0)[0], reference[0])


def test_masked_pooling_of_an_all_padding_sequence_is_zero():
    layer = zoo.layers.MaskedPooling1D("max")
    values = np.ones((1, 3, 2), dtype="float32")
    np.testing.assert_array_equal(layer(values, mask=np.zeros((1, 3), dtype=bool)), np.zeros((1, 2)))


def test_language_model_is_causal_and_refuses_bidirectional():
    model = zoo.build("char_lstm", vocab_size=20, units=(16,))
    ids = np.random.default_rng(0).integers(0, 20, (1, 10)).astype("int32")
    later = ids.copy()
    later[0, 6:] = (later[0, 6:] + 1) % 20
    np.testing.assert_allclose(model.predict(later, verbose=0)[0, :6], model.predict(ids, verbose=0)[0, :6],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        zoo.build("rnn", head="language_model", bidirectional=True, vocab_size=20)


@pytest.mark.parametrize("bad, message", [
    (dict(cell="transformer"), "Unknown cell='transformer'"),
    (dict(head="regress"), "Unknown head='regress'"),
    (dict(pooling="sum"), "Unknown pooling='sum'"),
    (dict(units=()), "units must be a non-empty list"),
    (dict(vocab_size=None), "needs vocab_size"),
    (dict(head="forecast", window=0), "window >= 1"),
])
def test_bad_arguments_name_the_value_and_the_choices(bad, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("rnn", **bad)


def test_forecaster_is_level_invariant_and_in_raw_units():
    keras.utils.set_random_seed(0)
    model = zoo.build("lstm_forecaster", window=6, horizon=3, scale=2.0)
    window = np.linspace(0, 1, 6, dtype="float32").reshape(1, 6, 1)
    forecast = model.predict(window, verbose=0)
    # The same shape of series 300 units higher gets the same forecast, 300 units higher.
    np.testing.assert_allclose(model.predict(window + 300.0, verbose=0), forecast + 300.0, rtol=1e-5, atol=1e-3)
    assert forecast.shape == (1, 3)
