"""DeepDream: gradient ascent on an image to amplify what chosen layers of a pretrained
backbone respond to, over several octaves (Mordvintsev, Olah and Tyka, 2015).

    zoo run deepdream --weights PATH/mobilenet_v2_imagenet.weights.h5   # scikit-image's cat (chelsea)
    zoo run deepdream --image photo.jpg --layers block_12_add,block_13_add --steps 20
    zoo run deepdream --quick                                          # seconds, random weights, 96 px

The image (``--image``: a file, or a scikit-image photo by name) is shrunk by
``--octave-scale`` into ``--octaves`` sizes. From the smallest up, each octave takes
``--steps`` ascent steps on the objective, the mean over ``--layers`` of each layer's mean
squared activation: the gradient of a squared activation is the activation itself, so
every step strengthens whatever the layer already sees (the original DeepDream's L2
objective). Each step's gradient is divided by its mean absolute value, so
``--learning-rate`` is the mean pixel change per step (0-255 scale); the image is rolled
by up to ``--jitter`` pixels first, which keeps the stride grid of the network from
printing into the picture. Between octaves the detail the ascent added is enlarged and
added to the next, sharper octave of the original photo.

Defaults are the original notebook's (4 octaves at scale 1.4, 10 steps of 1.5, jitter 32) on
MobileNetV2's block_5_add, block_8_add and block_12_add, mid-level layers (textures, object
parts) as GoogLeNet's inception_4c was in the original. With several replicas each one ascends
a differently rolled copy and the gradients are averaged. Writes ``dream.png`` and
``comparison.png`` (original | dream), copied beside ``results/deepdream.csv``, whose row's
``objective_gain`` shows the ascent worked: 3.12x on the cat with the ImageNet weights, in 8 CPU
seconds of ascent. It goes through the same runtime as every recipe (seed, strategy, folders,
commit, row); its ``fit`` is the ascent.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Literal

from recipes.runtime.config import ConfigError, RunConfig
from recipes.runtime.recipe import FitResult, Recipe

SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket")  # bundled with scikit-image
MIN_SIDE = 32  # the smallest octave side MobileNetV2 accepts
NO_MODEL = "does not apply to deepdream, which trains no model; leave it out"


@dataclasses.dataclass
class Config(RunConfig):
    NOT_APPLICABLE = {**{name: NO_MODEL for name in ("batch_size", "train_examples", "validation_freq",
                                                      "steps_per_execution", "mixed_precision", "jit_compile",
                                                      "tracking")},
                      "epochs": "is set by --octaves for deepdream (the row's epochs count octaves); leave it out",
                      **{name: "does not apply to deepdream: give your image with --image" for name in
                         ("data", "data_format", "test_fraction", "label_column", "skip_bad_files")}}

    image: str = "chelsea"  # an image file, or a scikit-image photo: astronaut, camera, chelsea, coffee, rocket
    max_side: int = 0  # shrink the image so its longer side is at most this many pixels; 0: keep its size
    backbone: str = "mobilenet_v2"  # a zoo.backbones name
    weights: str = ""  # .weights.h5 path | imagenet | none; "": $ZOO_WEIGHTS, else imagenet
    weights_format: Literal["keras", "torchvision"] = "torchvision"  # how a weights file was made
    layers: tuple[str, ...] = ("block_5_add", "block_8_add", "block_12_add")  # the layers whose activations grow
    octaves: int = 4  # image sizes, each --octave-scale times the last
    octave_scale: float = 1.4
    steps: int = 10  # ascent steps per octave
    learning_rate: float = 1.5  # the ascent step: mean absolute pixel change per step, on the 0-255 scale
    jitter: int = 32  # roll the image by up to this many pixels before each step; 0: never
    batch_size: int = 1  # one image per replica

    def __post_init__(self):
        self.epochs = self.octaves  # derived: the row's epochs count octaves
        if self.octaves < 1 or self.steps < 1 or self.octave_scale <= 1 or self.learning_rate <= 0 or self.jitter < 0:
            raise ConfigError(f"deepdream needs --octaves >= 1, --steps >= 1, --octave-scale > 1, --learning-rate > 0 "
                              f"and --jitter >= 0; got {self.octaves}, {self.steps}, {self.octave_scale}, "
                              f"{self.learning_rate}, {self.jitter}")
        if not self.layers:
            raise ConfigError("--layers needs at least one layer name, e.g. --layers block_12_add")


# The cat shrunk to 64x96, random weights (no file needed), 2 octaves, rolls of up to 8 pixels (32
# would wrap half of so small an image). Tracing the step takes most of its time, not steps.
PRESETS = {"quick": {"max_side": 96, "weights": "none", "octaves": 2, "jitter": 8}}


def load_image(config: Config):
    """(the image as float32 HxWx3 in 0-255, its name, its source)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from recipes.runtime.data import DataError, sha256_of

    if os.path.isfile(config.image):
        try:
            with Image.open(config.image) as opened:
                picture = opened.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"--image {config.image!r} is not an image Pillow can read ({error}); "
                            f"pass a PNG or JPEG file") from None
        name = os.path.splitext(os.path.basename(config.image))[0]
        source = f"image file {os.path.basename(config.image)} (sha256 {sha256_of(config.image)[:16]})"
    elif config.image in SKIMAGE_PHOTOS:
        import skimage

        picture = Image.fromarray(getattr(skimage.data, config.image)()).convert("RGB")
        name, source = config.image, f"scikit-image {skimage.__version__} data.{config.image}() (bundled)"
    else:
        raise DataError(f"--image {config.image!r}: no such file, and not one of scikit-image's photos "
                        f"{list(SKIMAGE_PHOTOS)}. Pass the path of an image file or one of those names.")
    if config.max_side and max(picture.size) > config.max_side:
        picture.thumbnail((config.max_side, config.max_side), Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype="float32"), name, source


