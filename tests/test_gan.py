"""GANs: the Frechet distance, replica-consistent training, save/load with both networks and
optimizers, sampling helpers, bad input, and the recipe's quick runs on 2 logical CPU replicas."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import zoo
from recipes.runtime import pictures
from tests.conftest import assert_handled_failure, json_from_two_logical_cpus, run_cli
from tests.test_recipes import quick_row_on_two_replicas


def digit_images(count=256):
    images = load_digits().images[:count].astype("float32")[..., None]  # 8x8, pixel values 0-16
    return images, load_digits().target[:count].astype("int32")


def tiny_gan(conditional=False, seed=1):
    return zoo.gan.gan(latent_dim=16, image_shape=(8, 8, 1), num_classes=10 if conditional else 0, width=8,
                       pixel_max=16.0, seed=seed)


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_noise():
    features = load_digits().data.astype("float64")  # 1,797 real 64-pixel digits
    assert abs(zoo.gan.frechet_distance(features, features)) < 1e-6
    rng = np.random.default_rng(0)
    distances = [zoo.gan.frechet_distance(features, features + rng.normal(0, scale, features.shape))
                 for scale in (0.5, 1.0, 2.0, 4.0)]
    assert all(later > earlier for earlier, later in zip(distances, distances[1:])), distances
    assert distances[0] > 1.0
    with pytest.raises(ValueError, match="same feature count"):
        zoo.gan.frechet_distance(features, features[:, :10])


# Trains the same tiny GANs (unconditional and conditional) on the same digits on 1 and on 2
# logical CPU replicas, in a fresh process, and prints each one's losses.
REPLICA_SCRIPT = """
import keras
from tests.test_gan import digit_images, tiny_gan
images, labels = digit_images(128)
# One strategy per replica count, reused: a second 2-device strategy in the same process
# would reuse collective keys and abort.
strategies = {replicas: tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
              for replicas in (1, 2)}
losses = {}
for kind in ("unconditional", "conditional"):
    for replicas, strategy in strategies.items():
        keras.utils.set_random_seed(0)
        with strategy.scope():
            gan = tiny_gan(kind == "conditional")
            gan.compile()
        data = tf.data.Dataset.from_tensor_slices((images, labels) if kind == "conditional" else images)
        history = gan.fit(data.batch(32), epochs=2, verbose=0).history
        losses[f"{kind}-{replicas}"] = {name: [float(value) for value in values] for name, values in history.items()}
