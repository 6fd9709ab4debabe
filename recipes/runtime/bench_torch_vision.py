"""The image networks of ``bench_torch`` in plain PyTorch, read off a built Keras model's graph.

    network = graph_twin(zoo.build("resnet20"))        # a torch.nn.Module, NCHW images in, logits out
    gan = GANTwin(zoo.build("dcgan"))                  # .generator and .discriminator, the same way

``graph_twin`` walks a Keras functional model node by node (nested models too: a
``zoo.backbones.classifier`` holds the backbone, which holds the keras.applications
MobileNetV2) and makes one torch module per Keras layer, sized from the layer's own kernel
shapes and config, so the twin has the same parameters at any input size. It runs the graph
in the same order, NCHW instead of NHWC. What differs from the Keras network, on purpose:

- a final softmax is left out: the twin returns logits, and the trainer's cross-entropy takes
  the log-softmax (Keras computes the same loss from the probabilities);
- ``Flatten`` and ``Reshape`` order the features channels-first, a permutation of the next
  Dense layer's rows, which with random weights is the same network;
- "same" padding is Keras's, computed per layer: an odd total pads one more pixel at the
  bottom and right (``ZeroPad2d`` before the convolution), as TensorFlow does.

A Keras layer that is not trainable gives parameters with ``requires_grad=False``, and a
frozen BatchNormalization stays in eval mode through ``module.train()``, as Keras 3 runs a
non-trainable BatchNormalization in inference mode. BatchNorm keeps Keras's epsilon and
momentum (torch's momentum is 1 - Keras's), and a kernel's L2 regularizer becomes
``l2_penalties``, which the trainer adds to the loss as Keras does. With Keras's weights
copied in, a twin gives Keras's outputs (tests/test_bench_torch_weights.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"linear": nn.Identity, "softmax": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def _activation(name) -> nn.Module:
    name = name or "linear"
    if name not in _ACTIVATIONS:
        raise ValueError(f"No PyTorch twin for activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class Rescale(nn.Module):
    def __init__(self, scale: float, offset: float):
        super().__init__()
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x):
        return x * self.scale + self.offset


class Preprocess(nn.Module):
    """``zoo.layers.ImagePreprocessing`` on NCHW images."""

    def __init__(self, mode: str, mean=None, std=None):
        super().__init__()
        self.mode = mode
        self.register_buffer("mean", torch.tensor(mean or (0.0, 0.0, 0.0)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std or (1.0, 1.0, 1.0)).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "none":
            return x
        x = x / 255.0 if self.mode == "torch" else x.flip(1)
        return (x - self.mean) / self.std


class Lambda(nn.Module):
    """A parameter-free step (pooling, reshaping, resizing): ``function(x)``."""

    def __init__(self, function, name: str):
        super().__init__()
        self.function, self.name = function, name

    def forward(self, x):
        return self.function(x)

    def extra_repr(self):
        return self.name


class Add(nn.Module):
    def forward(self, *inputs):
        total = inputs[0]
        for tensor in inputs[1:]:
            total = total + tensor
        return total


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one dimension: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _convolution(layer, input_shape, depthwise: bool = False) -> nn.Module:
    config = layer.get_config()
    if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
        raise ValueError(f"{layer.name}: dilated or grouped convolutions have no twin here")
    kernel_height, kernel_width, channels, multiplier_or_filters = layer.kernel.shape
    out = channels * multiplier_or_filters if depthwise else multiplier_or_filters
    stride = tuple(config["strides"])
    padding = (0, 0)
    pad = None
    if config["padding"] == "same":
        (top, bottom), (left, right) = (_same_padding(input_shape[1], kernel_height, stride[0]),
                                        _same_padding(input_shape[2], kernel_width, stride[1]))
        if (top, left) == (bottom, right):
            padding = (top, left)
        else:
            pad = nn.ZeroPad2d((left, right, top, bottom))
    conv = nn.Conv2d(channels, out, (kernel_height, kernel_width), stride, padding,
                     groups=channels if depthwise else 1, bias=config["use_bias"])
    steps = [module for module in (pad, conv, _activation(config.get("activation"))) if module is not None]
    return nn.Sequential(*steps)


def _transposed_convolution(layer, input_shape) -> nn.Module:
    config = layer.get_config()
    if config["padding"] != "same" or tuple(config.get("dilation_rate", (1, 1))) != (1, 1):
        raise ValueError(f"{layer.name}: only undilated 'same' transposed convolutions have a twin here")
    kernel_height, kernel_width, filters, channels = layer.kernel.shape  # Keras: (h, w, out, in)
    stride = tuple(config["strides"])
    padding, extra = [], []
    for size, kernel, step in zip(input_shape[1:3], (kernel_height, kernel_width), stride):
        total = max((size - 1) * step + kernel - size * step, 0)  # output = input * stride, as Keras gives
        padding.append(total // 2)
        extra.append(total - 2 * (total // 2))
    conv = nn.ConvTranspose2d(channels, filters, (kernel_height, kernel_width), stride, tuple(padding),
                              output_padding=tuple(extra), bias=config["use_bias"])
    return nn.Sequential(conv, _activation(config.get("activation")))


def _reshape(target):
    if len(target) != 3:
        raise ValueError(f"Reshape to {target}: only (height, width, channels) maps have a twin here")
    height, width, channels = target
    return Lambda(lambda x: x.reshape(x.shape[0], channels, height, width), f"to ({channels}, {height}, {width})")


def _zero_pad_shortcut(layer):
    stride, filters = layer.stride, layer.filters

    def shortcut(x):
        x = x[:, :, ::stride, ::stride]
        missing = filters - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, missing // 2, missing - missing // 2))

    return Lambda(shortcut, f"zero-pad shortcut to {filters}, stride {stride}")


def _module_for(layer, input_shape, frozen: bool, frozen_norms: list) -> nn.Module:
    """The torch module computing what ``layer`` computes, NCHW."""
    import keras
    from keras import layers

    from zoo.layers import ImagePreprocessing, RepeatChannels, ZeroPadShortcut
    from zoo.layers.vision import IMAGE_NORMALISATIONS

    config = layer.get_config()
    if isinstance(layer, keras.Model):
        return GraphTwin(layer, frozen=frozen)
    if isinstance(layer, layers.DepthwiseConv2D):
        return _convolution(layer, input_shape, depthwise=True)
    if isinstance(layer, layers.Conv2DTranspose):
        return _transposed_convolution(layer, input_shape)
    if isinstance(layer, layers.Conv2D):
        return _convolution(layer, input_shape)
    if isinstance(layer, layers.Dense):
        return nn.Sequential(nn.Linear(*layer.kernel.shape, bias=config["use_bias"]),
                             _activation(config.get("activation")))
    if isinstance(layer, layers.BatchNormalization):
        if not (config["center"] and config["scale"]) or config["axis"] not in (-1, [-1], len(input_shape) - 1):
            raise ValueError(f"{layer.name}: only a channels-last BatchNormalization with scale and centre has a twin")
        norm = (nn.BatchNorm2d if len(input_shape) == 4 else nn.BatchNorm1d)(
            int(input_shape[-1]), eps=config["epsilon"], momentum=1.0 - config["momentum"])
        if frozen:
            frozen_norms.append(norm)
        return norm
    if isinstance(layer, layers.ReLU):
        if config.get("negative_slope") or config.get("threshold"):
            raise ValueError(f"{layer.name}: a ReLU with a slope or threshold has no twin here")
        return nn.ReLU() if config.get("max_value") is None else nn.Hardtanh(0.0, float(config["max_value"]))
    if isinstance(layer, layers.LeakyReLU):
        return nn.LeakyReLU(config["negative_slope"])
    if isinstance(layer, layers.Activation):
        return _activation(config["activation"])
    if isinstance(layer, layers.Rescaling):
        return Rescale(config["scale"], config["offset"])
    if isinstance(layer, layers.Dropout):
        return nn.Dropout(config["rate"])
    if isinstance(layer, layers.MaxPooling2D):
        if config["padding"] != "valid":
            raise ValueError(f"{layer.name}: only 'valid' max pooling has a twin here")
        return nn.MaxPool2d(tuple(config["pool_size"]), tuple(config["strides"] or config["pool_size"]))
    if isinstance(layer, layers.GlobalAveragePooling2D):
        keep = bool(config.get("keepdims"))
        return Lambda(lambda x: x.mean((2, 3), keepdim=keep), "global average pool")
    if isinstance(layer, layers.Flatten):
        return nn.Flatten()
    if isinstance(layer, layers.Reshape):
        return _reshape(tuple(config["target_shape"]))
    if isinstance(layer, layers.ZeroPadding2D):
        (top, bottom), (left, right) = config["padding"]
        return nn.ZeroPad2d((left, right, top, bottom))
    if isinstance(layer, layers.Add):
        return Add()
    if isinstance(layer, layers.Resizing):
        if config["interpolation"] != "bilinear" or config.get("crop_to_aspect_ratio"):
            raise ValueError(f"{layer.name}: only plain bilinear resizing has a twin here")
        size = (config["height"], config["width"])
        return Lambda(lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=False),
                      f"bilinear resize to {size}")
    if isinstance(layer, RepeatChannels):
        return Lambda(lambda x: x.repeat_interleave(layer.times, dim=1), f"repeat channels x{layer.times}")
    if isinstance(layer, ImagePreprocessing):
        return Preprocess(layer.mode, *(IMAGE_NORMALISATIONS[layer.mode] or (None, None)))
    if isinstance(layer, ZeroPadShortcut):
        return _zero_pad_shortcut(layer)
    raise TypeError(f"No PyTorch twin for Keras layer {layer.name!r} ({type(layer).__name__})")


def _keras_nodes(keras_model) -> list:
    """The layer calls of a functional model in the order Keras runs them (deepest first).
    ``_nodes_by_depth`` is Keras 3's own record of the graph (``Function._run_through_graph``
    walks it); a layer shared with another model has nodes there too, which these are not."""
    return [node for depth in sorted(keras_model._nodes_by_depth, reverse=True)
            for node in keras_model._nodes_by_depth[depth] if not node.is_input and node.operation is not None]


def _keras_layers(keras_model) -> list:
    return [node.operation for node in _keras_nodes(keras_model)]


class GraphTwin(nn.Module):
    """A Keras functional model's graph in torch: one module per layer, run in the graph's order."""

    def __init__(self, keras_model, frozen: bool = False):
        super().__init__()
        # Plain lists: the modules and weights in them are registered through `steps`.
        self.frozen_norms: list[nn.Module] = []
        self.l2_penalties: list[tuple[nn.Parameter, float]] = []  # (weight, factor) for the trainer's loss
        tensor_index = {id(tensor): index for index, tensor in enumerate(keras_model.inputs)}
        self.steps, self.plan = nn.ModuleList(), []
        for node in _keras_nodes(keras_model):
            layer = node.operation
            inputs = [tensor_index[id(tensor)] for tensor in node.input_tensors]
            layer_frozen = frozen or not layer.trainable
            module = _module_for(layer, tuple(node.input_tensors[0].shape), layer_frozen, self.frozen_norms)
            if layer_frozen:
                module.requires_grad_(False)
            if isinstance(module, GraphTwin):
                self.l2_penalties.extend(module.l2_penalties)
            elif _l2_factor(layer) and not layer_frozen:
                weight = next(child.weight for child in module.modules() if isinstance(child, (nn.Conv2d, nn.Linear)))
                self.l2_penalties.append((weight, _l2_factor(layer)))
            for output in node.outputs:
                tensor_index[id(output)] = len(tensor_index)
            self.plan.append((inputs, len(tensor_index) - 1))
            self.steps.append(module)
        self.outputs = [tensor_index[id(tensor)] for tensor in keras_model.outputs]
        if len(self.outputs) != 1:
            raise ValueError(f"{keras_model.name} has {len(self.outputs)} outputs; a twin has one")

    def forward(self, *inputs):
        values = dict(enumerate(inputs))
        for module, (sources, target) in zip(self.steps, self.plan):
            values[target] = module(*(values[source] for source in sources))
        return values[self.outputs[0]]

    def train(self, mode: bool = True):
        super().train(mode)
        for norm in self.frozen_norms:  # Keras runs a frozen BatchNormalization in inference mode
            norm.eval()
        return self


def graph_twin(keras_model) -> GraphTwin:
    """``keras_model`` (a functional image network) as a torch module, NCHW images in."""
    return GraphTwin(keras_model)


def _l2_factor(layer) -> float:
    """Keras adds ``factor * sum(kernel**2)`` to the loss for an L2 kernel regularizer (the
    CIFAR ResNets' weight decay); the trainer adds the same for the twin's weight."""
    regularizer = getattr(layer, "kernel_regularizer", None)
    return float(regularizer.get_config().get("l2", 0.0)) if regularizer is not None else 0.0


class GANTwin(nn.Module):
    """The zoo DCGAN's two networks in torch; calling it generates, as ``zoo.gan.GAN`` does."""

    def __init__(self, keras_gan):
        super().__init__()
        if keras_gan.conditional:
            raise ValueError("The DCGAN twin is for the unconditional zoo 'dcgan'; got a conditional GAN")
        self.generator = graph_twin(keras_gan.generator)
        self.discriminator = graph_twin(keras_gan.discriminator)
        self.latent_dim = int(keras_gan.latent_dim)
        self.label_smoothing = float(keras_gan.label_smoothing)

    def forward(self, noise):
        return self.generator(noise)