def octave_sizes(height: int, width: int, config: Config) -> list[tuple[int, int]]:
    """The octaves' (height, width), smallest first, the last the image's own."""
    sizes = [(round(height / config.octave_scale ** k), round(width / config.octave_scale ** k))
             for k in reversed(range(config.octaves))]
    if min(sizes[0]) < MIN_SIDE:
        raise ConfigError(f"--octaves {config.octaves} at --octave-scale {config.octave_scale} shrinks the "
                          f"{height}x{width} image to {sizes[0][0]}x{sizes[0][1]}, below {MIN_SIDE} pixels; "
                          f"use fewer octaves, a smaller scale or a larger image (--max-side)")
    return sizes


def make_datasets(config: Config):
    """The photo as the one "training example" (``Datasets.images``); too many octaves fail here."""
    from recipes.runtime.data import Datasets

    image, name, source = load_image(config)
    octave_sizes(*image.shape[:2], config)
    return Datasets(None, None, name, source, 1, 0, tuple(image.shape), task="dream", images=image)


def build_model(config: Config, datasets, plan):
    """A model from raw 0-255 images of any size to the chosen layers' activations."""
    import keras

    from recipes.runtime.weights import resolve_weights, weights_format
    from zoo import backbones

    if config.backbone not in backbones.FAMILIES:
        raise ConfigError(f"--backbone {config.backbone!r} is not one of {backbones.list_backbones()}")
    weights = resolve_weights(config.weights)
    outer = backbones.backbone(config.backbone, weights=weights, weights_format=weights_format(weights,
                               config.weights_format), pooling=None)
    network = backbones.backbone_of(outer)
    names = [layer.name for layer in network.layers[1:]]
    unknown = [name for name in config.layers if name not in names]
    if unknown:
        raise ConfigError(f"--layers {unknown} not in {network.name}; its layers are {names}")
    chosen = keras.Model(network.input, [network.get_layer(name).output for name in config.layers])
    # The application is built for one size; the same layers (weights shared) called on any size.
    chosen = keras.models.clone_model(chosen, input_tensors=keras.Input((None, None, 3)),
                                      clone_function=lambda layer: layer)
    images = x = keras.Input((None, None, 3), name="image")
    for layer in outer.layers[1:outer.layers.index(network)]:  # the normalisation the weights expect
        x = layer(x)
    return keras.Model(images, chosen(x), name=f"{config.backbone}_dream_layers")


def objective(features, image):
    """Mean over the chosen layers of each one's mean squared activation, for one HxWx3 image."""
    import tensorflow as tf

    activations = tf.nest.flatten(features(image[None], training=False))
    return tf.add_n([tf.reduce_mean(tf.square(activation)) for activation in activations]) / len(activations)


