"""Layers for sequences of token ids: masked pooling, keeping the last tokens, a token plus
position embedding, and the input of a sequence model (token ids or numeric steps)."""

from __future__ import annotations

import keras
from keras import layers, ops

from zoo.layers.checks import check_choice

POOLINGS = ("max", "mean")


def sequence_input(vocab_size: int | None, sequence_length: int | None, input_shape, model: str = "A classifier"):
    """The input of a sequence model: ``(steps, features)`` numbers when ``input_shape`` is
    given, else int32 token ids (any length when ``sequence_length`` is None)."""
    if input_shape is not None:
        if len(input_shape) != 2:
            raise ValueError(f"input_shape must be (steps, features) for a numeric sequence, got {input_shape}")
        return keras.Input(shape=tuple(input_shape), name="sequence")
    if not vocab_size:
        raise ValueError(f"{model} needs vocab_size (token ids) or input_shape=(steps, features)")
    return keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")


@keras.saving.register_keras_serializable(package="zoo")
class MaskedPooling1D(layers.Layer):
    """Max or mean over time that skips padded steps (Keras's own global max pooling ignores masks).

    A sequence whose every step is masked pools to zeros.
    """

    def __init__(self, mode: str = "max", **kwargs):
        super().__init__(**kwargs)
        check_choice("mode", mode, POOLINGS)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1) if self.mode == "max" else ops.mean(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        if self.mode == "mean":
            return ops.sum(inputs * valid, axis=1) / ops.maximum(ops.sum(valid, axis=1), 1.0)
        lowest = ops.cast(ops.min(inputs), inputs.dtype) - 1.0
        pooled = ops.max(ops.where(valid > 0, inputs, lowest), axis=1)
        return ops.where(ops.sum(valid, axis=1) > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="zoo")
class KeepLastTokens(layers.Layer):
    """Keep the last ``length`` tokens of right-padded id sequences, left-aligned and
    zero-padded to exactly ``length``.

    Reviews tend to end with their verdict, so truncating long texts at the front (as
    Keras's ``pad_sequences`` does by default) keeps more of the signal than cutting
    the end off, which is what ``TextVectorization(output_sequence_length=...)`` does.
    """

    def __init__(self, length: int, **kwargs):
        super().__init__(**kwargs)
        if int(length) < 1:
            raise ValueError(f"length must be positive, got {length}")
        self.length = int(length)

    def call(self, ids):
        ids = ops.pad(ids, [[0, 0], [0, self.length]])  # at least `length` steps, all padding at the end
        count = ops.sum(ops.cast(ops.not_equal(ids, 0), "int32"), axis=1, keepdims=True)
        start = ops.maximum(count - self.length, 0)
        positions = start + ops.expand_dims(ops.arange(self.length, dtype="int32"), 0)
        return ops.take_along_axis(ids, positions, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.length)

    def get_config(self):
        return {**super().get_config(), "length": self.length}


@keras.saving.register_keras_serializable(package="zoo")
class TokenAndPositionEmbedding(layers.Layer):
    """Token embedding plus a learned embedding of each position (up to ``max_length``).

    With ``mask_zero=True`` id 0 is padding and the layer emits a mask, which the
    transformer blocks turn into an attention mask.
    """

    def __init__(self, vocab_size: int, max_length: int, embed_dim: int, mask_zero: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.max_length, self.embed_dim = int(vocab_size), int(max_length), int(embed_dim)
        self.mask_zero = bool(mask_zero)
        self.tokens = layers.Embedding(self.vocab_size, self.embed_dim, name="tokens")
        self.positions = layers.Embedding(self.max_length, self.embed_dim, name="positions")

    def build(self, input_shape):
        self.tokens.build(input_shape)
        self.positions.build((None,))
        self.built = True

    def call(self, ids):
        steps = ops.shape(ids)[-1]
        return self.tokens(ids) + self.positions(ops.arange(steps))

    def compute_mask(self, ids, mask=None):
        return ops.not_equal(ids, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embed_dim)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "max_length": self.max_length,
                "embed_dim": self.embed_dim, "mask_zero": self.mask_zero}
