"""Autoencoders: dense and convolutional autoencoders, a denoising variant, and variational
autoencoders, ``VAE`` models (the class is in ``zoo.vae``, reachable as ``zoo.autoencoder.VAE``)
that train with their own ``train_step``.

    model = zoo.build("mnist_dense_autoencoder")             # raw 28x28x1 pixels -> intensities in [0, 1]
    model.compile("adam", loss=zoo.autoencoder.bernoulli_cross_entropy)
    model.fit(images, images / 255, epochs=10)               # targets: the same images scaled to [0, 1]

    vae = zoo.build("mnist_vae")                             # 2-d latent space
    vae.compile(keras.optimizers.Adam(1e-3))
    vae.fit(images, epochs=20)                               # logs loss (-ELBO), reconstruction_loss, kl_loss, elbo
    zoo.autoencoder.encode(vae, images)                      # posterior means (codes, for an autoencoder)
    zoo.autoencoder.sample_images(vae, 100, seed=0)          # decoded from the prior N(0, I)

Every model takes raw pixels (``input_scale``, 1/255 by default, maps them to [0, 1] inside
the model, so a saved model takes raw uint8 images) and returns intensities in [0, 1]. Each
holds two nested models: ``encoder`` (intensities to a code; a VAE's gives the posterior's
mean and log-variance) and ``decoder`` (a code to per-pixel logits; a sigmoid outside it
makes intensities). The denoising variant adds Gaussian noise to the intensities
(``noise_stddev``) inside the model, in training only: fitted on clean targets, it learns
to undo the corruption, and the saved model is the whole thing.

The VAE's loss and train step are described in ``zoo.vae``. The builders and the helpers use
only ``keras.ops`` (tested on TensorFlow only).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from zoo.layers import check_choice
from zoo.registry import register_model
from zoo.vae import VAE, _to_intensities  # _to_intensities: the sigmoid both kinds end with

ARCHITECTURES = ("dense", "conv")


@keras.saving.register_keras_serializable(package="zoo")
def bernoulli_cross_entropy(targets, intensities):
    """Per-image sum of the per-pixel binary cross-entropies (nats) of predicted intensities
    against target intensities, both in [0, 1]: an autoencoder's loss on the VAE's scale."""
    per_pixel = ops.binary_crossentropy(ops.cast(targets, intensities.dtype), intensities)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def _check_shapes(input_shape, latent_dim: int, architecture: str, filters: Sequence[int] = ()) -> tuple:
    input_shape = tuple(input_shape)
    check_choice("architecture", architecture, ARCHITECTURES)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), e.g. (28, 28, 1); got {input_shape}")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be at least 1, got {latent_dim}")
    factor = 2 ** len(filters)
    if architecture == "conv" and (input_shape[0] % factor or input_shape[1] % factor):
        raise ValueError(f"A convolutional autoencoder with {len(filters)} stride-2 layers needs height and width "
                         f"divisible by {factor}; got input_shape {input_shape}. Use fewer filters or "
                         f"architecture='dense'.")
    return input_shape


# --- encoders and decoders -----------------------------------------------------------------

def _code_heads(x, latent_dim: int, variational: bool):
    if variational:
        return [layers.Dense(latent_dim, name="mean")(x), layers.Dense(latent_dim, name="log_variance")(x)]
    return layers.Dense(latent_dim, name="code")(x)


def dense_encoder(input_shape, hidden: Sequence[int], latent_dim: int, variational: bool = False) -> keras.Model:
    """Intensities to a code (or, ``variational``, to a posterior mean and log-variance)."""
    intensities = keras.Input(shape=tuple(input_shape), name="intensities")
    x = layers.Flatten(name="flatten")(intensities)
    for index, units in enumerate(hidden):
        x = layers.Dense(units, activation="relu", name=f"dense_{index}")(x)
    return keras.Model(intensities, _code_heads(x, latent_dim, variational), name="encoder")


def dense_decoder(output_shape, hidden: Sequence[int], latent_dim: int) -> keras.Model:
    """A code to per-pixel logits of shape ``output_shape``; ``hidden`` mirrors the encoder's."""
    code = keras.Input(shape=(latent_dim,), name="code")
    x = code
    for index, units in enumerate(reversed(tuple(hidden))):
        x = layers.Dense(units, activation="relu", name=f"dense_{index}")(x)
    x = layers.Dense(int(np.prod(output_shape)), name="logits")(x)
    return keras.Model(code, layers.Reshape(tuple(output_shape), name="to_image")(x), name="decoder")


