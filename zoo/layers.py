"""Reusable, serialisable building blocks shared by the model families.

Every custom layer keeps one attribute per constructor argument and implements
``get_config()``, so models built from them round-trip through ``model.save("m.keras")``.
Only ``keras.layers`` and ``keras.ops`` are used, so the blocks run on any Keras backend.
"""

from __future__ import annotations

import keras
from keras import layers, ops

SHORTCUTS = ("zero_pad", "projection")


def check_choice(name: str, value, allowed) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed ones, as every builder does."""
    if value not in allowed:
        raise ValueError(f"Unknown {name}={value!r}; expected one of {list(allowed)}")


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
class ZeroPadShortcut(layers.Layer):
    """He et al.'s option-A shortcut: subsample by ``stride`` and zero-pad new channels.

    It adds no parameters, which is what keeps the CIFAR ResNets at their published
    sizes (0.27M parameters for ResNet-20).
    """

    def __init__(self, filters: int, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.stride = stride

    def call(self, inputs):
        x = inputs[:, :: self.stride, :: self.stride, :]
        missing = self.filters - ops.shape(x)[-1]
        if missing < 0:
            raise ValueError(f"ZeroPadShortcut cannot shrink {ops.shape(x)[-1]} channels to {self.filters}")
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [missing // 2, missing - missing // 2]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        height = None if height is None else -(-height // self.stride)
        width = None if width is None else -(-width // self.stride)
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


def conv_bn_relu(x, filters: int, kernel_size: int = 3, stride: int = 1, weight_decay: float = 0.0,
                 activation: bool = True, name: str = "conv"):
    """Convolution without bias, batch normalisation, then ReLU (unless ``activation=False``)."""
    x = layers.Conv2D(filters, kernel_size, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal",
                      kernel_regularizer=keras.regularizers.l2(weight_decay) if weight_decay else None,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if activation else x


def residual_block(x, filters: int, stride: int = 1, shortcut: str = "zero_pad",
                   weight_decay: float = 0.0, name: str = "block"):
    """The basic two-convolution residual block of He et al. (2016), post-activation form.

    ``shortcut`` chooses how the identity path matches a change of shape: ``"zero_pad"``
    (option A, parameter-free, as in the paper's CIFAR networks) or ``"projection"``
    (option B, a strided 1x1 convolution with batch norm).
    """
    check_choice("shortcut", shortcut, SHORTCUTS)
    residual = conv_bn_relu(x, filters, 3, stride, weight_decay, name=f"{name}_1")
    residual = conv_bn_relu(residual, filters, 3, 1, weight_decay, activation=False, name=f"{name}_2")
    identity = x
    if stride != 1 or x.shape[-1] != filters:
        if shortcut == "zero_pad":
            identity = ZeroPadShortcut(filters, stride, name=f"{name}_shortcut")(x)
        else:
            identity = conv_bn_relu(x, filters, 1, stride, weight_decay, activation=False,
                                    name=f"{name}_shortcut")
    x = layers.Add(name=f"{name}_add")([identity, residual])
    return layers.Activation("relu", name=f"{name}_out")(x)


def classifier_head(x, num_classes: int, classifier_activation: str | None, dropout: float = 0.0,
                    name: str = "predictions"):
    """Dropout then the output layer; the activation runs in float32 under mixed precision."""
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(num_classes, name=f"{name}_dense")(x)
    return layers.Activation(classifier_activation or "linear", dtype="float32", name=name)(x)


# The TensorFlow Playground's input features, computed from the raw point (x1, x2).
PLAYGROUND_FEATURES = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1_sq": lambda x1, x2: x1 * x1,
    "x2_sq": lambda x1, x2: x2 * x2,
    "x1_x2": lambda x1, x2: x1 * x2,
    "sin_x1": lambda x1, x2: ops.sin(x1),
    "sin_x2": lambda x1, x2: ops.sin(x2),
}


@keras.saving.register_keras_serializable(package="zoo")
class PlaygroundFeatures(layers.Layer):
    """Map raw 2-D points (x1, x2) to the chosen Playground features, in the given order.

    Part of the model, so a saved network takes the raw point, as the Playground's does.
    """

    def __init__(self, features=("x1", "x2"), **kwargs):
        super().__init__(**kwargs)
        unknown = [name for name in features if name not in PLAYGROUND_FEATURES]
        if unknown or not features:
            raise ValueError(f"Unknown or empty features {list(features)}; expected a non-empty subset "
                             f"of {list(PLAYGROUND_FEATURES)}")
        self.features = list(features)

    def call(self, inputs):
        x1, x2 = inputs[..., 0:1], inputs[..., 1:2]
        return ops.concatenate([PLAYGROUND_FEATURES[name](x1, x2) for name in self.features], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.features))

    def get_config(self):
        return {**super().get_config(), "features": self.features}


POOLINGS = ("max", "mean")


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
class Standardize(layers.Layer):
    """``(x - mean) / std`` with fixed statistics, or the inverse with ``invert=True``.

    Statistics are constructor arguments (not weights), so a forecaster takes and returns
    raw units and its saved file carries the scaling it was trained with.
    """

    def __init__(self, mean=0.0, std=1.0, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        as_list = lambda value: [float(item) for item in value] if isinstance(value, (list, tuple)) else float(value)
        self.mean, self.std = as_list(mean), as_list(std)
        if min(self.std if isinstance(self.std, list) else [self.std]) <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.invert = bool(invert)

    def call(self, inputs):
        mean = ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        std = ops.convert_to_tensor(self.std, dtype=inputs.dtype)
        return inputs * std + mean if self.invert else (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "invert": self.invert}


@keras.saving.register_keras_serializable(package="zoo")
class RelativeToLast(layers.Layer):
    """Subtract each feature's last value in the window from the whole window.

    A forecaster that sees only changes relative to "now" does not depend on the level
    of the series, so a trending series (CO2 keeps rising) does not push its inputs
    outside the range it was trained on.
    """

    def call(self, inputs):
        return inputs - inputs[:, -1:, :]

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="zoo")
class AddLastValue(layers.Layer):
    """Add the last observed value of feature ``index`` to every forecast step.

    A forecaster built on it predicts the change from the last value, so an untrained
    network starts at the naive (persistence) forecast it is meant to beat.
    """

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs):
        series, changes = inputs
        last = series[:, -1, self.index:self.index + 1]
        return changes + ops.cast(last, changes.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


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


# --- transformer blocks -------------------------------------------------------------------

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


@keras.saving.register_keras_serializable(package="zoo")
class TransformerBlock(layers.Layer):
    """A pre-norm transformer block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``.

    ``causal=True`` lets position t attend only to positions up to t (a decoder); a
    padding mask from the embedding keeps every position from attending to padding.
    The MLP is two dense layers with GELU, ``mlp_dim`` wide. ``dropout`` applies to both
    residual branches; ``attention_dropout`` to the attention weights, off by default:
    on 2 CPU cores it halved the training speed of IMDB's 400-token classifier (16
    against 30 examples/s: a random number for every query-key pair).
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.0,
                 causal: bool = False, epsilon: float = 1e-6, attention_dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.mlp_dim = int(embed_dim), int(num_heads), int(mlp_dim)
        self.dropout, self.causal, self.epsilon = float(dropout), bool(causal), float(epsilon)
        self.attention_dropout = float(attention_dropout)
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
        attention_mask = None
        if mask is not None:  # (batch, steps) -> (batch, query, key): never attend to padding
            attention_mask = ops.expand_dims(ops.cast(mask, "bool"), 1)
        normed = self.attention_norm(x)
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
                "attention_dropout": self.attention_dropout}


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


