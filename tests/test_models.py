"""Every registered model: builds, runs forward, takes a training step, and round-trips
through a ``.keras`` file with identical outputs. A new model is tested by registering it."""

import numpy as np
import pytest

import keras
import zoo


to_numpy = keras.ops.convert_to_numpy  # a torch tensor that requires grad has no .numpy()


def random_inputs(model, batch=2, seed=0, steps=12):
    """Inputs of the model's shapes and dtypes (a list for several); free (None) dimensions get ``steps``."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *(steps if size is None else size for size in tensor.shape[1:]))
        if "int" in tensor.dtype:  # token ids or class labels; 0 is padding
            arrays.append(rng.integers(1, 10, shape).astype("int32"))
        else:
            arrays.append(rng.uniform(0, 1, shape).astype("float32"))
    return arrays[0] if len(arrays) == 1 else arrays


def check_gan_steps_and_round_trips(gan, tmp_path):
    """A GAN trains with its own train_step: one step moves both networks; saved and
    loaded, both networks give the same outputs."""
    images = np.random.default_rng(0).uniform(0, 255, (4, *gan.discriminator.inputs[0].shape[1:])).astype("float32")
    labels = np.arange(4, dtype="int32")
    gan.compile()
    before = [[to_numpy(weight).copy() for weight in network.trainable_weights]
              for network in (gan.generator, gan.discriminator)]
    logs = gan.train_on_batch(*((images, labels) if gan.conditional else (images,)), return_dict=True)
    assert np.isfinite(logs["d_loss"]) and np.isfinite(logs["g_loss"])
    for network, old in zip((gan.generator, gan.discriminator), before):
        assert any(not np.allclose(a, to_numpy(b)) for a, b in zip(old, network.trainable_weights)), network.name
    gan.save(tmp_path / "gan.keras")
    restored = keras.models.load_model(tmp_path / "gan.keras")
    for network, loaded in ((gan.generator, restored.generator), (gan.discriminator, restored.discriminator)):
        inputs = random_inputs(network)
        np.testing.assert_allclose(loaded.predict(inputs, verbose=0), network.predict(inputs, verbose=0),
                                   rtol=1e-5, atol=1e-4)


# Deeper ResNets are resnet20's code with more blocks per stage: here they build, run forward and
# have He et al.'s 6n+2 layers; resnet20 alone takes the training step and the round trip (the
# four deeper ones took about three minutes of the suite doing the same).
DEEPER_RESNETS = {"resnet32": 32, "resnet44": 44, "resnet56": 56, "resnet110": 110}


@pytest.mark.backends  # also run on JAX and PyTorch by make test
@pytest.mark.parametrize("name", zoo.list_models())
def test_model_builds_steps_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    assert model.name == name
    if isinstance(model, zoo.gan.GAN):
        return check_gan_steps_and_round_trips(model, tmp_path)
    inputs = random_inputs(model)
    outputs = to_numpy(model(inputs, training=False))
    expected = [12 if size is None else size for size in model.output_shape[1:]]  # free steps, as in the inputs
    assert list(outputs.shape) == [2, *expected]
    assert np.all(np.isfinite(outputs))
    if name in DEEPER_RESNETS:  # weighted layers: the stem, two convolutions per block, the classifier
        weighted = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
        assert len(weighted) == DEEPER_RESNETS[name]
        return

    targets = np.random.default_rng(1).uniform(0, 1, outputs.shape).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    before = [to_numpy(weight).copy() for weight in model.trainable_weights]
    logs = model.train_on_batch(inputs, targets, return_dict=True)  # a model with its own train_step may log several
    assert np.isfinite(logs["loss"]), logs
    changed = [not np.allclose(old, to_numpy(new)) for old, new in zip(before, model.trainable_weights)]
    assert any(changed), "one training step changed no weight"

    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), model.predict(inputs, verbose=0),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.backends  # also run on JAX and PyTorch by make test
def test_resnet_sizes_match_he_et_al():
    # He et al. (2016), Table 6: 0.27M parameters for ResNet-20, 0.85M for ResNet-56.
    assert round(zoo.build("resnet20").count_params() / 1e6, 2) == 0.27
    assert round(zoo.build("resnet56").count_params() / 1e6, 2) == 0.86  # 0.85M trainable + BN statistics
    assert zoo.build("resnet20", shortcut="projection").count_params() > zoo.build("resnet20").count_params()


@pytest.mark.backends  # also run on JAX and PyTorch by make test
def test_classic_mnist_convnet_size():
    assert zoo.build("mnist_convnet").count_params() == 1_199_882


@pytest.mark.backends  # also run on JAX and PyTorch by make test
def test_playground_features_are_computed_inside_the_model():
    model = zoo.build("playground", input_features=("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"))
    features = model.get_layer("playground_features")
    point = np.array([[2.0, -3.0]], dtype="float32")
    expected = [[2, -3, 4, 9, -6, np.sin(2.0), np.sin(-3.0)]]
    np.testing.assert_allclose(features(point), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown or empty features"):
        zoo.build("playground", input_features=("x3",))


@pytest.mark.backends  # also run on JAX and PyTorch by make test
def test_playground_regression_head_is_linear():
    model = zoo.build("playground", head="regression")
    assert model.output_shape == (None, 1)
    assert model.get_layer("predictions").activation.__name__ == "linear"


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", zoo.list_models())
def test_model_under_mixed_precision_returns_float32(name, mixed_bfloat16):
    """bfloat16 inside, float32 out (the probabilities, logits and pixels the losses read)."""
    model = zoo.build(name)
    networks = [model.generator, model.discriminator] if isinstance(model, zoo.gan.GAN) else [model]
    for network in networks:
        outputs = network(random_inputs(network), training=False)
        assert keras.backend.standardize_dtype(outputs.dtype) == "float32", network.name
        assert np.all(np.isfinite(np.asarray(outputs)))
