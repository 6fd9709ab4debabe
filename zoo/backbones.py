"""Pretrained backbones: keras.applications families and the zoo's own checkpoints as
feature extractors, a classifier head on top, and freezing done right (``zoo.freezing``).

    from zoo import backbones
    features = backbones.backbone("mobilenet_v2", weights="imagenet", input_shape=(160, 160, 3))
    features = backbones.backbone("mobilenet_v2", weights="mobilenet_v2_imagenet.weights.h5",
                                  weights_format="torchvision")     # the torchvision conversion
    features = backbones.from_checkpoint("runs/cnn/mnist_convnet-mnist/model.keras")
    model = backbones.classifier(features, num_classes=10, input_shape=(32, 32, 3))
    backbones.freeze(model)               # phase 1: train the head only
    backbones.unfreeze_top(model, 5)      # phase 2: the top 5 blocks too, BatchNorm kept frozen

Every backbone takes raw RGB pixels in [0, 255]: the normalisation its weights were
trained with is a layer inside the model (``zoo.layers.ImagePreprocessing``), and
``classifier`` resizes smaller images to the backbone's size inside the model too, so a
fine-tuned classifier takes the same uint8 images as the data set holds.

Weights: ``None`` (random), ``"imagenet"`` (Keras downloads its own files; needs the
internet), or the path of a ``.weights.h5`` file for the whole ImageNet classifier or
for the feature extractor. ``weights_format="torchvision"`` builds MobileNetV2 the way
torchvision's network computes, for weights converted from torchvision: stride-2 zero
padding of one pixel on every side (Keras pads right and bottom only), BatchNorm epsilon
1e-5 (Keras 1e-3), and torchvision's ImageNet mean/std normalisation of [0, 1] pixels
(Keras scales to [-1, 1]). With Keras's own layout those weights give wrong predictions.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import warnings
from collections.abc import Sequence

import keras
from keras import layers

# The fine-tuning API lives in zoo.freezing; reachable here too (backbones.freeze, ...).
from zoo.freezing import BLOCK_NAME, backbone_of, blocks, freeze, nesting, set_trainable, top_blocks, \
    unfreeze_top  # noqa: F401
from zoo.layers import ImagePreprocessing, RepeatChannels, check_choice
from zoo.registry import register_model


@dataclasses.dataclass(frozen=True)
class Family:
    application: str  # the keras.applications builder
    preprocessing: str  # ImagePreprocessing mode for Keras's own ImageNet weights
    keras_options: dict = dataclasses.field(default_factory=dict)


FAMILIES = {
    "mobilenet_v2": Family("MobileNetV2", "tf"),
    "mobilenet_v3_small": Family("MobileNetV3Small", "none", {"include_preprocessing": True}),
    "mobilenet_v3_large": Family("MobileNetV3Large", "none", {"include_preprocessing": True}),
    "efficientnet_b0": Family("EfficientNetB0", "none"),  # rescales and normalises inside
    "resnet50": Family("ResNet50", "caffe"),
}
WEIGHT_FORMATS = ("keras", "torchvision")


class WeightsError(ValueError):
    """A weights file that is missing or does not fit the network."""


def list_backbones() -> list[str]:
    return sorted(FAMILIES)


def _family(name: str) -> Family:
    if not isinstance(name, str) or name not in FAMILIES:
        close = difflib.get_close_matches(str(name), FAMILIES, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown backbone {name!r}.{hint} Available: {list_backbones()}, "
                         f"or the path of a .keras model through backbones.from_checkpoint.")
    return FAMILIES[name]


def _torchvision_layout(model: keras.Model) -> keras.Model:
    """The same network computing as torchvision's MobileNetV2: symmetric stride-2 padding, epsilon 1e-5."""

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, layers.ZeroPadding2D):
            config["padding"] = ((1, 1), (1, 1))
        elif isinstance(layer, layers.BatchNormalization):
            config["epsilon"] = 1e-5
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def _load_weights_file(name: str, family: Family, path: str, input_shape, weights_format: str
                       ) -> tuple[keras.Model, bool]:
    """The network with ``path`` loaded, and whether it has the ImageNet top: the file may
    hold the whole classifier or the feature extractor."""
    if not os.path.isfile(path):
        raise WeightsError(f"weights={path!r}: no such file. Pass the path of a .weights.h5 file, "
                           f"'imagenet' (Keras downloads its own) or None.")
    if not path.endswith(".weights.h5"):
        raise WeightsError(f"weights={path!r}: expected a Keras '.weights.h5' file (model.save_weights); "
                           f"for a whole saved '.keras' model use backbones.from_checkpoint.")
    application = getattr(keras.applications, family.application)
    errors = []
    for include_top in (True, False):
        model = application(weights=None, include_top=include_top, input_shape=tuple(input_shape),
                            **family.keras_options)
        if weights_format == "torchvision":
            model = _torchvision_layout(model)
        try:
            with warnings.catch_warnings():  # a mismatch is reported below, not as 100 warnings
                warnings.simplefilter("ignore")
                model.load_weights(path)
            return model, include_top
        except (ValueError, KeyError) as error:
            detail = " ".join(line.strip() for line in str(error).splitlines()[:2])
            errors.append(f"with{'' if include_top else 'out'} the ImageNet top: {detail}")
    raise WeightsError(f"weights file {path!r} does not fit backbone {name!r} ({'; '.join(errors)}). "
                       f"Check that the file was saved from keras.applications.{family.application}.")


