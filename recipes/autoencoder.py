"""Autoencoders on MNIST: dense, convolutional and denoising autoencoders and a variational
autoencoder, with their latent spaces drawn.

    zoo run autoencoder                                       # mnist_vae: test ELBO -143.55 nats in 13 min
    zoo run autoencoder --model mnist_dense_autoencoder
    zoo run autoencoder --model mnist_denoising_autoencoder --epochs 5
    zoo run autoencoder --model mnist_conv_vae --latent-dim 16 --epochs 5
    zoo run autoencoder --quick                               # tiny_vae on scikit-learn's 8x8 digits

The models (zoo/autoencoder.py) take raw pixels and return intensities in [0, 1]; training
pairs are (raw image, image in [0, 1]). Autoencoders minimise the Bernoulli cross-entropy of
the reconstruction summed over pixels (nats per image), the VAE its negative ELBO. Adam 1e-3,
batch 128 per replica, a 2-d latent space by default so that every model's codes can be drawn.
Baselines from the training set's mean image stand beside the metrics (``mean_image_mse``,
``mean_image_cross_entropy``, which a VAE's -ELBO must beat). Pictures, copied to
results/autoencoder/: reconstructions (clean and noisy), the test codes by class, and for a VAE
prior samples and, in 2-d, the decoded latent grid.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from recipes.runtime.config import ConfigError, RunConfig
from recipes.runtime.recipe import Recipe


@dataclasses.dataclass
class Config(RunConfig):
    model: str = "mnist_vae"  # an autoencoder or VAE of zoo/autoencoder.py (zoo list '*autoencoder' / '*vae')
    dataset: Literal["mnist", "fashion_mnist", "digits"] = "mnist"  # digits: 8x8, ships with scikit-learn
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam
    latent_dim: int = 2  # 2: the codes are drawn as they are; more: their first 2 principal components are
    noise_stddev: float = 0.5  # on [0, 1] intensities: the denoising model's corruption; the report's noisy copies

    def __post_init__(self):
        if self.latent_dim < 1:
            raise ConfigError(f"--latent-dim must be at least 1, got {self.latent_dim}; 2 draws the latent space")
        if self.noise_stddev < 0:
            raise ConfigError(f"--noise-stddev must be >= 0 (a standard deviation on [0, 1] intensities), "
                              f"got {self.noise_stddev}; the default is 0.5")


PRESETS = {"quick": {"dataset": "digits", "model": "tiny_vae", "epochs": 20, "batch_size": 32, "learning_rate": 1e-2}}


def is_vae(model_name: str) -> bool:
    return "vae" in model_name  # build_model checks that the name says what the model is


def published(config: Config) -> tuple:
    pictures = ("reconstructions.png", "latent_scatter.png")
    if is_vae(config.model):
        pictures += ("prior_samples.png",) + (("latent_manifold.png",) if config.latent_dim == 2 else ())
    return pictures


def run_name(config: Config) -> str:
    return config.model + (f"-latent{config.latent_dim}" if config.latent_dim != 2 else "")


def make_datasets(config: Config):
    import tensorflow as tf

    from recipes.runtime import data

    labelled = data.images(config)
    scale = 1.0 / labelled.pixel_max

    def pair(image, label):  # (raw pixels, the same image in [0, 1]): input and reconstruction target
        image = tf.cast(image, tf.float32)
        return image, image * scale

    return dataclasses.replace(labelled, train=labelled.train.map(pair), test=labelled.test.map(pair),
                               task="reconstruct", labelled=labelled)


def build_model(config: Config, datasets, plan):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    options = {"input_shape": datasets.input_shape, "latent_dim": config.latent_dim,
               "input_scale": 1.0 / datasets.pixel_max}
    if "denoising" in config.model:
        options["noise_stddev"] = config.noise_stddev
    models = zoo.list_models("*autoencoder") + zoo.list_models("*vae")
    try:
        model = zoo.build(config.model, **options)
        zoo.autoencoder.parts(model)  # a ValueError unless it has an encoder and a decoder
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {config.model!r} is not an autoencoder the autoencoder recipe can train "
                          f"({error}); use one of {models}") from None
    vae = isinstance(model, zoo.autoencoder.VAE)
    if vae != is_vae(config.model):
        raise ConfigError(f"--model {config.model!r}: a VAE's name must contain 'vae' and no other model's may "
                          f"(the recipe publishes prior samples by name); rename it or use one of {models}")
    optimizer = keras.optimizers.Adam(config.learning_rate)
    if vae:
        model.compile(optimizer=optimizer, **compile_options(config))
    else:
        model.compile(optimizer=optimizer, loss=zoo.autoencoder.bernoulli_cross_entropy,
                      metrics=[keras.metrics.MeanSquaredError(name="mse")], **compile_options(config))
    return model


def save_latent_scatter(codes, labels, class_names, title: str, path: str) -> None:
    """The codes in 2-d (their first two principal components when wider), coloured by class."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    axes_names = ("z1", "z2")
    if codes.shape[1] > 2:
        centred = codes - codes.mean(axis=0)
        codes = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        axes_names, title = ("PC 1", "PC 2"), f"{title}\n(first 2 principal components of {centred.shape[1]}-d codes)"
    elif codes.shape[1] == 1:
        codes, axes_names = np.concatenate([codes, np.zeros_like(codes)], axis=1), ("z1", "")
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(class_names):
        chosen = labels == index
        axis.scatter(codes[chosen, 0], codes[chosen, 1], s=3, alpha=0.6, color=colours(index % 10), label=name)
    axis.legend(markerscale=4, fontsize=8, loc="best")
    axis.set_xlabel(axes_names[0])
    axis.set_ylabel(axes_names[1])
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report(run) -> dict:
    import numpy as np

    import zoo

    model, datasets, config, run_dir = run.model, run.datasets, run.config, run.output_dir
    labelled, pixel_max = datasets.labelled, datasets.pixel_max
    as_arrays = lambda dataset: [np.concatenate(part) for part in zip(*dataset.batch(4096).as_numpy_iterator())]
    train_images = as_arrays(labelled.train)[0].astype("float32")
    test_images, test_labels = as_arrays(labelled.test)
    test_images, test_labels = test_images.astype("float32"), test_labels.astype(int)
    targets = test_images / pixel_max
    mse = lambda images: float(np.mean((images - targets) ** 2))

    mean_image = np.clip(train_images.mean(axis=0) / pixel_max, 1e-7, 1 - 1e-7)
    cross_entropy = -(targets * np.log(mean_image) + (1 - targets) * np.log(1 - mean_image))
    noisy = test_images + np.random.default_rng(config.seed).normal(0, config.noise_stddev * pixel_max,
                                                                    test_images.shape).astype("float32")
    predict = lambda images: model.predict(images, batch_size=1000, verbose=0)
    reconstructions, denoised = predict(test_images), predict(noisy)
    vae = isinstance(model, zoo.autoencoder.VAE)
    metrics = {"mean_image_mse": mse(mean_image), "denoised_mse": mse(denoised),
               "mean_image_cross_entropy": float(cross_entropy.reshape(len(targets), -1).sum(axis=1).mean()),
               "latent_dim": config.latent_dim, "noise_stddev": config.noise_stddev}
    if vae:  # an autoencoder's test_mse is a compiled metric
        metrics["test_mse"] = mse(reconstructions)

    # One test image of each class (in class order where every class is present).
    shown = [int(np.flatnonzero(test_labels == label)[0]) for label in np.unique(test_labels)][:10]
    rows = [targets[shown], reconstructions[shown], noisy[shown] / pixel_max, denoised[shown]]
    scale = max(2, 56 // test_images.shape[1])
    save = lambda images, name, columns=10: zoo.images.save_grid(images, os.path.join(run_dir, name), columns=columns,
                                                             pixel_max=1.0, scale=scale)
    save(np.concatenate(rows), "reconstructions.png", columns=len(shown))
    kind = "posterior means" if vae else "codes"
    save_latent_scatter(zoo.autoencoder.encode(model, test_images), test_labels, labelled.class_names,
                        f"{model.name} on {datasets.name}: test-set {kind}",
                        os.path.join(run_dir, "latent_scatter.png"))
    if vae:
        save(zoo.autoencoder.sample_images(model, 100, seed=config.seed), "prior_samples.png")
        if config.latent_dim == 2:
            save(zoo.autoencoder.latent_grid(model, steps=15), "latent_manifold.png", columns=15)
    return metrics


RECIPE = Recipe(
    "autoencoder", Config, make_datasets, build_model, report=report, run_name=run_name, presets=PRESETS,
    data_forms=("images",),
    publish=published, headline=("test_elbo", "test_mse", "denoised_mse"), doc=__doc__,
    columns={
        "test_elbo": "VAEs: evidence lower bound on the test images in nats per image (negative; higher is better), "
                     "one posterior sample per image, = -test_loss; a Bernoulli decoder on [0, 1] grey levels, so "
                     "not comparable to log-likelihoods on binarised MNIST",
        "test_reconstruction_loss, test_kl_loss": "VAEs: the two terms of -test_elbo: the decoder's Bernoulli "
            "cross-entropy summed over pixels at a posterior sample, and KL(q(z|x) || N(0, I)), nats per image",
        "test_mse": "per-pixel squared error of the deterministic reconstruction (a VAE decodes its posterior "
                    "mean), intensities in [0, 1]; test_loss is the summed per-pixel cross-entropy in nats per "
                    "image (VAEs: -ELBO)",
        "mean_image_mse, mean_image_cross_entropy": "the training set's mean image as every test reconstruction: "
            "its per-pixel MSE and its cross-entropy in nats per image (the negative log-likelihood of independent "
            "Bernoulli pixels, which a VAE's -test_elbo must beat)",
        "denoised_mse": "per-pixel MSE against the clean test images of the reconstructions of copies with Gaussian "
                        "noise of noise_stddev on [0, 1] intensities (the noise alone scores noise_stddev^2)",
        "latent_dim, noise_stddev": "code size, and the noise behind denoised_mse (also the denoising model's "
                                    "training corruption)"},
    summary="Autoencoders on MNIST: dense, convolutional, denoising and a variational autoencoder")
