"""Image layers: He et al.'s residual blocks and zero-padding shortcut for the CIFAR ResNets,
and the layers that turn raw pixels into what an ImageNet-trained backbone expects.

    x = conv_bn_relu(images, 16, name="stem")
    x = residual_block(x, 32, stride=2, shortcut="zero_pad", name="stage2_block1")
    x = ImagePreprocessing("torch")(raw_rgb)           # [0, 255] -> torchvision's normalisation
"""

from __future__ import annotations

import keras
from keras import layers, ops

from zoo.layers.checks import check_choice

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
