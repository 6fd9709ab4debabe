"""Generative adversarial networks: DCGAN generators and discriminators (optionally
class-conditional) and ``GAN``, a ``keras.Model`` that trains both with its own ``train_step``.

    generator = zoo.build("dcgan_generator")                  # 128-d noise -> 28x28x1 pixels
    discriminator = zoo.build("dcgan_discriminator")          # 28x28x1 pixels -> real/fake logit
    gan = zoo.gan.GAN(generator, discriminator)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    gan.fit(images, epochs=10)                                # or (images, labels) when conditional
    zoo.images.save_grid(zoo.gan.sample_images(gan.generator, 64, seed=0), "samples.png")

The networks follow Radford et al. (2016): strided (transposed) convolutions instead of
pooling, batch normalisation and ReLU in the generator, LeakyReLU(0.2) in the
discriminator, tanh output. Both work in raw pixel units (``pixel_max``, 255 by default):
the discriminator rescales its input and the generator's output is rescaled back, so
generated images go wherever real ones go (a classifier, a PNG). The conditional variant
(``num_classes > 0``) feeds the label to the generator as an embedding concatenated to the
noise and to the discriminator as a projection (Miyato and Koyama 2018): the logit gains
the inner product of a class embedding with the image features.

``GAN.train_step`` runs on the TensorFlow, JAX and PyTorch backends (``zoo.steps``), and on
TensorFlow it is correct under ``tf.distribute``: each replica draws its own slice of one global batch of
noise (so 1 and N replicas compute the same step), the generator's batch normalisation is
synchronised across replicas, gradients are the global-batch mean, and the logged losses
are undone from Keras's per-replica loss scaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from zoo.fid import frechet_distance  # noqa: F401  (a generator's quality, as zoo.gan.frechet_distance)
from zoo import steps
from zoo.layers import GlobalBatchNormalization, check_choice, replica_normal, replica_position
from zoo.registry import register_model


UPSAMPLINGS = ("transpose", "resize")


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    image_shape = tuple(image_shape)
    if len(image_shape) != 3 or image_shape[0] % 4 or image_shape[1] % 4:
        raise ValueError(f"image_shape must be (height, width, channels) with height and width divisible by 4 "
                         f"(the networks up- and down-sample twice by 2), e.g. (28, 28, 1) or (32, 32, 3); "
                         f"got {image_shape}")
    return image_shape


def generator(latent_dim: int = 128, image_shape: Sequence[int] = (28, 28, 1), num_classes: int = 0,
              width: int = 64, label_dim: int = 32, pixel_max: float = 255.0, upsampling: str = "transpose",
              name: str = "generator") -> keras.Model:
    """Noise (and, when ``num_classes > 0``, an integer label) to images in ``[0, pixel_max]``.

    Dense to a (H/4, W/4, 4*width) map, two stride-2 upsamplings (2*width, width filters)
    with batch normalisation and ReLU, then a 3x3 convolution with tanh. ``upsampling``:
    ``"transpose"`` (Radford et al.'s 4x4 transposed convolutions, the default) or
    ``"resize"`` (nearest-neighbour doubling, then a 3x3 convolution: no checkerboard
    overlap, Odena et al. 2016; faster on the TensorFlow CPU backend, quality not measured).
    """
    check_choice("upsampling", upsampling, UPSAMPLINGS)
    height, image_width, channels = _check_image_shape(image_shape)
    noise = keras.Input(shape=(latent_dim,), name="noise")
    inputs, x = [noise], noise
    if num_classes:
        label = keras.Input(shape=(), dtype="int32", name="label")
        embedded = layers.Embedding(num_classes, label_dim, name="label_embedding")(label)
        inputs.append(label)
        x = layers.Concatenate(name="noise_and_label")([noise, embedded])
    x = layers.Dense(height // 4 * image_width // 4 * width * 4, use_bias=False, name="project")(x)
    # Batch statistics over the global batch under tf.distribute, so the generator computes
    # the same thing on 1 or N replicas.
    x = GlobalBatchNormalization(name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((height // 4, image_width // 4, width * 4), name="to_map")(x)
    for index, filters in enumerate((width * 2, width)):
        if upsampling == "transpose":
            x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False, name=f"up{index + 1}")(x)
        else:
            x = layers.UpSampling2D(2, name=f"up{index + 1}_resize")(x)
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"up{index + 1}")(x)
        x = GlobalBatchNormalization(name=f"up{index + 1}_bn")(x)
        x = layers.ReLU(name=f"up{index + 1}_relu")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="tanh", name="to_image")(x)
    # float32 under a mixed-precision policy: pixel units and the losses stay exact
    images = layers.Rescaling(pixel_max / 2, offset=pixel_max / 2, dtype="float32", name="to_pixels")(x)
    return keras.Model(inputs if num_classes else noise, images, name=name)


def discriminator(image_shape: Sequence[int] = (28, 28, 1), num_classes: int = 0, width: int = 64,
                  pixel_max: float = 255.0, name: str = "discriminator") -> keras.Model:
    """Images in ``[0, pixel_max]`` (and a label when ``num_classes > 0``) to one real/fake logit.

    Two stride-2 4x4 convolutions (width, 2*width) with LeakyReLU(0.2), flattened, then a
    linear logit (plus the projection term of the label). No batch normalisation: its
    statistics would mix real and generated batches and differ between replicas.
    """
    image_shape = _check_image_shape(image_shape)
    image = keras.Input(shape=image_shape, name="image")
    x = layers.Rescaling(2 / pixel_max, offset=-1.0, name="to_unit_range")(image)
    for index, filters in enumerate((width, width * 2)):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"down{index + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"down{index + 1}_leaky_relu")(x)
    features = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(features)  # float32 under mixed precision
    if not num_classes:
        return keras.Model(image, logit, name=name)
    label = keras.Input(shape=(), dtype="int32", name="label")
    class_embedding = layers.Embedding(num_classes, features.shape[-1], name="class_embedding")(label)
    projection = layers.Dot(axes=1, name="projection")([features, class_embedding])
    logit = layers.Add(dtype="float32", name="conditional_logit")([logit, projection])
    return keras.Model([image, label], logit, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class GAN(keras.Model):
    """A generator and a discriminator trained against each other (non-saturating loss).

    ``fit`` takes batches of images, or ``(images, labels)`` for conditional networks
    (generated images then get the batch's labels). Each step updates the discriminator
    once, then the generator once, and logs ``d_loss``, ``g_loss`` and the discriminator's
    mean probabilities ``real_score`` (of real images) and ``fake_score`` (of generated
    ones). ``evaluate`` reports the same on held-out images without updating anything.
    Calling the model generates: ``gan(noise)`` or ``gan([noise, labels])``.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, label_smoothing: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5) (real targets become 1 - label_smoothing); "
                             f"got {label_smoothing}")
        generator_conditional, discriminator_conditional = len(generator.inputs) > 1, len(discriminator.inputs) > 1
        if generator_conditional != discriminator_conditional:
            raise ValueError(f"Both networks must be conditional or neither: the generator takes "
                             f"{len(generator.inputs)} input(s), the discriminator {len(discriminator.inputs)}")
        if tuple(generator.output_shape[1:]) != tuple(discriminator.inputs[0].shape[1:]):
            raise ValueError(f"The generator makes images of shape {generator.output_shape[1:]} but the "
                             f"discriminator takes {discriminator.inputs[0].shape[1:]}")
        self.generator = generator
        self.discriminator = discriminator
        self.label_smoothing = label_smoothing
        self.seed = seed
        self.conditional = generator_conditional
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.loss_function = keras.losses.BinaryCrossentropy(from_logits=True)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "real_score",
                                                                           "fake_score")}
        self.d_optimizer = self.g_optimizer = None
        self.built = True  # both networks are functional models, built at construction

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """``d_optimizer``/``g_optimizer``: optimizers for the discriminator and the generator
        (default Adam(2e-4, beta_1=0.5) each, as Radford et al.); other arguments go to
        ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``)."""
        kwargs.pop("optimizer", None)
        kwargs.pop("loss", None)
        super().compile(**kwargs)
        self.optimizer = None  # compile's default RMSprop would be saved and restored for nothing
        self.d_optimizer = keras.optimizers.get(d_optimizer) if d_optimizer is not None else \
            keras.optimizers.Adam(2e-4, beta_1=0.5, name="d_adam")
        self.g_optimizer = keras.optimizers.get(g_optimizer) if g_optimizer is not None else \
            keras.optimizers.Adam(2e-4, beta_1=0.5, name="g_adam")
        # Create the optimizers' slots here, in the caller's strategy scope: created lazily
        # inside a distributed train step they fail ("You must feed a value for placeholder").
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        if keras.backend.backend() == "jax":  # its trainer carries model.optimizer.variables as the state
            self.optimizer = steps.Optimizers(self.d_optimizer, self.g_optimizer)

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        if self.d_optimizer is not None:
            config.update(d_optimizer=keras.saving.serialize_keras_object(self.d_optimizer),
                          g_optimizer=keras.saving.serialize_keras_object(self.g_optimizer))
        return config

    def compile_from_config(self, config):
        config = dict(config)
        optimizers = {key: keras.saving.deserialize_keras_object(config.pop(key))
                      for key in ("d_optimizer", "g_optimizer") if key in config}
        config = {key: value for key, value in config.items() if key in ("jit_compile", "steps_per_execution")}
        self.compile(**optimizers, **config)  # builds the optimizers, so loading restores their state

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _noise(self, batch_size):
        """This replica's slice of one global batch of noise: 1 and N replicas draw the same numbers."""
        return replica_normal(batch_size, self.latent_dim, self.noise_seed)

    def _unpack(self, data):
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, labels = data, None
        if self.conditional and labels is None:
            raise ValueError("A conditional GAN trains on (images, labels) batches; got images only")
        # Tensors both (PyTorch's train_on_batch passes NumPy arrays; Keras refuses a list mixing them).
        return ops.convert_to_tensor(images), (ops.cast(ops.reshape(labels, (-1,)), "int32") if self.conditional
                                               else None)

    def _with_label(self, tensor, labels):
        return [tensor, labels] if self.conditional else tensor

    def _discriminator_loss(self, images, labels, training: bool):
        """Loss of telling ``images`` from freshly generated ones; also D's mean probabilities."""
        fake = self.generator(self._with_label(self._noise(ops.shape(images)[0]), labels), training=training)
        real_logits = self.discriminator(self._with_label(images, labels), training=training)
        fake_logits = self.discriminator(self._with_label(fake, labels), training=training)
        real_targets = ops.full_like(real_logits, 1.0 - self.label_smoothing)
        loss = (self.loss_function(real_targets, real_logits)
                + self.loss_function(ops.zeros_like(fake_logits), fake_logits))
        return loss, ops.mean(ops.sigmoid(real_logits)), ops.mean(ops.sigmoid(fake_logits))

    def _generator_loss(self, batch_size, labels, training: bool):
        """Non-saturating generator loss: -log D(G(z)) (Goodfellow et al. 2014, Section 3)."""
        fake = self.generator(self._with_label(self._noise(batch_size), labels), training=training)
        logits = self.discriminator(self._with_label(fake, labels), training=training)
        return self.loss_function(ops.ones_like(logits), logits)

    def _record(self, d_loss, g_loss, real_score, fake_score):
        # Under tf.distribute, Keras's losses divide each replica's mean by the number of
        # replicas so that the summed gradients are the global mean; the logged value must not be.
        replicas = replica_position()[1]
        self.trackers["d_loss"].update_state(d_loss * replicas)
        self.trackers["g_loss"].update_state(g_loss * replicas)
        self.trackers["real_score"].update_state(real_score)
        self.trackers["fake_score"].update_state(fake_score)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _train(self, data):
        if self.d_optimizer is None:
            raise RuntimeError("Compile the GAN first: gan.compile(d_optimizer=..., g_optimizer=...)")
        images, labels = self._unpack(data)
        d_loss, real_score, fake_score = steps.gradient_step(
            lambda: self._discriminator_loss(images, labels, training=True),
            self.discriminator.trainable_variables, self.d_optimizer)
        g_loss, = steps.gradient_step(lambda: (self._generator_loss(ops.shape(images)[0], labels, training=True),),
                                      self.generator.trainable_variables, self.g_optimizer)
        return self._record(d_loss, g_loss, real_score, fake_score)

    def _test(self, data):
        images, labels = self._unpack(data)
        d_loss, real_score, fake_score = self._discriminator_loss(images, labels, training=False)
        g_loss = self._generator_loss(ops.shape(images)[0], labels, training=False)
        return self._record(d_loss, g_loss, real_score, fake_score)

    def train_step(self, *args):  # (data), or (state, data) on JAX: zoo.steps
        return steps.train_step(self, self._train, *args)

    def test_step(self, *args):
        return steps.test_step(self, self._test, *args)

    def get_config(self):
        config = super().get_config()
        config.update(generator=keras.saving.serialize_keras_object(self.generator),
                      discriminator=keras.saving.serialize_keras_object(self.discriminator),
                      label_smoothing=self.label_smoothing, seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(config.pop("generator"))
        discriminator = keras.saving.deserialize_keras_object(config.pop("discriminator"))
        return cls(generator, discriminator, **config)


# --- sampling ----------------------------------------------------------------------------

def sample_noise(count: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype("float32")


def sample_images(generator: keras.Model, count: int, labels: Sequence[int] | None = None, seed: int = 0,
                  batch_size: int = 500) -> np.ndarray:
    """``count`` generated images (float, pixel units) from seeded noise; a conditional
    generator needs ``labels`` (one per image)."""
    noise = sample_noise(count, int(generator.inputs[0].shape[-1]), seed)
    if len(generator.inputs) > 1:
        if labels is None or len(labels) != count:
            raise ValueError(f"A conditional generator needs one label per image: {count} images, "
                             f"{'no' if labels is None else len(labels)} labels")
        return generator.predict([noise, np.asarray(labels, "int32")], batch_size=batch_size, verbose=0)
    return generator.predict(noise, batch_size=batch_size, verbose=0)


def interpolate(generator: keras.Model, steps: int = 10, rows: int = 4, labels: Sequence[int] | None = None,
                seed: int = 0) -> np.ndarray:
    """``rows`` walks of ``steps`` images each, from one random noise vector to another in a
    straight line (a conditional generator keeps each row's label fixed): ``(rows * steps, H, W, C)``."""
    latent_dim = int(generator.inputs[0].shape[-1])
    ends = sample_noise(2 * rows, latent_dim, seed).reshape(rows, 2, latent_dim)
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[None, :, None]
    noise = (ends[:, :1] * (1 - weights) + ends[:, 1:] * weights).reshape(rows * steps, latent_dim)
    if len(generator.inputs) > 1:
        row_labels = np.arange(rows) % generator.get_layer("label_embedding").input_dim if labels is None \
            else np.asarray(labels)
        return generator.predict([noise, np.repeat(row_labels, steps).astype("int32")], verbose=0)
    return generator.predict(noise, verbose=0)


# --- registered networks -------------------------------------------------------------------

@register_model
def dcgan_generator(latent_dim=128, image_shape=(28, 28, 1), **kwargs) -> keras.Model:
    """DCGAN generator: 128-d noise to 28x28x1 pixels (``image_shape=(32, 32, 3)`` for CIFAR-sized)."""
    return generator(latent_dim, image_shape, name="dcgan_generator", **kwargs)


@register_model
def dcgan_discriminator(image_shape=(28, 28, 1), **kwargs) -> keras.Model:
    """DCGAN discriminator: 28x28x1 pixels to a real/fake logit."""
    return discriminator(image_shape, name="dcgan_discriminator", **kwargs)


def gan(latent_dim: int = 128, image_shape: Sequence[int] = (28, 28, 1), num_classes: int = 0, width: int = 64,
        pixel_max: float = 255.0, label_smoothing: float = 0.0, seed: int | None = None,
        upsampling: str = "transpose", name: str = "gan") -> GAN:
    """A ``GAN`` over a matching generator and discriminator (uncompiled); ``upsampling``
    chooses the generator's (see ``generator``)."""
    return GAN(generator(latent_dim, image_shape, num_classes, width, pixel_max=pixel_max, upsampling=upsampling),
               discriminator(image_shape, num_classes, width, pixel_max=pixel_max),
               label_smoothing=label_smoothing, seed=seed, name=name)


@register_model
def dcgan(latent_dim=128, image_shape=(28, 28, 1), **kwargs) -> GAN:
    """DCGAN (Radford et al. 2016) for 28x28x1 images; ``image_shape=(32, 32, 3)`` for CIFAR-sized.

    Profile of a training step (TF 2.21, 2 CPU cores, batch 128, benchmarks/profile_step.py): the
    two transposed convolutions take 55-65% of the op time (forward in both the D and G steps,
    and differentiated), batch norm 12-17%, the discriminator 13-16%, both Adam steps ~1-2%.
    It is compute-bound (~68 GFLOP a step): steps_per_execution gains nothing, mixed_bfloat16
    1.4x per CPU-second (avx512_bf16), ``upsampling="resize"`` 0.6x (2.25x the multiply-adds).
    """
    return gan(latent_dim, image_shape, name="dcgan", **kwargs)


@register_model
def conditional_dcgan(latent_dim=128, image_shape=(28, 28, 1), num_classes=10, **kwargs) -> GAN:
    """Class-conditional DCGAN: label embedding into the generator, projection discriminator."""
    return gan(latent_dim, image_shape, num_classes, name="conditional_dcgan", **kwargs)
