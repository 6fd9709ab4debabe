"""Layers of the forecasters: fixed scaling, windows relative to their last value, and
forecasts of the change from it, so a saved forecaster takes and returns raw units."""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="zoo")
class Standardize(layers.Layer):
    """``(x - mean) / std`` with fixed statistics, or the inverse with ``invert=True``.

    Statistics are constructor arguments (not weights), so a forecaster takes and returns
    raw units and its saved file carries the scaling it was trained with.
    """

    def __init__(self, mean=0.0, std=1.0, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        as_list = lambda value: [float(item) for item in value] if isinstance(value, (list, tuple)) else float(value)
        self.mean, self.std = as_list(mean), as_list(std)
        if min(self.std if isinstance(self.std, list) else [self.std]) <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.invert = bool(invert)

    def call(self, inputs):
        mean = ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        std = ops.convert_to_tensor(self.std, dtype=inputs.dtype)
        return inputs * std + mean if self.invert else (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "invert": self.invert}


@keras.saving.register_keras_serializable(package="zoo")
class RelativeToLast(layers.Layer):
    """Subtract each feature's last value in the window from the whole window.

    A forecaster that sees only changes relative to "now" does not depend on the level
    of the series, so a trending series (CO2 keeps rising) does not push its inputs
    outside the range it was trained on.
    """

    def call(self, inputs):
        return inputs - inputs[:, -1:, :]

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="zoo")
class AddLastValue(layers.Layer):
    """Add the last observed value of feature ``index`` to every forecast step.

    A forecaster built on it predicts the change from the last value, so an untrained
    network starts at the naive (persistence) forecast it is meant to beat.
    """

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs):
        series, changes = inputs
        last = series[:, -1, self.index:self.index + 1]
        return changes + ops.cast(last, changes.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "index": self.index}
