"""Regression losses the seed material names beside MSE and RMSE, usable by name.

    model.compile(loss=zoo.losses.get("arctan"), metrics=[zoo.losses.get_metric("rmse")])

The arctan error, mean(arctan(|y - y_hat|)), grows like |error| near zero and flattens
towards pi/2 for large errors, so outliers pull on the fit far less than under MSE.
"""

from __future__ import annotations

import keras
from keras import ops


def _aligned(y_true, y_pred):
    """y_true cast to y_pred's dtype and given its trailing axis: targets of shape (batch,)
    against predictions of shape (batch, 1) would otherwise broadcast to (batch, batch)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    return y_true


@keras.saving.register_keras_serializable(package="zoo")
def mean_arctan_error(y_true, y_pred):
    """mean(arctan(|y_true - y_pred|)) over the last axis; bounded above by pi/2."""
    return ops.mean(ops.arctan(ops.abs(_aligned(y_true, y_pred) - y_pred)), axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
def root_mean_squared_error(y_true, y_pred):
    """sqrt(mean((y_true - y_pred)^2)) over the last axis."""
    return ops.sqrt(ops.mean(ops.square(_aligned(y_true, y_pred) - y_pred), axis=-1))


@keras.saving.register_keras_serializable(package="zoo")
class MeanArctanError(keras.metrics.MeanMetricWrapper):
    """Streaming mean of ``mean_arctan_error`` (a value in [0, pi/2))."""

    def __init__(self, name="arctan", dtype=None):
        super().__init__(mean_arctan_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


LOSSES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
          "rmse": root_mean_squared_error, "arctan": mean_arctan_error}


def get(name: str):
    """A regression loss by name: one of ``sorted(LOSSES)``."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None


def get_metric(name: str) -> keras.metrics.Metric:
    """A streaming regression metric by name, reported as ``<name>`` in logs and results."""
    metrics = {"mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
               "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
               "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
               "arctan": MeanArctanError}
    try:
        return metrics[name]()
    except KeyError:
        raise ValueError(f"Unknown metric {name!r}; expected one of {sorted(metrics)}") from None