# Per-channel (mean, std) of ImageNet-trained networks, on the scale each one expects.
IMAGE_NORMALISATIONS = {
    "tf": None,  # [0, 255] -> [-1, 1]: Keras's MobileNetV2 weights
    "torch": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # on [0, 1]: torchvision's weights
    "caffe": ((103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),  # BGR on [0, 255]: Keras's ResNet50 weights
    "none": None,  # the network normalises itself (Keras's MobileNetV3 and EfficientNet)
}


@keras.saving.register_keras_serializable(package="zoo")
class ImagePreprocessing(layers.Layer):
    """Raw RGB pixels in [0, 255] (any dtype) to what an ImageNet-trained network expects.

    ``mode`` is one of ``IMAGE_NORMALISATIONS``: ``tf`` scales to [-1, 1], ``torch``
    standardises [0, 1] pixels with torchvision's mean and std, ``caffe`` flips RGB to BGR
    and subtracts the BGR mean, ``none`` only casts to float. Being a layer, it is saved
    with the model, so a fine-tuned classifier takes the same raw images as any other zoo model.
    """

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        check_choice("mode", mode, IMAGE_NORMALISATIONS)
        self.mode = mode

    def call(self, inputs):
        images = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "none":
            return images
        mean, std = IMAGE_NORMALISATIONS[self.mode]
        if self.mode == "torch":
            images = images / 255.0
        else:
            images = ops.flip(images, axis=-1)
        return (images - ops.convert_to_tensor(mean, images.dtype)) / ops.convert_to_tensor(std, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="zoo")
class RepeatChannels(layers.Layer):
    """Repeat the channels ``times`` times: a grey image as equal R, G and B for an RGB network."""

    def __init__(self, times: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.times = int(times)

    def call(self, inputs):
        return ops.repeat(inputs, self.times, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] * self.times)

    def get_config(self):
        return {**super().get_config(), "times": self.times}


def replica_position() -> tuple[int, int]:
    """(this replica's index, number of replicas) under tf.distribute; (0, 1) otherwise. For
    custom train steps (the GAN's, the VAE's) that split noise draws and scale losses per replica."""
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def replica_normal(batch_size, dim: int, seed):
    """This replica's ``(batch_size, dim)`` slice of one global batch of standard normal noise,
    so 1 and N replicas draw the same numbers (``seed``: a ``keras.random.SeedGenerator``)."""
    replica, replicas = replica_position()
    noise = keras.random.normal((batch_size * replicas, dim), seed=seed)
    return noise[replica * batch_size:(replica + 1) * batch_size]
