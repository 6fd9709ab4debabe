"""The zoo on every Keras backend: the GAN's and the VAE's own training steps learn, save and
load; the README's builder examples run as written; ``import zoo`` loads no TensorFlow on
JAX and PyTorch. ``make test`` runs every test marked ``backends`` (these, the registry-wide model
tests, the registry's) once more under ``KERAS_BACKEND=jax`` and ``KERAS_BACKEND=torch``."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import zoo

pytestmark = pytest.mark.backends
BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
to_numpy = keras.ops.convert_to_numpy


def digits(size: int = 8):
    """scikit-learn's 1,797 real digits as raw 0-255 pixels, zero-padded to ``size`` x ``size``."""
    data = load_digits()
    pad = (size - 8) // 2
    images = np.pad(data.images, ((0, 0), (pad, pad), (pad, pad)))[..., None] * (255 / 16)
    return images.astype("float32"), data.target.astype("int32")


def test_import_zoo_loads_no_tensorflow_off_its_backend():
    code = ("import sys, zoo; print(sorted(name for name in ('tensorflow', 'tensorflow_datasets', 'recipes') "
            "if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_BACKEND": BACKEND},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = ["tensorflow"] if BACKEND == "tensorflow" else []  # Keras loads it for its TensorFlow backend
    assert result.stdout.splitlines()[-1] == str(expected), result.stdout


@pytest.mark.parametrize("conditional", [False, True], ids=["dcgan", "conditional"])
def test_gan_trains_evaluates_saves_and_loads(conditional, tmp_path):
    images, labels = digits(12)
    keras.utils.set_random_seed(0)
    gan = zoo.gan.gan(latent_dim=16, image_shape=(12, 12, 1), num_classes=10 if conditional else 0, width=16,
                      seed=0)
    gan.compile()
    generator_before = [to_numpy(weight).copy() for weight in gan.generator.trainable_weights]
    train = (images[:512], labels[:512]) if conditional else (images[:512],)
    history = gan.fit(*train, batch_size=64, epochs=3, verbose=0).history
    # The discriminator learns to tell real digits from samples; the generator moves too.
    assert history["d_loss"][-1] < history["d_loss"][0] - 0.05, history
    assert history["real_score"][-1] > history["real_score"][0], history
    assert np.all(np.isfinite(history["g_loss"])), history
    assert any(not np.allclose(old, to_numpy(new)) for old, new in zip(generator_before,
                                                                       gan.generator.trainable_weights))
    # Batch statistics and both optimizers' state came out of the step (on JAX: out of its state).
    assert np.abs(to_numpy(gan.generator.get_layer("project_bn").moving_mean)).max() > 0
    assert int(to_numpy(gan.d_optimizer.iterations)) == int(to_numpy(gan.g_optimizer.iterations)) == 3 * 8
    held_out = (images[512:640], labels[512:640]) if conditional else (images[512:640],)
    logs = gan.evaluate(*held_out, batch_size=64, verbose=0, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "real_score", "fake_score"} and np.isfinite(list(logs.values())).all()

    gan.save(tmp_path / "gan.keras")
    restored = keras.models.load_model(tmp_path / "gan.keras")
    noise = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    inputs = [noise, labels[:8]] if conditional else noise
    np.testing.assert_allclose(to_numpy(restored.generator(inputs)), to_numpy(gan.generator(inputs)), atol=1e-4)
    assert int(to_numpy(restored.d_optimizer.iterations)) == 24


def test_vae_trains_evaluates_saves_and_loads(tmp_path):
    images, _ = digits()
    keras.utils.set_random_seed(0)
    vae = zoo.autoencoder.vae(input_shape=(8, 8, 1), latent_dim=2, hidden=(64, 32), seed=0)
    vae.compile(keras.optimizers.Adam(1e-3))
    before = vae.evaluate(images[1024:], batch_size=256, verbose=0, return_dict=True)
    history = vae.fit(images[:1024], batch_size=64, epochs=3, verbose=0).history
    after = vae.evaluate(images[1024:], batch_size=256, verbose=0, return_dict=True)
    # -ELBO in nats per held-out image: 44.5-44.8 untrained, 32.6-33.4 after three epochs (all three backends).
    assert history["loss"][-1] < 0.9 * history["loss"][0], history["loss"]
    assert after["loss"] < 0.85 * before["loss"], (before, after)
    assert after["reconstruction_loss"] + after["kl_loss"] == pytest.approx(after["loss"], rel=1e-5)
    vae.save(tmp_path / "vae.keras")
    restored = keras.models.load_model(tmp_path / "vae.keras")
    np.testing.assert_allclose(restored.predict(images[:8], verbose=0), vae.predict(images[:8], verbose=0),
                               atol=1e-6)


def readme_builder_block() -> str:
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Use a builder in your own code\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```\n", 1)[0]


def test_the_readme_builder_examples_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the block saves resnet20.keras and samples.png where it runs
    namespace = {"__name__": "readme"}
    exec(compile(readme_builder_block(), "README.md", "exec"), namespace)
    assert (tmp_path / "resnet20.keras").is_file() and (tmp_path / "samples.png").is_file()
    assert namespace["restored"].output_shape == (None, 10)
    assert namespace["grid"].shape == (100, 32, 32, 1)
