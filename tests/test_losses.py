"""The arctan error and RMSE against NumPy, and lookup by name."""

import math

import numpy as np
import pytest

from zoo import losses


def test_arctan_error_matches_numpy_and_is_bounded():
    y_true = np.array([[0.0, 1.0], [2.0, -3.0]], dtype="float32")
    y_pred = np.array([[0.5, 1.0], [100.0, 3.0]], dtype="float32")
    expected = np.mean(np.arctan(np.abs(y_true - y_pred)), axis=-1)
    np.testing.assert_allclose(losses.mean_arctan_error(y_true, y_pred), expected, rtol=1e-6)
    assert float(np.max(losses.mean_arctan_error(y_true, y_pred * 1e6))) < math.pi / 2
    metric = losses.get_metric("arctan")
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(float(np.mean(expected)), rel=1e-6)


def test_flat_targets_are_matched_to_a_single_output_column():
    # Regression data sets yield targets of shape (batch,), the model (batch, 1).
    y_true = np.array([0.0, 1.0, 2.0], dtype="float32")
    y_pred = np.array([[0.1], [1.0], [1.5]], dtype="float32")
    np.testing.assert_allclose(losses.mean_arctan_error(y_true, y_pred), np.arctan([0.1, 0.0, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(losses.root_mean_squared_error(y_true, y_pred), [0.1, 0.0, 0.5], rtol=1e-6)
    metric = losses.get_metric("arctan")
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(float(np.mean(np.arctan([0.1, 0.0, 0.5]))), rel=1e-6)


def test_rmse_matches_numpy():
    y_true = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    y_pred = np.array([[1.0, 0.0, 6.0]], dtype="float32")
    assert float(losses.root_mean_squared_error(y_true, y_pred)[0]) == pytest.approx(math.sqrt(13 / 3))


def test_losses_by_name_and_unknown_names():
    assert losses.get("mse") == "mean_squared_error"
    assert losses.get("arctan") is losses.mean_arctan_error
    with pytest.raises(ValueError, match=r"Unknown loss 'huber'; expected one of \['arctan', 'mae', 'mse', 'rmse'\]"):
        losses.get("huber")
    with pytest.raises(ValueError, match="Unknown metric"):
        losses.get_metric("r2")
