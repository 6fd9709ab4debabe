"""Reusable, serialisable building blocks shared by the model families.

Every custom layer keeps one attribute per constructor argument and implements
``get_config()``, so models built from them round-trip through ``model.save("m.keras")``.
Only ``keras.layers`` and ``keras.ops`` are used, so the blocks run on any Keras backend.
"""

from __future__ import annotations

import keras
from keras import layers, ops

SHORTCUTS = ("zero_pad", "projection")


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
    if shortcut not in SHORTCUTS:
        raise ValueError(f"Unknown shortcut={shortcut!r}; expected one of {list(SHORTCUTS)}")
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
