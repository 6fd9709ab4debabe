"""Transformer layers: the pre-norm transformer block and the Vision Transformer's patch embedding."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


def self_attention(attention: layers.MultiHeadAttention, x, causal: bool, training=None):
    """``attention(x, x, use_causal_mask=causal)`` for a built ``MultiHeadAttention`` over
    ``(batch, steps, width)``, with its own weights, in fewer and plainer operations.

    Keras's layer makes three einsum projections (TensorFlow runs each as a broadcast batch
    matrix product) and builds the causal mask on every call. Here the three kernels,
    ``(width, heads, head_dim)`` each, are read side by side as one ``(width, 3 * width)``
    matrix for a single product, the output projection is one matrix product, and a fixed
    length's causal mask is a constant. Same function, same weights and saved layout.
    """
    width, heads = x.shape[-1], attention.num_heads
    head_dim = width // heads
    steps = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
    projections = (attention._query_dense, attention._key_dense, attention._value_dense)
    kernel = ops.concatenate([ops.reshape(ops.cast(dense.kernel, x.dtype), (width, width))
                              for dense in projections], axis=1)
    bias = ops.concatenate([ops.reshape(ops.cast(dense.bias, x.dtype), (width,)) for dense in projections])
    packed = ops.reshape(ops.matmul(x, kernel) + bias, (-1, steps, 3, heads, head_dim))
    query, key, value = ops.unstack(ops.transpose(packed, (2, 0, 3, 1, 4)), 3)  # (batch, heads, steps, head_dim)
    scores = ops.einsum("bhqd,bhkd->bhqk", query, key)
    scores = ops.multiply(scores, ops.cast(1.0 / np.sqrt(head_dim), scores.dtype))
    if causal:
        if isinstance(steps, int):  # a constant in the graph, not ops rebuilt every step
            allowed = np.tril(np.ones((steps, steps), dtype=bool))
        else:
            positions = ops.arange(steps)
            allowed = ops.expand_dims(positions, 1) >= ops.expand_dims(positions, 0)
        scores = ops.where(allowed, scores, ops.cast(-0.7 * np.finfo("float32").max if scores.dtype == "float32"
                                                     else -3e4, scores.dtype))
    weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
    weights = ops.cast(weights, value.dtype)
    if attention.dropout:
        weights = attention._dropout_layer(weights, training=training)
    attended = ops.reshape(ops.transpose(ops.einsum("bhqk,bhkd->bhqd", weights, value), (0, 2, 1, 3)),
                           (-1, steps, width))
    output = attention._output_dense
    return ops.matmul(attended, ops.reshape(ops.cast(output.kernel, x.dtype), (width, width))) + \
        ops.cast(output.bias, x.dtype)


@keras.saving.register_keras_serializable(package="zoo")
class TransformerBlock(layers.Layer):
    """A pre-norm transformer block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``.

    ``causal=True`` lets position t attend only to positions up to t (a decoder); a
    padding mask from the embedding keeps every position from attending to padding.
    The MLP is two dense layers with GELU, ``mlp_dim`` wide. ``dropout`` applies to both
    residual branches; ``attention_dropout`` to the attention weights, off by default
    because it draws a random number for every query-key pair (slow on long sequences).
    ``packed_attention`` (default) computes unmasked attention with ``self_attention``, the
    same function as Keras's layer in fewer operations; False calls Keras's layer always.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.0,
                 causal: bool = False, epsilon: float = 1e-6, attention_dropout: float = 0.0,
                 packed_attention: bool = True, **kwargs):
        super().__init__(**kwargs)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.mlp_dim = int(embed_dim), int(num_heads), int(mlp_dim)
        self.dropout, self.causal, self.epsilon = float(dropout), bool(causal), float(epsilon)
        self.attention_dropout, self.packed_attention = float(attention_dropout), bool(packed_attention)
        self.supports_masking = True
        self.attention_norm = layers.LayerNormalization(epsilon=epsilon, name="attention_norm")
        self.attention = layers.MultiHeadAttention(num_heads, embed_dim // num_heads,
                                                   dropout=attention_dropout, name="attention")
        self.mlp_norm = layers.LayerNormalization(epsilon=epsilon, name="mlp_norm")
        self.mlp_hidden = layers.Dense(mlp_dim, activation="gelu", name="mlp_hidden")
        self.mlp_output = layers.Dense(embed_dim, name="mlp_output")
        self.residual_dropout = layers.Dropout(dropout)

    def build(self, input_shape):
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_output.build((*input_shape[:-1], self.mlp_dim))
        self.built = True

    def call(self, x, mask=None, training=None):
        normed = self.attention_norm(x)
        if mask is None and self.packed_attention:
            attended = self_attention(self.attention, normed, self.causal, training=training)
        else:  # (batch, steps) -> (batch, query, key): never attend to padding
            attention_mask = None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), 1)
            attended = self.attention(normed, normed, attention_mask=attention_mask, use_causal_mask=self.causal,
                                      training=training)
        x = x + self.residual_dropout(attended, training=training)
        hidden = self.mlp_output(self.mlp_hidden(self.mlp_norm(x)))
        return x + self.residual_dropout(hidden, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout, "causal": self.causal, "epsilon": self.epsilon,
                "attention_dropout": self.attention_dropout, "packed_attention": self.packed_attention}


@keras.saving.register_keras_serializable(package="zoo")
class PatchEmbedding(layers.Layer):
    """Split an image into ``patch_size`` squares, project each to ``embed_dim``, prepend a
    learned class token and add learned position embeddings (Dosovitskiy et al. 2021)."""

    def __init__(self, patch_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size, self.embed_dim = int(patch_size), int(embed_dim)
        self.projection = layers.Conv2D(embed_dim, patch_size, strides=patch_size, name="projection")

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"Image size {height}x{width} is not divisible by patch_size={self.patch_size}")
        self.num_patches = (height // self.patch_size) * (width // self.patch_size)
        self.projection.build(input_shape)
        self.class_token = self.add_weight(shape=(1, 1, self.embed_dim), initializer="zeros", name="class_token")
        self.position_embedding = self.add_weight(shape=(1, self.num_patches + 1, self.embed_dim),
                                                  initializer=keras.initializers.RandomNormal(stddev=0.02),
                                                  name="position_embedding")
        self.built = True

    def call(self, images):
        patches = self.projection(images)
        patches = ops.reshape(patches, (ops.shape(patches)[0], self.num_patches, self.embed_dim))
        class_tokens = ops.broadcast_to(ops.cast(self.class_token, patches.dtype),
                                        (ops.shape(patches)[0], 1, self.embed_dim))
        return ops.concatenate([class_tokens, patches], axis=1) + ops.cast(self.position_embedding, patches.dtype)

    def compute_output_shape(self, input_shape):
        patches = (input_shape[1] // self.patch_size) * (input_shape[2] // self.patch_size)
        return (input_shape[0], patches + 1, self.embed_dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "embed_dim": self.embed_dim}
