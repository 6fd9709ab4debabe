"""Reusable, serialisable building blocks shared by the model families, one module per concern.

    from zoo.layers import TransformerBlock, residual_block   # every name is re-exported here

``checks`` (argument checks), ``heads`` (the classifier head), ``vision`` (residual blocks,
ImageNet preprocessing), ``playground`` (the Playground's input features), ``recurrent`` (an
LSTM with a fast training path on TensorFlow's CPU), ``series`` (the forecasters' scaling
layers), ``text`` (token-sequence layers), ``transformer`` (transformer block, patch
embedding), ``replicas`` (replica index, noise and batch statistics under ``tf.distribute``).

Every custom layer keeps one attribute per constructor argument and implements
``get_config()``, so models built from them round-trip through ``model.save("m.keras")``.
Only ``keras.layers`` and ``keras.ops`` are used, so the blocks run on any Keras backend;
``FusedLSTM`` adds a TensorFlow-only path and falls back to ``keras.layers.LSTM`` elsewhere.
"""

from zoo.layers.checks import check_choice
from zoo.layers.heads import classifier_head
from zoo.layers.playground import PLAYGROUND_FEATURES, PlaygroundFeatures
from zoo.layers.recurrent import FusedLSTM
from zoo.layers.replicas import GlobalBatchNormalization, replica_normal, replica_position
from zoo.layers.series import AddLastValue, RelativeToLast, Standardize
from zoo.layers.text import POOLINGS, KeepLastTokens, MaskedPooling1D, TokenAndPositionEmbedding, sequence_input
from zoo.layers.transformer import PatchEmbedding, TransformerBlock
from zoo.layers.vision import IMAGE_NORMALISATIONS, SHORTCUTS, ImagePreprocessing, RepeatChannels, ZeroPadShortcut, \
    conv_bn_relu, residual_block

__all__ = [
    "check_choice", "classifier_head", "FusedLSTM", "GlobalBatchNormalization", "PLAYGROUND_FEATURES", "PlaygroundFeatures", "replica_normal",
    "replica_position", "AddLastValue", "RelativeToLast", "Standardize", "POOLINGS", "KeepLastTokens",
    "MaskedPooling1D", "TokenAndPositionEmbedding", "sequence_input", "PatchEmbedding", "TransformerBlock",
    "IMAGE_NORMALISATIONS", "SHORTCUTS", "ImagePreprocessing", "RepeatChannels", "ZeroPadShortcut",
    "conv_bn_relu", "residual_block",
]
