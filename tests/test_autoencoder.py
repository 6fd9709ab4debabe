"""Autoencoders and the VAE: learning on real digits, the ELBO's two terms, replica-consistent
training, save/load, the denoising corruption, sampling helpers, and bad input."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import zoo
from recipes.runtime import config as config_lib, pictures
from tests.conftest import json_from_two_logical_cpus
from tests.test_recipes import quick_row_on_two_replicas


def digit_images(count=None):
    """scikit-learn's 8x8 digits as raw 0-255 pixels (as the recipes give them), (count, 8, 8, 1) float32,
    and their classes."""
    digits = load_digits()
    return digits.images[:count].astype("float32")[..., None] * (255.0 / 16.0), digits.target[:count]


def mean_image_cross_entropy(images):
    """Nats per image of independent Bernoulli pixels at the images' mean: the no-latent baseline."""
    targets = images / 255.0
    mean = np.clip(targets.mean(axis=0), 1e-7, 1 - 1e-7)
    return float(-(targets * np.log(mean) + (1 - targets) * np.log(1 - mean)).reshape(len(images), -1).sum(1).mean())


def test_vae_learns_real_digits_and_tracks_reconstruction_and_kl_separately():
    keras.utils.set_random_seed(0)
    images, _ = digit_images()
    vae = zoo.build("tiny_vae")
    vae.compile(keras.optimizers.Adam(1e-2))
    before = vae.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    history = vae.fit(images, batch_size=64, epochs=10, verbose=0).history
    after = vae.evaluate(images, batch_size=256, verbose=0, return_dict=True)
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss", "elbo"}
    for logs in [before, after, *({name: values[epoch] for name, values in history.items()} for epoch in range(10))]:
        assert logs["kl_loss"] >= 0
        assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + logs["kl_loss"], rel=1e-5)
        assert logs["elbo"] == pytest.approx(-logs["loss"], rel=1e-6)
    assert after["loss"] < 0.75 * before["loss"], (before, after)
    # Better than independent pixels (a model with no latent variable), and the latent is used.
    assert after["loss"] < mean_image_cross_entropy(images) - 1.0, after
    assert after["kl_loss"] > 0.5, after
    # Image by image, the closed-form KL divergence is never negative.
    reconstruction, kl = vae.per_image_losses(images[:64])
    assert np.all(np.asarray(kl) >= 0) and reconstruction.shape == kl.shape == (64,)


def test_autoencoder_reconstructs_real_digits_better_than_their_mean_image():
    keras.utils.set_random_seed(0)
    images, _ = digit_images()
    model = zoo.build("tiny_autoencoder")
    model.compile(keras.optimizers.Adam(1e-2), loss=zoo.autoencoder.bernoulli_cross_entropy,
                  metrics=[keras.metrics.MeanSquaredError(name="mse")])
    model.fit(images, images / 255, batch_size=64, epochs=10, verbose=0)
    result = model.evaluate(images, images / 255, batch_size=256, verbose=0, return_dict=True)
    mean_image_mse = float(np.mean((images / 255 - images.mean(axis=0) / 255) ** 2))
    assert result["mse"] < 0.7 * mean_image_mse, (result, mean_image_mse)
    assert result["loss"] < mean_image_cross_entropy(images), result  # nats per image, the VAE's scale


# Trains the same tiny VAE on the same digits on 1 and on 2 logical CPU replicas, in a fresh
# process, and prints the logs.
REPLICA_SCRIPT = """
import keras
import zoo
from tests.test_autoencoder import digit_images
images, _ = digit_images(256)
losses = {}
for replicas in (1, 2):
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
    keras.utils.set_random_seed(0)
    with strategy.scope():
        vae = zoo.build("tiny_vae", seed=1)
        vae.compile(keras.optimizers.Adam(1e-2))
    data = tf.data.Dataset.from_tensor_slices(images).batch(64)
    history = vae.fit(data, epochs=2, validation_data=data, verbose=0).history
    losses[replicas] = {name: [float(value) for value in values] for name, values in history.items()}
print(json.dumps(losses))
"""