def ascent_step(strategy, features, config: Config):
    """A compiled step: every replica's gradient at its own roll of the image, averaged, normalised, taken."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, 3)), tf.TensorSpec((None, 2), tf.int32)])
    def step(image, shifts):
        def replica_gradient():
            shift = shifts[tf.distribute.get_replica_context().replica_id_in_sync_group]
            with tf.GradientTape() as tape:
                tape.watch(image)
                value = objective(features, tf.roll(image, shift, axis=[0, 1]))
            return tape.gradient(value, image), value

        gradients, values = strategy.run(replica_gradient)
        gradient = strategy.reduce("MEAN", gradients, axis=None)
        # No epsilon: random weights give gradients of 1e-12, which a fixed 1e-8 would swamp.
        gradient = tf.math.divide_no_nan(gradient, tf.reduce_mean(tf.abs(gradient)))
        return tf.clip_by_value(image + config.learning_rate * gradient, 0.0, 255.0), \
            strategy.reduce("MEAN", values, axis=None)

    return step


def dream(image, features, strategy, config: Config, log=print):
    """The octave loop: ascend on each size, carrying the added detail up to the next."""
    import numpy as np
    import tensorflow as tf

    step = ascent_step(strategy, features, config)
    random = np.random.default_rng(config.seed)
    replicas = strategy.num_replicas_in_sync
    original = tf.constant(image)
    detail = None
    for octave, size in enumerate(octave_sizes(*image.shape[:2], config)):
        base = tf.image.resize(original, size, antialias=True)
        current = base if detail is None else base + tf.image.resize(detail, size)
        started = time.perf_counter()
        values = []
        for _ in range(config.steps):
            shifts = random.integers(-config.jitter, config.jitter + 1, (replicas, 2)).astype("int32")
            current, value = step(current, tf.constant(shifts))
            values.append(float(value))
        detail = current - base  # what the ascent added: enlarged onto the next, sharper octave
        if config.verbose:
            log(f"[deepdream] octave {octave + 1}/{config.octaves} at {size[0]}x{size[1]}: objective "
                f"{values[0]:.4g} -> {values[-1]:.4g} in {config.steps} steps, {time.perf_counter() - started:.1f}s")
    return np.asarray(current)


def save_pictures(original, dreamt, output_dir: str) -> None:
    import numpy as np
    from PIL import Image

    as_picture = lambda array: Image.fromarray(np.clip(np.round(array), 0, 255).astype("uint8"))
    as_picture(dreamt).save(os.path.join(output_dir, "dream.png"))
    height, width = original.shape[:2]
    side_by_side = Image.new("RGB", (2 * width + 8, height), "white")
    side_by_side.paste(as_picture(original), (0, 0))
    side_by_side.paste(as_picture(dreamt), (width + 8, 0))
    side_by_side.save(os.path.join(output_dir, "comparison.png"))


def fit(run) -> FitResult:
    """The dream: the ascent over the octaves, its pictures, and the objective before and after."""
    import tensorflow as tf

    from recipes.runtime.weights import describe_weights

    config, features, image = run.config, run.model, run.datasets.images
    run.log(f"[deepdream] layers {', '.join(config.layers)} on {image.shape[0]}x{image.shape[1]} (one rolled copy "
            f"of the image per replica)")
    start_objective = float(objective(features, tf.constant(image)))
    started, cpu_started = time.perf_counter(), time.process_time()
    dreamt = dream(image, features, features.distribute_strategy, config, run.log)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    dream_objective = float(objective(features, tf.constant(dreamt)))
    save_pictures(image, dreamt, run.output_dir)
    run.log(f"[deepdream] objective {start_objective:.4g} -> {dream_objective:.4g} "
            f"({dream_objective / start_objective:.2f}x) in {seconds:.1f}s ({cpu_seconds:.1f} CPU seconds)")
    return FitResult(epochs=list(range(config.octaves)), seconds=seconds,
                     examples=config.octaves * config.steps * run.plan.replicas,
                     metrics={"ascent_cpu_seconds": round(cpu_seconds, 2), "start_objective": start_objective,
                              "dream_objective": dream_objective, "objective_gain": dream_objective / start_objective,
                              "weights": describe_weights(config.weights, config.weights_format),
                              "layers": " ".join(config.layers), "octave_scale": config.octave_scale,
                              "steps": config.steps, "jitter": config.jitter,
                              "image_shape": f"{image.shape[0]}x{image.shape[1]}"})


RECIPE = Recipe(
    "deepdream", Config, make_datasets, build_model, fit=fit, run_name=lambda config: config.backbone,
    presets=PRESETS, publish=("dream.png", "comparison.png"), headline=("objective_gain",), trains=False, doc=__doc__,
    columns={
        "start_objective, dream_objective, objective_gain": "the objective (mean over the chosen layers of the "
            "mean squared activation) on the original image and on the dream, both at full size without jitter, "
            "and their ratio",
        "layers, octave_scale, steps, jitter, image_shape, ascent_cpu_seconds": "the amplified layers, the size "
            "ratio between octaves, ascent steps per octave, the largest random roll (pixels), the image's height x "
            "width, and the ascent's CPU seconds; epochs counts octaves, learning_rate is the step (mean pixel "
            "change on the 0-255 scale), train_seconds the ascent's wall time and samples_per_second the rolled "
            "image copies processed per second",
        "weights": "the pretrained weights (file and its layout)"},
    summary="DeepDream: gradient ascent on an image to amplify what a pretrained backbone's layers see")
