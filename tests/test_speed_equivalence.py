"""The faster paths compute what they replace: the transformer block's attention against
Keras's own MultiHeadAttention call on the same weights, and saved models still load."""

import numpy as np
import pytest

import keras
import zoo
from zoo.layers import TransformerBlock
from zoo.layers.transformer import self_attention


def blocks(model):
    return [layer for layer in model.layers if isinstance(layer, TransformerBlock)]


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("attention_dropout", [0.0, 0.1])
def test_self_attention_matches_keras_multi_head_attention(causal, attention_dropout):
    keras.utils.set_random_seed(0)
    block = TransformerBlock(32, 4, 64, causal=causal, attention_dropout=attention_dropout)
    block.build((2, 12, 32))
    for variable in block.attention.weights:  # non-zero biases, so their place in the packing is checked
        variable.assign(np.random.default_rng(len(variable.path)).normal(0, 0.3, variable.shape))
    x = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=(2, 12, 32)).astype("float32"))
    expected = block.attention(x, x, use_causal_mask=causal, training=False)
    actual = self_attention(block.attention, x, causal, training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(actual), keras.ops.convert_to_numpy(expected),
                               rtol=1e-5, atol=1e-5)


def test_gpt_keeps_its_weight_layout_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build("char_gpt_tiny", vocab_size=20, dropout=0.0)
    attention = blocks(model)[0].attention
    assert [tuple(v.shape) for v in attention.weights] == [(32, 2, 16), (2, 16), (32, 2, 16), (2, 16),
                                                          (32, 2, 16), (2, 16), (2, 16, 32), (32,)]
    ids = np.random.default_rng(0).integers(0, 20, (3, 32)).astype("int32")
    path = tmp_path / "gpt.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(ids, verbose=0), model.predict(ids, verbose=0), rtol=1e-6,
                               atol=1e-6)


def test_packed_attention_off_is_keras_own_layer_with_the_same_result():
    keras.utils.set_random_seed(0)
    packed = zoo.build("char_gpt_tiny", vocab_size=20, dropout=0.0)
    config = packed.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "TransformerBlock":
            assert layer["config"]["packed_attention"] is True
            layer["config"]["packed_attention"] = False
    stock = keras.Model.from_config(config)
    stock.set_weights(packed.get_weights())
    assert all(not block.packed_attention for block in blocks(stock))
    ids = np.random.default_rng(0).integers(0, 20, (3, 32)).astype("int32")
    np.testing.assert_allclose(stock.predict(ids, verbose=0), packed.predict(ids, verbose=0), rtol=1e-5, atol=1e-5)