def conv_encoder(input_shape, filters: Sequence[int], dense_units: int, latent_dim: int,
                 variational: bool = False) -> keras.Model:
    """Stride-2 3x3 ReLU convolutions (``filters``), a dense layer, then the code heads."""
    intensities = keras.Input(shape=tuple(input_shape), name="intensities")
    x = intensities
    for index, width in enumerate(filters):
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", name=f"conv_{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    return keras.Model(intensities, _code_heads(x, latent_dim, variational), name="encoder")


def conv_decoder(output_shape, filters: Sequence[int], dense_units: int, latent_dim: int) -> keras.Model:
    """The encoder mirrored: dense layers to a small map, stride-2 transposed convolutions,
    then a 3x3 convolution to per-pixel logits."""
    height, width, channels = output_shape
    factor = 2 ** len(filters)
    code = keras.Input(shape=(latent_dim,), name="code")
    x = code
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = layers.Dense(height // factor * width // factor * filters[-1], activation="relu", name="project")(x)
    x = layers.Reshape((height // factor, width // factor, filters[-1]), name="to_map")(x)
    for index, count in enumerate(reversed(tuple(filters))):
        x = layers.Conv2DTranspose(count, 3, strides=2, padding="same", activation="relu", name=f"up_{index}")(x)
    return keras.Model(code, layers.Conv2D(channels, 3, padding="same", name="logits")(x), name="decoder")


def _networks(architecture, input_shape, latent_dim, hidden, filters, dense_units, variational):
    if architecture == "dense":
        return (dense_encoder(input_shape, hidden, latent_dim, variational),
                dense_decoder(input_shape, hidden, latent_dim))
    return (conv_encoder(input_shape, filters, dense_units, latent_dim, variational),
            conv_decoder(input_shape, filters, dense_units, latent_dim))


# --- plain and denoising autoencoders -----------------------------------------------------------

def autoencoder(input_shape: Sequence[int] = (28, 28, 1), latent_dim: int = 2, architecture: str = "dense",
                hidden: Sequence[int] = (512, 256), filters: Sequence[int] = (32, 64), dense_units: int = 128,
                noise_stddev: float = 0.0, input_scale: float = 1 / 255, name: str = "autoencoder") -> keras.Model:
    """Raw pixels -> ``rescale`` -> [``corruption``] -> ``encoder`` -> ``decoder`` -> sigmoid.

    ``architecture="dense"``: ReLU layers of ``hidden`` units (mirrored in the decoder);
    ``"conv"``: stride-2 convolutions of ``filters``, a ``dense_units`` layer, and their
    transposes. ``noise_stddev > 0`` makes a denoising autoencoder (Vincent et al. 2008), here
    with additive Gaussian noise of that standard deviation on the [0, 1] intensities, in
    training only.
    Train it on ``(raw images, images * input_scale)`` pairs.
    """
    input_shape = _check_shapes(input_shape, latent_dim, architecture, filters)
    if noise_stddev < 0:
        raise ValueError(f"noise_stddev must be >= 0 (0: no corruption), got {noise_stddev}")
    encoder, decoder = _networks(architecture, input_shape, latent_dim, hidden, filters, dense_units, False)
    image = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(input_scale, name="rescale")(image)
    if noise_stddev:
        x = layers.GaussianNoise(noise_stddev, name="corruption")(x)  # active only when training=True
    return keras.Model(image, _to_intensities()(decoder(encoder(x))), name=name)


# --- the variational autoencoder -------------------------------------------------------------

def vae(input_shape: Sequence[int] = (28, 28, 1), latent_dim: int = 2, architecture: str = "dense",
        hidden: Sequence[int] = (512, 256), filters: Sequence[int] = (32, 64), dense_units: int = 128,
        input_scale: float = 1 / 255, seed: int | None = None, name: str = "vae") -> VAE:
    """A ``VAE`` with a dense or convolutional encoder and decoder (the layouts of
    ``autoencoder``; the encoder ends in two heads, mean and log-variance). Uncompiled."""
    input_shape = _check_shapes(input_shape, latent_dim, architecture, filters)
    encoder, decoder = _networks(architecture, input_shape, latent_dim, hidden, filters, dense_units, True)
    return VAE(encoder, decoder, input_scale=input_scale, seed=seed, name=name)


# --- codes, decoding, sampling ---------------------------------------------------------------

def parts(model: keras.Model):
    """(encoder, decoder, input_scale) of a VAE or of an autoencoder built here."""
    if isinstance(model, VAE):
        return model.encoder, model.decoder, model.input_scale
    try:
        return model.get_layer("encoder"), model.get_layer("decoder"), model.get_layer("rescale").scale
    except ValueError:
        raise ValueError(f"{model.name!r} is not an autoencoder of zoo.autoencoder (it needs nested 'encoder' and "
                         f"'decoder' models and a 'rescale' layer)") from None


def encode(model: keras.Model, images, batch_size: int = 1000) -> np.ndarray:
    """Codes of raw images, ``(count, latent_dim)``: an autoencoder's code, a VAE's posterior
    mean (no corruption, no sampling)."""
    encoder, _, input_scale = parts(model)
    outputs = encoder.predict(np.asarray(images, "float32") * input_scale, batch_size=batch_size, verbose=0)
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def decode(model: keras.Model, codes, batch_size: int = 1000) -> np.ndarray:
    """Images (intensities in [0, 1]) decoded from codes ``(count, latent_dim)``."""
    logits = parts(model)[1].predict(np.asarray(codes, "float32"), batch_size=batch_size, verbose=0)
    return (1.0 / (1.0 + np.exp(-logits.astype("float64")))).astype("float32")


def sample_images(model: VAE, count: int, seed: int = 0) -> np.ndarray:
    """``count`` images decoded from seeded draws of the prior N(0, I)."""
    if not isinstance(model, VAE):
        raise ValueError(f"{model.name!r} has no prior to sample: only a VAE does (zoo.build('mnist_vae'))")
    return decode(model, np.random.default_rng(seed).standard_normal((count, model.latent_dim)))


def latent_grid(model: VAE, steps: int = 15) -> np.ndarray:
    """A 2-d VAE's decoded ``steps x steps`` grid of latent points at evenly spaced quantiles of
    the prior, the way Kingma and Welling (2014) drew a learned manifold: z1 grows to the right,
    z2 upwards (as in a scatter of the codes)."""
    if not isinstance(model, VAE) or model.latent_dim != 2:
        raise ValueError(f"latent_grid draws a 2-d VAE's latent space; {model.name!r} is "
                         + (f"a {model.latent_dim}-d VAE" if isinstance(model, VAE) else "not a VAE"))
    quantiles = [statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, steps)]
    z1, z2 = np.meshgrid(quantiles, quantiles[::-1])
    return decode(model, np.stack([z1.ravel(), z2.ravel()], axis=1))


# --- registered models ----------------------------------------------------------------------

@register_model
def mnist_dense_autoencoder(input_shape=(28, 28, 1), latent_dim=2, **kwargs) -> keras.Model:
    """Dense autoencoder 784-512-256-latent-256-512-784; 2-d codes by default, so they can be drawn."""
    return autoencoder(input_shape, latent_dim, "dense", name="mnist_dense_autoencoder", **kwargs)


@register_model
def mnist_conv_autoencoder(input_shape=(28, 28, 1), latent_dim=2, **kwargs) -> keras.Model:
    """Convolutional autoencoder: stride-2 convolutions (32, 64), a 128-unit layer, and their transposes."""
    return autoencoder(input_shape, latent_dim, "conv", name="mnist_conv_autoencoder", **kwargs)


@register_model
def mnist_denoising_autoencoder(input_shape=(28, 28, 1), latent_dim=2, noise_stddev=0.5, **kwargs) -> keras.Model:
    """The convolutional autoencoder trained through Gaussian noise (stddev 0.5 on [0, 1] intensities)."""
    return autoencoder(input_shape, latent_dim, "conv", noise_stddev=noise_stddev,
                       name="mnist_denoising_autoencoder", **kwargs)


@register_model
def mnist_vae(input_shape=(28, 28, 1), latent_dim=2, **kwargs) -> VAE:
    """Dense VAE 784-512-256-(mean, log-variance) with a 2-d latent space, decoder mirrored."""
    return vae(input_shape, latent_dim, "dense", name="mnist_vae", **kwargs)


@register_model
def mnist_conv_vae(input_shape=(28, 28, 1), latent_dim=2, **kwargs) -> VAE:
    """Convolutional VAE: the conv autoencoder's layout with mean and log-variance heads."""
    return vae(input_shape, latent_dim, "conv", name="mnist_conv_vae", **kwargs)


@register_model
def tiny_autoencoder(input_shape=(8, 8, 1), latent_dim=2, **kwargs) -> keras.Model:
    """Dense autoencoder for 8x8 digits (0-255 pixels, as the recipes give them), for tests and quick runs."""
    kwargs = {"hidden": (32,), **kwargs}
    return autoencoder(input_shape, latent_dim, "dense", name="tiny_autoencoder", **kwargs)


@register_model
def tiny_vae(input_shape=(8, 8, 1), latent_dim=2, **kwargs) -> VAE:
    """Dense VAE for 8x8 digits (0-255 pixels, as the recipes give them), for tests and quick runs."""
    kwargs = {"hidden": (32,), **kwargs}
    return vae(input_shape, latent_dim, "dense", name="tiny_vae", **kwargs)
