"""``PlaygroundFeatures``: the TensorFlow Playground's input features as a layer, so a saved
network takes the raw 2-D point."""

from __future__ import annotations

import keras
from keras import layers, ops


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