def backbone(name: str = "mobilenet_v2", weights: str | None = None, input_shape: Sequence[int] = (224, 224, 3),
             weights_format: str = "keras", pooling: str | None = "avg", include_top: bool = False) -> keras.Model:
    """A keras.applications network taking raw [0, 255] RGB images, its normalisation inside.

    ``include_top=False`` (the default) returns the feature extractor (pooled to one vector
    with ``pooling="avg"``, the last feature map with ``None``); ``True`` returns the ImageNet
    classifier (1,000 softmax outputs), e.g. to check a weights file on a photo.
    """
    family = _family(name)
    check_choice("weights_format", weights_format, WEIGHT_FORMATS)
    check_choice("pooling", pooling, ("avg", None))
    if weights_format == "torchvision" and name != "mobilenet_v2":
        raise ValueError(f"weights_format='torchvision' is defined for mobilenet_v2 only, not {name!r}")
    if weights_format == "torchvision" and weights in (None, "imagenet"):
        raise ValueError("weights_format='torchvision' needs the path of the converted weights file, "
                         f"got weights={weights!r}")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be None, 'imagenet' or a file path, got {type(weights).__name__}")
    input_shape = tuple(int(size) for size in input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"ImageNet backbones take RGB images: input_shape must be (height, width, 3), "
                         f"got {input_shape}")
    application = getattr(keras.applications, family.application)
    if weights is None or weights == "imagenet":
        network = application(weights=weights, include_top=include_top, input_shape=input_shape,
                              **family.keras_options)
        has_top = include_top
    else:
        network, has_top = _load_weights_file(name, family, os.fspath(weights), input_shape, weights_format)
        if include_top and not has_top:
            raise WeightsError(f"weights file {weights!r} holds the feature extractor only; "
                               f"include_top=True needs a file with the ImageNet classifier")
    if has_top and not include_top:
        network = _features_of(network)
    preprocessing = "torch" if weights_format == "torchvision" else family.preprocessing
    inputs = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocessing(preprocessing, name="preprocessing")(inputs)
    x = network(x)
    if not include_top and pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    suffix = "imagenet_classifier" if include_top else "backbone"
    return keras.Model(inputs, x, name=f"{name}_{suffix}")


def _features_of(network: keras.Model) -> keras.Model:
    """An ImageNet classifier up to its last feature map: the input of its final global
    pooling (the last one: EfficientNet and MobileNetV3 also pool inside squeeze-excite blocks)."""
    pools = [layer for layer in network.layers if isinstance(layer, layers.GlobalAveragePooling2D)]
    return keras.Model(network.input, pools[-1].input, name=network.name)