def test_one_and_two_replicas_log_the_same_losses():
    losses = json_from_two_logical_cpus(REPLICA_SCRIPT)
    one, two = losses["1"], losses["2"]
    assert set(one) == {"loss", "reconstruction_loss", "kl_loss", "elbo"} | {f"val_{name}" for name in
                                                                              ("loss", "reconstruction_loss",
                                                                               "kl_loss", "elbo")}
    for name in one:
        # Gradients summed without scaling would double the step; noise drawn per replica
        # would change every value by far more than this.
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, err_msg=name)


def test_vae_round_trips_through_a_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    images, _ = digit_images(256)
    vae = zoo.build("tiny_vae", latent_dim=3, seed=5)
    vae.compile(keras.optimizers.Adam(3e-3))
    vae.fit(images, batch_size=64, epochs=1, verbose=0)
    vae.save(tmp_path / "vae.keras")
    restored = keras.models.load_model(tmp_path / "vae.keras")
    assert isinstance(restored, zoo.autoencoder.VAE)
    assert (restored.name, restored.latent_dim, restored.input_scale, restored.seed) == ("tiny_vae", 3, 1 / 255, 5)
    codes = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    np.testing.assert_allclose(restored.decoder.predict(codes, verbose=0), vae.decoder.predict(codes, verbose=0),
                               atol=1e-5)
    np.testing.assert_allclose(zoo.autoencoder.encode(restored, images[:8]), zoo.autoencoder.encode(vae, images[:8]),
                               atol=1e-5)
    np.testing.assert_allclose(restored.predict(images[:8], verbose=0), vae.predict(images[:8], verbose=0), atol=1e-6)
    assert int(restored.optimizer.iterations) == int(vae.optimizer.iterations) == 4
    assert float(restored.optimizer.learning_rate) == pytest.approx(3e-3)
    history = restored.fit(images, batch_size=64, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1])


def test_denoising_corruption_is_part_of_the_model_and_active_only_in_training(tmp_path):
    images, _ = digit_images(16)
    model = zoo.autoencoder.autoencoder((8, 8, 1), latent_dim=4, architecture="conv", filters=(8, 16),
                                        dense_units=16, noise_stddev=0.5, input_scale=1 / 255)
    clean = model(images, training=False)
    np.testing.assert_allclose(model(images, training=False), clean)
    # Inference is the network with the corruption left out.
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    np.testing.assert_allclose(keras.ops.sigmoid(decoder(encoder(images / 255))), clean, atol=1e-6)
    corruption = keras.Model(model.input, model.get_layer("corruption").output)
    np.testing.assert_allclose(corruption(images, training=False), images / 255, atol=1e-6)
    noise_1, noise_2 = (np.asarray(corruption(images, training=True)) - images / 255 for _ in range(2))
    assert 0.45 < noise_1.std() < 0.55 and abs(noise_1.mean()) < 0.05  # stddev 0.5 on [0, 1] intensities
    assert np.abs(noise_1 - noise_2).mean() > 0.3  # fresh noise on every call
    assert not np.allclose(model(images, training=True), clean, atol=1e-6)
    model.save(tmp_path / "denoising.keras")
    restored = keras.models.load_model(tmp_path / "denoising.keras")
    assert restored.get_layer("corruption").stddev == 0.5
    np.testing.assert_allclose(restored(images, training=False), clean, atol=1e-6)
    assert "corruption" not in [layer.name for layer in zoo.build("tiny_autoencoder").layers]