print(json.dumps(losses))
"""


def test_one_and_two_replicas_log_the_same_losses():
    losses = json_from_two_logical_cpus(REPLICA_SCRIPT)
    for kind in ("unconditional", "conditional"):
        one, two = losses[f"{kind}-1"], losses[f"{kind}-2"]
        assert set(one) == {"d_loss", "g_loss", "real_score", "fake_score"}
        for name in one:
            # Unscaled wrongly, the 2-replica losses would be half; drawn per replica, the
            # noise (and so every value) would differ by far more than this.
            np.testing.assert_allclose(two[name], one[name], rtol=1e-4, err_msg=f"{kind} {name}")


@pytest.mark.parametrize("conditional", [False, True])
def test_gan_saves_and_loads_both_networks_and_optimizers(conditional, tmp_path):
    keras.utils.set_random_seed(0)
    images, labels = digit_images(64)
    gan = tiny_gan(conditional)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), g_optimizer=keras.optimizers.Adam(3e-4))
    gan.fit(images, labels if conditional else None, batch_size=32, epochs=1, verbose=0)
    gan.save(tmp_path / "gan.keras")
    restored = keras.models.load_model(tmp_path / "gan.keras")
    assert isinstance(restored, zoo.gan.GAN) and restored.conditional is conditional
    noise = zoo.gan.sample_noise(4, 16)
    generator_input = [noise, np.arange(4, dtype="int32")] if conditional else noise
    np.testing.assert_allclose(restored.generator.predict(generator_input, verbose=0),
                               gan.generator.predict(generator_input, verbose=0), atol=1e-5)
    discriminator_input = [images[:4], labels[:4]] if conditional else images[:4]
    np.testing.assert_allclose(restored.discriminator.predict(discriminator_input, verbose=0),
                               gan.discriminator.predict(discriminator_input, verbose=0), atol=1e-5)
    assert int(restored.d_optimizer.iterations) == int(gan.d_optimizer.iterations) == 2
    assert float(restored.g_optimizer.learning_rate) == pytest.approx(3e-4)
    for original, loaded in zip(gan.d_optimizer.variables, restored.d_optimizer.variables):
        np.testing.assert_allclose(loaded.numpy(), original.numpy())
    history = restored.fit(images, labels if conditional else None, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])


def test_generated_images_are_in_pixel_units_and_sampling_is_seeded():
    generator = zoo.build("dcgan_generator", latent_dim=8, image_shape=(32, 32, 3), width=8)
    images = zoo.gan.sample_images(generator, 6, seed=3)
    assert images.shape == (6, 32, 32, 3) and images.min() >= 0 and images.max() <= 255
    np.testing.assert_array_equal(zoo.gan.sample_images(generator, 6, seed=3), images)
    walks = zoo.gan.interpolate(generator, steps=5, rows=2, seed=3)
    assert walks.shape == (10, 32, 32, 3)
    # Each walk goes in a straight line between its own two noise vectors, in 5 even steps.
    ends = zoo.gan.sample_noise(4, 8, seed=3).reshape(2, 2, 8)
    for row in range(2):
        expected = generator.predict(np.stack([ends[row, 0], ends[row].mean(axis=0), ends[row, 1]]), verbose=0)
        np.testing.assert_allclose(walks[[5 * row, 5 * row + 2, 5 * row + 4]], expected, rtol=1e-4, atol=1e-3)
    step = np.abs(np.diff(walks[:5], axis=0)).mean()
    assert 0 < step < np.abs(walks[0] - walks[4]).mean()  # each step a part of the whole walk


def test_gan_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible by 4"):
        zoo.build("dcgan_generator", image_shape=(30, 30, 1))
    with pytest.raises(ValueError, match="conditional or neither"):
        zoo.gan.GAN(zoo.gan.generator(num_classes=10), zoo.gan.discriminator())
    with pytest.raises(ValueError, match="discriminator takes"):
        zoo.gan.GAN(zoo.gan.generator(image_shape=(32, 32, 3)), zoo.gan.discriminator())
    gan = tiny_gan(conditional=True)
    gan.compile()
    with pytest.raises(ValueError, match="conditional GAN trains on"):
        gan.fit(digit_images(32)[0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="one label per image"):
        zoo.gan.sample_images(gan.generator, 4)


@pytest.mark.slow  # about a minute; the default suite covers the conditional GAN on 2 replicas in the replica test
def test_conditional_quick_run_on_two_replicas(tmp_path):
    row = quick_row_on_two_replicas(tmp_path, "gan", "digits", "--model", "conditional_dcgan")
    assert row["model"] == "conditional_dcgan"
    # Asked for class c, the generator must make images the digit classifier calls c more
    # often than chance (10%).
    assert row["test_class_accuracy"] > 0.3, row["test_class_accuracy"]
    assert row["real_fid"] < row["test_fid"] < row["untrained_fid"]
    assert row["classifier_accuracy"] > 0.9
    samples = sorted(path.name for path in (tmp_path / "run" / "samples").iterdir())
    assert samples[0] == "epoch_001.png" and len(samples) == row["epochs"]
    for artifact in ("samples.png", "interpolation.png"):
        assert (tmp_path / "results" / "gan" / pictures.published_name(row, artifact)).exists()
    assert "test_fid" in (tmp_path / "results" / "README.md").read_text()


def test_gan_recipe_refuses_a_model_that_is_not_a_gan(tmp_path):
    result = run_cli("run", "gan", "--quick", "--model", "resnet20", "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert_handled_failure(result, 2, "gan", "not a GAN", "dcgan")
    assert not (tmp_path / "results").exists()


def test_quick_mode_takes_each_model_s_learning_rate_unless_one_is_given():
    import recipes
    from recipes.runtime.config import ConfigError, parse_overrides

    module = recipes.load("gan")
    rate = lambda *argv: parse_overrides(module.config, list(argv), presets=module.presets).learning_rate
    assert rate("--quick") == 2e-4 and rate("--quick", "--model", "conditional_dcgan") == 1e-3
    assert rate("--quick", "--model", "conditional_dcgan", "--learning-rate", "5e-4") == 5e-4
    assert rate() == 2e-4  # full mode: Radford et al.'s
    with pytest.raises(ConfigError, match="--learning-rate must be > 0"):
        rate("--learning-rate", "0")


def test_resize_upsampling_makes_the_same_images_shape_and_bad_choices_are_refused():
    generator = zoo.gan.generator(latent_dim=16, image_shape=(8, 8, 1), width=8, upsampling="resize")
    assert generator.output_shape == (None, 8, 8, 1)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in generator.layers)
    assert isinstance(zoo.build("dcgan", upsampling="resize"), zoo.gan.GAN)
    with pytest.raises(ValueError, match="upsampling='bilinear'"):
        zoo.gan.generator(upsampling="bilinear")
