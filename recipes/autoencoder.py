"""Autoencoders on MNIST: dense, convolutional and denoising autoencoders and a variational
autoencoder, with their latent spaces drawn.

    zoo run autoencoder                                       # mnist_vae: dense VAE, 2-d latent space
    zoo run autoencoder --model mnist_dense_autoencoder
    zoo run autoencoder --model mnist_conv_autoencoder --epochs 5
    zoo run autoencoder --model mnist_denoising_autoencoder --epochs 5
    zoo run autoencoder --model mnist_conv_vae --latent-dim 16 --epochs 5
    zoo run autoencoder --quick                               # tiny_vae on scikit-learn's 8x8 digits

Data comes through tfds (import the raw files once offline: ``zoo data import mnist --from
DIR``). The models (zoo/autoencoder.py) take raw pixels and return intensities in [0, 1];
training pairs are (raw image, image in [0, 1]). Autoencoders minimise the Bernoulli
cross-entropy of the reconstruction summed over pixels (nats per image), the VAE its negative
ELBO per image (reconstruction cross-entropy + KL, both logged). Adam 1e-3, batch 128 per
replica, a 2-d latent space by default so that every model's codes can be drawn.

Row metrics: ``test_loss``, the objective on the test split; ``test_mse``, per-pixel squared
error of the deterministic reconstruction (a VAE decodes its posterior mean); for a VAE
``test_elbo`` (= -test_loss, nats per image, one posterior sample per image) and its two
terms. Baselines from the training set's mean image as every reconstruction:
``mean_image_mse`` and ``mean_image_cross_entropy`` (the negative log-likelihood of
independent Bernoulli pixels, which a VAE's -ELBO must beat for its latent space to be worth
anything). ``denoised_mse``: error on test images given Gaussian noise of ``--noise-stddev``
on [0, 1] intensities (the noise alone: noise_stddev^2). Pictures, copied to
results/autoencoder/: test images, reconstructions, noisy copies and their reconstructions;
the test codes coloured by class (first two principal components above 2 dimensions); for a
VAE, 100 images decoded from the prior and, in 2-d, the decoded latent grid.

Measured on MNIST (results/autoencoder.csv, 2 CPU cores shared with other runs): mnist_vae,
20 epochs, test ELBO -143.55 nats per image (reconstruction 136.85 + KL 6.70; the mean image
205.80), MSE 0.0376, in 13 minutes; mnist_dense_autoencoder, 20 epochs, MSE 0.0359 in 13
minutes; mnist_denoising_autoencoder, 5 epochs, MSE 0.0423 (0.0426 from noisy copies) in
20 minutes (the mean image: 0.0675). All with a 2-d code, which keeps reconstructions blurry. The quick run (about
a minute of CPU time) reached test_elbo -25.4 nats against 27.2 for independent pixels.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from recipes.runtime.config import ConfigError, RunConfig


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


QUICK = {"dataset": "digits", "model": "tiny_vae", "epochs": 20, "batch_size": 32, "learning_rate": 1e-2}
PIXEL_MAX = {"mnist": 255.0, "fashion_mnist": 255.0, "digits": 16.0}


def is_vae(model_name: str) -> bool:
    return "vae" in model_name  # build_model checks that the name says what the model is


def PUBLISH(config: Config) -> tuple:  # noqa: N802  (the runtime's name for published artifacts)
    pictures = ("reconstructions.png", "latent_scatter.png")
    if is_vae(config.model):
        pictures += ("prior_samples.png",) + (("latent_manifold.png",) if config.latent_dim == 2 else ())
    return pictures


def run_name(config: Config) -> str:
    return config.model + (f"-latent{config.latent_dim}" if config.latent_dim != 2 else "")


def make_datasets(config: Config):
    import tensorflow as tf

    from recipes.runtime import data

    if config.dataset == "digits":
        labelled = data.digits_datasets(config.seed)
    else:
        labelled = data.load_image_classification(config.dataset, data.resolve_data_dir(config.data_dir))
    scale = 1.0 / PIXEL_MAX[config.dataset]

    def pair(image, label):  # (raw pixels, the same image in [0, 1]): input and reconstruction target
        image = tf.cast(image, tf.float32)
        return image, image * scale

    # The classes go to extras (for the latent scatter): an autoencoder predicts no classes.
    return dataclasses.replace(labelled, train=labelled.train.map(pair), test=labelled.test.map(pair),
                               num_classes=0, extras={"labelled": labelled, "pixel_max": PIXEL_MAX[config.dataset]})


def build_model(config: Config, datasets):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    options = {"input_shape": datasets.input_shape, "latent_dim": config.latent_dim,
               "input_scale": 1.0 / datasets.extras["pixel_max"]}
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


def report(model, datasets, config: Config, run_dir: str) -> dict:
    import numpy as np

    import zoo

    labelled, pixel_max = datasets.extras["labelled"], datasets.extras["pixel_max"]
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
    save = lambda images, name, columns=10: zoo.gan.save_grid(images, os.path.join(run_dir, name), columns=columns,
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
