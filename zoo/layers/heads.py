"""The output layer every classifier in the zoo ends with."""

from __future__ import annotations

from keras import layers


def classifier_head(x, num_classes: int, classifier_activation: str | None, dropout: float = 0.0,
                    name: str = "predictions"):
    """Dropout then the output layer; the activation runs in float32 under mixed precision."""
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(num_classes, name=f"{name}_dense")(x)
    return layers.Activation(classifier_activation or "linear", dtype="float32", name=name)(x)
