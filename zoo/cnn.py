"""Convolutional networks: the classic MNIST convnet and He et al.'s CIFAR ResNets.

    model = zoo.build("mnist_convnet")                              # 28x28x1 -> 10
    model = zoo.build("resnet20", num_classes=10)                   # 32x32x3 -> 10
    model = zoo.cnn.resnet(depth=44, input_shape=(32, 32, 3))       # any 6n+2 depth

Image models take raw pixels: a ``Rescaling`` layer (``input_scale``, 1/255 by default)
is part of the network, so a saved model needs no separate preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from zoo.layers import SHORTCUTS, check_choice, classifier_head, conv_bn_relu, residual_block
from zoo.registry import register_model


def convnet(num_classes: int = 10, input_shape: Sequence[int] = (28, 28, 1),
            filters: Sequence[int] = (32, 64), dense_units: int = 128,
            dropout: Sequence[float] = (0.25, 0.5), input_scale: float = 1 / 255,
            classifier_activation: str | None = "softmax", name: str = "convnet") -> keras.Model:
    """Stacked 3x3 ReLU convolutions, one 2x2 max-pool, a dense layer and the classifier.

    With the defaults this is the classic Keras ``mnist_cnn`` network (Conv32-Conv64-
    MaxPool-Dropout-Dense128-Dropout-Dense10, 1.2M parameters).
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    if len(dropout) != 2:
        raise ValueError(f"dropout takes two rates (after pooling, before the classifier), got {dropout}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(input_scale, name="rescale")(inputs)
    for index, width in enumerate(filters):
        x = layers.Conv2D(width, 3, activation="relu", name=f"conv_{index}")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Dropout(dropout[0], name="pool_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = classifier_head(x, num_classes, classifier_activation, dropout=dropout[1])
    return keras.Model(inputs, outputs, name=name)


def resnet(depth: int = 20, num_classes: int = 10, input_shape: Sequence[int] = (32, 32, 3),
           width: int = 16, shortcut: str = "zero_pad", weight_decay: float = 1e-4,
           input_scale: float = 1 / 255,
           classifier_activation: str | None = "softmax", name: str | None = None) -> keras.Model:
    """He et al. (2016) residual network for small images: depth = 6n + 2.

    Three stages of ``n`` basic blocks with ``width``, 2x and 4x filters, the second and
    third starting with stride 2, then global average pooling and the classifier.
    The paper's augmentation (random flips, 4-pixel shifts) belongs to the input
    pipeline, not the network: Keras's random image layers cannot be XLA-compiled, and
    inside the model they would switch XLA off for the whole training step.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110 ...), got {depth}")
    check_choice("shortcut", shortcut, SHORTCUTS)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    blocks_per_stage = (depth - 2) // 6
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Rescaling(input_scale, name="rescale")(inputs)
    x = conv_bn_relu(x, width, 3, 1, weight_decay, name="stem")
    for stage in range(3):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            x = residual_block(x, width * 2**stage, stride, shortcut, weight_decay,
                               name=f"stage{stage + 1}_block{block + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


@register_model
def mnist_convnet(num_classes=10, input_shape=(28, 28, 1), **kwargs) -> keras.Model:
    """The classic Keras MNIST convnet (Conv32-Conv64-Dense128), 1.2M parameters."""
    return convnet(num_classes=num_classes, input_shape=input_shape, name="mnist_convnet", **kwargs)


@register_model
def small_convnet(num_classes=10, input_shape=(8, 8, 1), **kwargs) -> keras.Model:
    """A narrow convnet (Conv16-Conv32-Dense64) for 8x8 digits (in 0-255, as the recipes give them) and quick runs."""
    kwargs = {"filters": (16, 32), "dense_units": 64, **kwargs}
    return convnet(num_classes=num_classes, input_shape=input_shape, name="small_convnet", **kwargs)


@register_model
def resnet20(num_classes=10, input_shape=(32, 32, 3), **kwargs) -> keras.Model:
    """ResNet-20 for 32x32 images (He et al. 2016, Section 4.2)."""
    return resnet(20, num_classes=num_classes, input_shape=input_shape, name="resnet20", **kwargs)


@register_model
def resnet32(num_classes=10, input_shape=(32, 32, 3), **kwargs) -> keras.Model:
    """ResNet-32 for 32x32 images (He et al. 2016, Section 4.2)."""
    return resnet(32, num_classes=num_classes, input_shape=input_shape, name="resnet32", **kwargs)


@register_model
def resnet44(num_classes=10, input_shape=(32, 32, 3), **kwargs) -> keras.Model:
    """ResNet-44 for 32x32 images (He et al. 2016, Section 4.2)."""
    return resnet(44, num_classes=num_classes, input_shape=input_shape, name="resnet44", **kwargs)


@register_model
def resnet56(num_classes=10, input_shape=(32, 32, 3), **kwargs) -> keras.Model:
    """ResNet-56 for 32x32 images (He et al. 2016, Section 4.2)."""
    return resnet(56, num_classes=num_classes, input_shape=input_shape, name="resnet56", **kwargs)


@register_model
def resnet110(num_classes=10, input_shape=(32, 32, 3), **kwargs) -> keras.Model:
    """ResNet-110 for 32x32 images (He et al. 2016, Section 4.2)."""
    return resnet(110, num_classes=num_classes, input_shape=input_shape, name="resnet110", **kwargs)