def test_encoding_sampling_and_latent_grid():
    images, _ = digit_images(10)
    vae = zoo.build("tiny_vae")
    assert zoo.autoencoder.encode(vae, images).shape == (10, 2)
    assert zoo.autoencoder.encode(zoo.build("tiny_autoencoder", latent_dim=5), images).shape == (10, 5)
    samples = zoo.autoencoder.sample_images(vae, 6, seed=3)
    assert samples.shape == (6, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(zoo.autoencoder.sample_images(vae, 6, seed=3), samples)
    assert not np.allclose(zoo.autoencoder.sample_images(vae, 6, seed=4), samples)
    grid = zoo.autoencoder.latent_grid(vae, steps=5)
    assert grid.shape == (25, 8, 8, 1)
    # Neighbours in the grid decode latent points closer than the grid's corners.
    assert np.abs(grid[0] - grid[1]).mean() < np.abs(grid[0] - grid[24]).mean()
    with pytest.raises(ValueError, match="no prior to sample"):
        zoo.autoencoder.sample_images(zoo.build("tiny_autoencoder"), 4)
    with pytest.raises(ValueError, match="a 3-d VAE"):
        zoo.autoencoder.latent_grid(zoo.build("tiny_vae", latent_dim=3))
    with pytest.raises(ValueError, match="not an autoencoder"):
        zoo.autoencoder.encode(zoo.build("small_convnet"), images)


def test_builder_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible by 4"):
        zoo.build("mnist_conv_autoencoder", input_shape=(30, 30, 1))
    with pytest.raises(ValueError, match=r"Unknown architecture='mlp'; expected one of \['dense', 'conv'\]"):
        zoo.autoencoder.vae(architecture="mlp")
    with pytest.raises(ValueError, match="latent_dim must be at least 1, got 0"):
        zoo.build("mnist_vae", latent_dim=0)
    with pytest.raises(ValueError, match="noise_stddev must be >= 0"):
        zoo.build("mnist_denoising_autoencoder", noise_stddev=-0.1)
    encoder = zoo.autoencoder.dense_encoder((8, 8, 1), (16,), 2, variational=True)
    with pytest.raises(ValueError, match="decoder takes"):
        zoo.autoencoder.VAE(encoder, zoo.autoencoder.dense_decoder((8, 8, 1), (16,), 3))
    with pytest.raises(ValueError, match="decoder makes images of shape"):
        zoo.autoencoder.VAE(encoder, zoo.autoencoder.dense_decoder((28, 28, 1), (16,), 2))
    with pytest.raises(ValueError, match="mean and log-variance"):
        zoo.autoencoder.VAE(zoo.autoencoder.dense_encoder((8, 8, 1), (16,), 2),
                            zoo.autoencoder.dense_decoder((8, 8, 1), (16,), 2))


def test_recipe_bad_config_values_give_config_errors():
    from recipes import autoencoder

    with pytest.raises(config_lib.ConfigError, match="--latent-dim must be at least 1, got 0"):
        config_lib.parse_overrides(autoencoder.Config, ["--latent-dim", "0"])
    with pytest.raises(config_lib.ConfigError, match="--noise-stddev must be >= 0"):
        config_lib.make_config(autoencoder.Config, noise_stddev=-0.5)
    with pytest.raises(config_lib.ConfigError, match=r"--dataset got 'cifar10'; expected one of"):
        config_lib.parse_overrides(autoencoder.Config, ["--dataset", "cifar10"])
    config = config_lib.parse_overrides(autoencoder.Config, ["--quick", "--model", "small_convnet"],
                                        presets=autoencoder.PRESETS)
    datasets = autoencoder.make_datasets(config)
    with pytest.raises(config_lib.ConfigError, match=r"not an autoencoder .*'mnist_vae'"):
        autoencoder.build_model(config, datasets, None)
    assert autoencoder.published(config_lib.make_config(autoencoder.Config)) == (
        "reconstructions.png", "latent_scatter.png", "prior_samples.png", "latent_manifold.png")
    assert autoencoder.published(config_lib.make_config(autoencoder.Config, model="mnist_conv_autoencoder")) == (
        "reconstructions.png", "latent_scatter.png")


@pytest.mark.slow  # about a minute; the default suite runs the quick VAE on 2 replicas in tests/test_recipes.py
def test_denoising_quick_run_on_two_replicas(tmp_path):
    row = quick_row_on_two_replicas(tmp_path, "autoencoder", "digits", "--model", "mnist_denoising_autoencoder",
                                    "--latent-dim", "8")
    assert (row["model"], row["latent_dim"], row["noise_stddev"]) == ("mnist_denoising_autoencoder-latent8", 8, 0.5)
    assert row["test_mse"] < 0.7 * row["mean_image_mse"], (row["test_mse"], row["mean_image_mse"])
    # Noisy copies (MSE 0.25 against the clean images) come back closer to them than the mean image is.
    assert row["denoised_mse"] < 0.85 * row["mean_image_mse"], (row["denoised_mse"], row["mean_image_mse"])
    for artifact in ("reconstructions.png", "latent_scatter.png"):
        assert (tmp_path / "results" / "autoencoder" / pictures.published_name(row, artifact)).exists()
    assert not (tmp_path / "run" / "prior_samples.png").exists()
