"""``VAE``: a variational autoencoder as a ``keras.Model`` with its own ``train_step``.

    vae = zoo.build("mnist_vae")            # or zoo.autoencoder.vae(...): the builders live there
    vae.compile(keras.optimizers.Adam(1e-3))
    vae.fit(images, epochs=20)              # logs loss (-ELBO), reconstruction_loss, kl_loss, elbo

The VAE (Kingma and Welling 2014) has a Gaussian posterior q(z|x) with diagonal covariance,
a standard normal prior and a Bernoulli decoder on the [0, 1] intensities, trained through
the reparameterisation trick z = mean + exp(log_variance / 2) * noise. Its loss is the
negative evidence lower bound per image, in nats: ``reconstruction_loss`` (the decoder's
cross-entropy summed over pixels, at one posterior sample) plus ``kl_loss`` (KL(q(z|x) ||
N(0, I)), in closed form, Appendix B of the paper). On grey-level intensities the Bernoulli
"likelihood" is a cross-entropy, not a normalised density: published log-likelihoods on
binarised MNIST are not the same quantity.

``VAE.train_step`` runs on the TensorFlow, JAX and PyTorch backends (``zoo.steps``, as
``zoo.gan.GAN``'s does), and on TensorFlow it is correct under ``tf.distribute``: each replica draws its own
slice of one global batch of noise (so 1 and N replicas compute the same step), gradients are
the global-batch mean, and the logged values are per-image means over all replicas.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from zoo import steps
from zoo.layers import replica_normal, replica_position


def _to_intensities():
    # float32 even under mixed precision: the loss compares these with the targets.
    return layers.Activation("sigmoid", dtype="float32", name="reconstruction")


@keras.saving.register_keras_serializable(package="zoo")
class VAE(keras.Model):
    """A variational autoencoder over an ``encoder`` (intensities -> [mean, log_variance]) and
    a ``decoder`` (latent -> per-pixel logits).

    Calling the model reconstructs deterministically: raw pixels -> posterior mean -> decoded
    intensities. ``fit`` takes raw images (a target, if given, is ignored: the VAE models its
    own input) and logs per-image means over the epoch: ``loss`` (the negative ELBO, nats),
    ``reconstruction_loss``, ``kl_loss`` (loss = reconstruction_loss + kl_loss) and ``elbo``
    (= -loss). ``evaluate`` reports the same on held-out images, sampling the posterior once
    per image. ``compile`` takes an optimizer (Adam(1e-3) by default); a ``loss`` is ignored.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, input_scale: float = 1 / 255,
                 seed: int | None = None, **kwargs):
        if len(encoder.outputs) != 2 or tuple(encoder.outputs[0].shape) != tuple(encoder.outputs[1].shape):
            raise ValueError(f"The encoder must give two outputs of one shape, the posterior's mean and "
                             f"log-variance; got outputs of shapes {[tuple(out.shape) for out in encoder.outputs]}")
        latent_dim = int(encoder.outputs[0].shape[-1])
        if tuple(decoder.inputs[0].shape[1:]) != (latent_dim,):
            raise ValueError(f"The encoder makes {latent_dim}-d codes but the decoder takes "
                             f"{tuple(decoder.inputs[0].shape[1:])}")
        if tuple(decoder.outputs[0].shape[1:]) != tuple(encoder.inputs[0].shape[1:]):
            raise ValueError(f"The decoder makes images of shape {tuple(decoder.outputs[0].shape[1:])} but the "
                             f"encoder takes {tuple(encoder.inputs[0].shape[1:])}")
        image = keras.Input(shape=tuple(encoder.inputs[0].shape[1:]), name="image")
        mean, _ = encoder(layers.Rescaling(input_scale, name="rescale")(image))
        # A functional model with its own train_step: inputs, outputs, predict and summary work as usual.
        super().__init__(image, _to_intensities()(decoder(mean)), **kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.input_scale, self.seed, self.latent_dim = input_scale, seed, latent_dim
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "reconstruction_loss", "kl_loss", "elbo")}

    def compile(self, optimizer="adam", **kwargs):
        kwargs.pop("loss", None)  # the loss is the negative ELBO
        super().compile(optimizer=optimizer, **kwargs)
        # Create the optimizer's slots here, in the caller's strategy scope: created lazily
        # inside a distributed train step they fail (as for zoo.gan.GAN).
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # Keras skips a custom compile on load; this one takes the saved arguments as they are,
        # and building the optimizer here lets loading restore its state.
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _noise(self, batch_size):
        """This replica's slice of one global batch of noise: 1 and N replicas draw the same numbers."""
        return replica_normal(batch_size, self.latent_dim, self.noise_seed)

    def per_image_losses(self, images, training: bool = False):
        """(reconstruction, KL) per image, in nats, at one posterior sample per image."""
        intensities = ops.cast(images, "float32") * self.input_scale  # float32 even under mixed precision
        mean, log_variance = (ops.cast(value, "float32") for value in self.encoder(intensities, training=training))
        latent = mean + ops.exp(0.5 * log_variance) * self._noise(ops.shape(images)[0])
        logits = ops.cast(self.decoder(latent, training=training), "float32")
        cross_entropy = ops.binary_crossentropy(intensities, logits, from_logits=True)
        reconstruction = ops.sum(ops.reshape(cross_entropy, (ops.shape(images)[0], -1)), axis=-1)
        kl = -0.5 * ops.sum(1.0 + log_variance - ops.square(mean) - ops.exp(log_variance), axis=-1)
        return reconstruction, kl

    def _record(self, reconstruction, kl):
        # Per-image values: each Mean counts images, so epochs and replicas average exactly.
        for name, values in (("loss", reconstruction + kl), ("reconstruction_loss", reconstruction),
                             ("kl_loss", kl), ("elbo", -(reconstruction + kl))):
            self.trackers[name].update_state(values)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @staticmethod
    def _images(data):
        return data[0] if isinstance(data, (tuple, list)) else data

    def _train(self, data):
        def loss():
            reconstruction, kl = self.per_image_losses(self._images(data), training=True)
            # Under tf.distribute the replicas' gradients are summed: divide each replica's
            # mean by their number so the sum is the global-batch mean.
            return ops.mean(reconstruction + kl) / replica_position()[1], reconstruction, kl

        _, reconstruction, kl = steps.gradient_step(loss, self.trainable_variables, self.optimizer)
        return self._record(reconstruction, kl)

    def train_step(self, *args):  # (data), or (state, data) on JAX: zoo.steps
        return steps.train_step(self, self._train, *args)

    def test_step(self, *args):
        return steps.test_step(self, lambda data: self._record(*self.per_image_losses(self._images(data))), *args)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "input_scale": self.input_scale, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)
