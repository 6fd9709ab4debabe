"""Feed-forward networks (multi-layer perceptrons).

One general builder, ``mlp``, and registered variants. ``playground`` is the TensorFlow
Playground's default network: two hidden layers of 4 and 2 tanh units.

    model = zoo.build("mlp", input_shape=(7,), hidden_units=(8, 8), num_classes=2)
    regressor = zoo.build("mlp", input_shape=(2,), head="regression", num_outputs=1)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from zoo.layers import PlaygroundFeatures, check_choice, classifier_head
from zoo.registry import register_model

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")
HEADS = ("classification", "regression")


@register_model
def mlp(input_shape: Sequence[int] = (2,), hidden_units: Sequence[int] = (64, 64),
        activation: str = "relu", dropout: float = 0.0, l1: float = 0.0, l2: float = 0.0,
        head: str = "classification", num_classes: int = 2, num_outputs: int = 1,
        classifier_activation: str | None = "softmax", input_features: Sequence[str] | None = None,
        name: str = "mlp") -> keras.Model:
    """A fully connected network.

    Args:
        input_shape: shape of one example; anything but a vector is flattened first.
        hidden_units: width of each hidden layer, input to output; ``()`` gives a linear model.
        activation: hidden-layer activation, one of ``ACTIVATIONS`` (the Playground's set).
        dropout: dropout rate after each hidden layer.
        l1, l2: weight penalties on every kernel (the Playground's "regularization").
        head: ``"classification"`` (``num_classes`` probabilities, or logits with
            ``classifier_activation=None``) or ``"regression"`` (``num_outputs`` linear units).
        input_features: for 2-D points, the Playground features computed inside the model
            (any of ``zoo.layers.PLAYGROUND_FEATURES``); ``None`` feeds the input as it is.
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("head", head, HEADS)
    if any(int(units) < 1 for units in hidden_units):
        raise ValueError(f"hidden_units must all be positive, got {list(hidden_units)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if head == "classification" and num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 for classification, got {num_classes}")
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None

    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = inputs if len(input_shape) == 1 else layers.Flatten(name="flatten")(inputs)
    if input_features is not None:
        if tuple(input_shape) != (2,):
            raise ValueError(f"input_features needs 2-D points, input_shape=(2,); got {tuple(input_shape)}")
        x = PlaygroundFeatures(tuple(input_features), name="playground_features")(x)
    for index, units in enumerate(hidden_units):
        x = layers.Dense(int(units), activation=activation, kernel_regularizer=regularizer,
                         name=f"hidden_{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{index}")(x)
    if head == "classification":
        outputs = classifier_head(x, num_classes, classifier_activation)
    else:
        outputs = layers.Dense(num_outputs, kernel_regularizer=regularizer, dtype="float32",
                               name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model
def playground(input_shape=(2,), num_classes=2, **kwargs) -> keras.Model:
    """The TensorFlow Playground's default network: hidden layers [4, 2], tanh.

    ``head="regression"`` gives the network of the Playground's regression problems.
    """
    kwargs = {"hidden_units": (4, 2), "activation": "tanh", **kwargs}
    return mlp(input_shape=input_shape, num_classes=num_classes, name="playground", **kwargs)


@register_model
def mlp_small(input_shape=(64,), num_classes=10, **kwargs) -> keras.Model:
    """Two ReLU layers of 64 units: a baseline for small tabular or 8x8 image data."""
    kwargs = {"hidden_units": (64, 64), "activation": "relu", **kwargs}
    return mlp(input_shape=input_shape, num_classes=num_classes, name="mlp_small", **kwargs)


@register_model
def mlp_mnist(input_shape=(28, 28, 1), num_classes=10, **kwargs) -> keras.Model:
    """The classic 784-512-512-10 MNIST MLP with dropout 0.2 after each hidden layer."""
    kwargs = {"hidden_units": (512, 512), "activation": "relu", "dropout": 0.2, **kwargs}
    return mlp(input_shape=input_shape, num_classes=num_classes, name="mlp_mnist", **kwargs)
