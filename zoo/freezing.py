"""Freezing for fine-tuning: a pretrained network's layers grouped into blocks, frozen whole
(phase 1) or all but the top blocks (phase 2), BatchNorm kept in inference mode.

    from zoo import freezing
    freezing.freeze(model)               # model: e.g. a zoo.backbones.classifier; phase 1 trains the head
    freezing.unfreeze_top(model, 5)      # phase 2: the top 5 blocks too, BatchNorm kept frozen

Each function finds the pretrained network inside the model (``backbone_of``), so it takes a
classifier, a backbone or a keras.applications network alike. Recompile after each change.
``zoo.backbones`` re-exports these names (``backbones.freeze`` ...).
"""

from __future__ import annotations

import re

import keras
from keras import layers

# Names of the layers that start a block in keras.applications: MobileNetV2 ``block_13_expand``,
# EfficientNet ``block6a_expand_conv``, ResNet ``conv4_block2_1_conv``, MobileNetV3 ``expanded_conv_3_...``.
BLOCK_NAME = re.compile(r"^(block_?\d+[a-z]?|conv\d+_block\d+|expanded_conv(?:_\d+)?)_")


def nesting(model: keras.Model) -> list[keras.Model]:
    """``model`` and the models nested in it, outermost first, down to the one holding the
    pretrained layers (a classifier, its ``backbone``, the application inside)."""
    chain = [model]
    while len(nested := [layer for layer in chain[-1].layers if isinstance(layer, keras.Model)]) == 1:
        chain.append(nested[0])
    return chain


def backbone_of(model: keras.Model) -> keras.Model:
    """The network holding the pretrained layers: for a classifier, the nested model at its
    centre (the application inside a ``backbone``); otherwise the model itself."""
    return nesting(model)[-1]


def blocks(model: keras.Model) -> list[tuple[str, list]]:
    """The backbone's layers grouped into blocks, bottom to top.

    keras.applications blocks are found by their layer names (``BLOCK_NAME``); any other
    layer with weights (a stem or top convolution, a zoo checkpoint's conv or dense layer)
    is a block of its own, with the BatchNormalization right after it. Layers without
    weights join the block they follow.
    """
    groups: list[tuple[str, list]] = []
    for layer in backbone_of(model).layers:
        if isinstance(layer, layers.InputLayer):
            continue
        match = BLOCK_NAME.match(layer.name)
        key = match.group(1) if match else None
        if key is not None:
            starts = not groups or groups[-1][0] != key
        else:
            starts = bool(layer.weights) and not isinstance(layer, layers.BatchNormalization)
            key = layer.name
        if starts or not groups:
            groups.append((key, []))
        groups[-1][1].append(layer)
    return groups


def freeze(model: keras.Model) -> keras.Model:
    """Freeze the whole backbone (phase 1): its weights and its BatchNorm statistics stay put.

    In Keras 3 a BatchNormalization layer that is not trainable runs in inference mode,
    so the frozen network also normalises with its pretrained statistics. Recompile after.
    """
    set_trainable(backbone_of(model), False)
    return model


def set_trainable(layer: keras.layers.Layer, trainable: bool) -> keras.layers.Layer:
    """``layer.trainable = trainable`` for ``layer`` and every layer inside it, nested models too.

    A plain assignment is not enough on the TensorFlow backend: Keras 3's
    ``KerasAutoTrackable.__setattr__`` skips an assignment whose value ``is`` the current one,
    so ``model.trainable = True`` on a model that is already trainable never runs the setter
    that passes the flag down, and layers frozen one by one inside it stay frozen (that
    short circuit is the TensorFlow backend's alone). This calls the setter on every layer.
    """
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        keras.layers.Layer.trainable.fset(sublayer, bool(trainable))
    return layer


def top_blocks(network: keras.Model, num_blocks: int) -> list:
    """The top ``num_blocks`` of ``blocks(network)``, lowest first, as ``(name, layers)``."""
    groups = blocks(network)
    if not isinstance(num_blocks, int) or not 0 <= num_blocks <= len(groups):
        raise ValueError(f"num_blocks must be an integer in [0, {len(groups)}] for {network.name!r} "
                         f"(its blocks: {[name for name, _ in groups]}), got {num_blocks!r}")
    return groups[len(groups) - num_blocks:] if num_blocks else []


def unfreeze_top(model: keras.Model, num_blocks: int) -> list[str]:
    """Make the top ``num_blocks`` blocks trainable (phase 2) and return their names.

    BatchNormalization layers stay frozen: a small fine-tuning batch would replace the
    ImageNet statistics with noisy ones (the Keras transfer-learning guide's advice).
    The head outside the backbone stays trainable. Recompile after, with a lower rate.
    """
    network = backbone_of(model)
    top = top_blocks(network, num_blocks)
    chosen = {id(layer) for _, members in top for layer in members}
    set_trainable(network, True)
    for layer in network.layers:
        if id(layer) not in chosen:
            set_trainable(layer, False)
    for layer in network._flatten_layers(include_self=False):
        if isinstance(layer, layers.BatchNormalization):
            set_trainable(layer, False)
    return [name for name, _ in top]
