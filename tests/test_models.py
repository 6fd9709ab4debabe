"""Every registered model: builds, runs forward, takes a training step, and round-trips
through a ``.keras`` file with identical outputs. A new model is tested by registering it."""

import numpy as np
import pytest

import keras
import zoo


def random_inputs(model, batch=2, seed=0, steps=12):
    """Inputs of the model's shape and dtype; free (None) dimensions get ``steps``."""
    shape = (batch, *(steps if size is None else size for size in model.input_shape[1:]))
    rng = np.random.default_rng(seed)
    if "int" in model.inputs[0].dtype:  # token ids; 0 is padding
        return rng.integers(1, 10, shape).astype("int32")
    return rng.uniform(0, 1, shape).astype("float32")


@pytest.mark.parametrize("name", zoo.list_models())
def test_model_builds_steps_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    assert model.name == name
    inputs = random_inputs(model)
    outputs = model(inputs, training=False)
    expected = [12 if size is None else size for size in model.output_shape[1:]]  # free steps, as in the inputs
    assert list(outputs.shape) == [2, *expected]
    assert np.all(np.isfinite(outputs))

    targets = np.random.default_rng(1).uniform(0, 1, outputs.shape).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = [weight.numpy().copy() for weight in model.trainable_weights]
    loss = model.train_on_batch(inputs, targets)
    assert np.isfinite(loss)
    changed = [not np.allclose(old, new.numpy()) for old, new in zip(before, model.trainable_weights)]
    assert any(changed), "one training step changed no weight"

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), model.predict(inputs, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_resnet_sizes_match_he_et_al():
    # He et al. (2016), Table 6: 0.27M parameters for ResNet-20, 0.85M for ResNet-56.
    assert round(zoo.build("resnet20").count_params() / 1e6, 2) == 0.27
    assert round(zoo.build("resnet56").count_params() / 1e6, 2) == 0.86  # 0.85M trainable + BN statistics
    assert zoo.build("resnet20", shortcut="projection").count_params() > zoo.build("resnet20").count_params()


def test_classic_mnist_convnet_size():
    assert zoo.build("mnist_convnet").count_params() == 1_199_882


def test_playground_features_are_computed_inside_the_model():
    model = zoo.build("playground", input_features=("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"))
    features = model.get_layer("playground_features")
    point = np.array([[2.0, -3.0]], dtype="float32")
    expected = [[2, -3, 4, 9, -6, np.sin(2.0), np.sin(-3.0)]]
    np.testing.assert_allclose(features(point), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown or empty features"):
        zoo.build("playground", input_features=("x3",))


def test_playground_regression_head_is_linear():
    model = zoo.build("playground", head="regression")
    assert model.output_shape == (None, 1)
    assert model.get_layer("predictions").activation.__name__ == "linear"