def load_model(path: str, trust_code: bool = False) -> keras.Model:
    """``keras.saving.load_model`` in safe mode: a ``.keras`` file that carries Python code (a
    ``Lambda`` layer's function) is refused with WeightsError unless ``trust_code`` (loading it
    would run that code, from whoever made the file)."""
    path = os.fspath(path)
    if not os.path.isfile(path) or not path.endswith(".keras"):
        raise WeightsError(f"checkpoint {path!r}: expected an existing '.keras' file saved by model.save "
                           f"(e.g. runs/cnn/mnist_convnet-mnist/model.keras)")
    try:
        return keras.saving.load_model(path, safe_mode=not trust_code)
    except ValueError as error:
        if "safe_mode" not in str(error):
            raise
        raise WeightsError(f"{path} carries Python code (a Lambda layer's function); loading it would run that "
                           f"code. Load it only if you trust where the file comes from: pass --trust-model-code "
                           f"(trust_code=True in Python).") from None


def from_checkpoint(model: keras.Model | str, layer: str | None = None, trust_code: bool = False) -> keras.Model:
    """A saved zoo model (``.keras``) or a model in memory, cut at ``layer``, as a backbone.

    The default cut is the input of the last Dense layer, i.e. everything but the
    classifier. The weights are the checkpoint's own (the layers are shared, not copied).
    A file is loaded by ``load_model`` (safe mode unless ``trust_code``).
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, trust_code)
    if layer is None:
        dense = [candidate for candidate in model.layers if isinstance(candidate, layers.Dense)]
        if not dense:
            raise ValueError(f"model {model.name!r} has no Dense layer to cut below; pass layer= one of "
                             f"{[candidate.name for candidate in model.layers]}")
        output = dense[-1].input
    else:
        names = [candidate.name for candidate in model.layers]
        if layer not in names:
            raise ValueError(f"layer={layer!r} is not in model {model.name!r}; its layers are {names}")
        output = model.get_layer(layer).output
    return keras.Model(model.inputs, output, name=f"{model.name}_backbone")


def classifier(backbone_model: keras.Model, num_classes: int, input_shape: Sequence[int] | None = None,
               dropout: float = 0.2, name: str | None = None) -> keras.Model:
    """A softmax classifier on a backbone: raw images in, resized inside to the backbone's size.

    ``input_shape`` is the data's image shape (default: the backbone's). A smaller image is
    resized (bilinear) to the backbone's input inside the model; a grey image is repeated
    to RGB for a backbone that takes colour; otherwise the channels must agree.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    backbone_shape = tuple(backbone_model.input_shape[1:])
    input_shape = tuple(input_shape or backbone_shape)
    grey_to_rgb = input_shape[-1] == 1 and backbone_shape[-1] == 3
    if input_shape[-1] != backbone_shape[-1] and not grey_to_rgb:
        raise ValueError(f"images with {input_shape[-1]} channel(s) {input_shape} do not fit backbone "
                         f"{backbone_model.name!r}, which takes {backbone_shape}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if grey_to_rgb:  # an ImageNet network sees a grey image as equal R, G and B
        x = RepeatChannels(3, name="grey_to_rgb")(x)
    if input_shape[:2] != backbone_shape[:2]:
        x = layers.Resizing(*backbone_shape[:2], name="resize")(x)
    x = backbone_model(x)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    elif len(x.shape) > 2:
        x = layers.Flatten(name="flatten_features")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(x)  # float32 under mixed precision
    return keras.Model(inputs, outputs, name=name or backbone_model.name.replace("_backbone", "") + "_classifier")


@register_model
def mobilenet_v2_classifier(num_classes: int = 10, input_shape: Sequence[int] = (32, 32, 3),
                            image_size: int | None = None, weights: str | None = None,
                            weights_format: str = "keras", dropout: float = 0.2, **kwargs) -> keras.Model:
    """MobileNetV2 (random or pretrained) with a softmax head, raw images in; images are
    resized inside to ``image_size`` (default: their own size)."""
    size = image_size or input_shape[0]
    features = backbone("mobilenet_v2", weights=weights, input_shape=(size, size, 3),
                        weights_format=weights_format, **kwargs)
    return classifier(features, num_classes, input_shape=input_shape, dropout=dropout,
                      name="mobilenet_v2_classifier")
