"""DCGAN and class-conditional DCGAN on MNIST-sized images, scored by a Frechet distance.

    zoo run gan                                         # DCGAN on MNIST, 3 epochs
    zoo run gan --model conditional_dcgan               # label in both networks
    zoo run gan --quick [--model conditional_dcgan]     # seconds, scikit-learn's 8x8 digits

Both networks follow Radford et al. (2016) scaled to 28x28 (``--width 32``: a 1.0M-parameter
generator, a 37k discriminator), Adam 2e-4 with beta_1 0.5, batch 128 per replica;
``zoo.gan.GAN`` gives the same losses on 1 or N replicas. Every epoch writes
``samples/epoch_NNN.png`` from fixed noise; the final grid and a latent interpolation are
copied to ``results/gan/``.

Quality: ``mnist_convnet`` (Adam 1e-3, as the ``cnn`` recipe trains it) is trained on the same
data for ``--classifier-epochs`` and cached; ``test_fid`` is the Frechet distance of its
128-unit penultimate features between generated and training images, beside ``real_fid``
(real test images: the floor) and ``untrained_fid`` (the generator before training: the
ceiling). These distances compare runs of this recipe, not Inception FIDs from papers.
Rows (device, time, command) are in results/gan.csv.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from recipes.runtime.config import ConfigError, Per, RunConfig
from recipes.runtime.recipe import Recipe


@dataclasses.dataclass
class Config(RunConfig):
    model: str = "dcgan"  # dcgan or conditional_dcgan (zoo list 'dcgan*' / '*dcgan')
    dataset: Literal["mnist", "fashion_mnist", "digits"] = "mnist"  # digits: 8x8, ships with scikit-learn
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 2e-4  # Adam, both networks (Radford et al.)
    beta_1: float = 0.5  # Adam's first-moment decay; 0.9 made DCGAN training oscillate in Radford et al.
    latent_dim: int = 128
    width: int = 32  # filters of the widest discriminator/narrowest generator layer; Radford et al.: 64
    label_smoothing: float = 0.0  # one-sided: real targets 1 - this
    classifier_epochs: int = 3  # training of the feature classifier behind test_fid (its accuracy is in the row)
    classifier_dir: str = "runs/gan/feature_classifiers"  # cache of trained feature classifiers
    fid_samples: int = 0  # generated images scored; 0: as many as the test split

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be > 0; got {self.learning_rate}")


PRESETS = {
    # 8 epochs of digits on 2 replicas: the conditional DCGAN learns its labels only at 1e-3 (at 2e-4 its
    # samples matched the asked-for digit at chance), while the unconditional one oscillated at 1e-3.
    "quick": {"dataset": "digits", "epochs": 8, "batch_size": 32, "latent_dim": 32, "width": 16,
              "classifier_epochs": 8, "learning_rate": Per("model", {"conditional_dcgan": 1e-3}, otherwise=2e-4)},
}
GAN_MODELS = ["conditional_dcgan", "dcgan"]


def make_datasets(config: Config):
    import tensorflow as tf

    from recipes.runtime import data

    datasets = data.images(config)
    to_float = lambda image, label: (tf.cast(image, tf.float32), label)
    datasets.train, datasets.test = datasets.train.map(to_float), datasets.test.map(to_float)
    datasets.task = "generate"  # the labels condition the generator; nothing predicts classes
    return datasets


def build_model(config: Config, datasets, plan):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    conditional = {"num_classes": datasets.num_classes} if "conditional" in config.model else {}
    try:
        model = zoo.build(config.model, latent_dim=config.latent_dim, image_shape=datasets.input_shape,
                          width=config.width, pixel_max=datasets.pixel_max,
                          label_smoothing=config.label_smoothing, seed=config.seed, **conditional)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {config.model!r} is not a GAN the gan recipe can train ({error}); "
                          f"use one of {GAN_MODELS}") from None
    if not isinstance(model, zoo.gan.GAN):
        raise ConfigError(f"--model {config.model!r} is not a GAN; use one of {GAN_MODELS}")
    optimizer = lambda name: keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1, name=name)
    model.compile(d_optimizer=optimizer("d_adam"), g_optimizer=optimizer("g_adam"), **compile_options(config))
    return model


def grid_labels(model, columns: int = 10):
    """Labels for a 10x10 grid: row r shows class r (conditional), or None."""
    import numpy as np

    if not model.conditional:
        return None
    classes = model.generator.get_layer("label_embedding").input_dim
    return np.repeat(np.arange(classes), columns)


def save_sample_grid(model, path: str, seed: int, pixel_max: float) -> None:
    """The 10x10 grid from seeded noise (one row per class when conditional), as a PNG."""
    import zoo

    labels = grid_labels(model)
    images = zoo.gan.sample_images(model.generator, 100 if labels is None else len(labels), labels, seed=seed)
    zoo.images.save_grid(images, path, pixel_max=pixel_max)


def callbacks(run) -> list:
    """A sample grid from the same noise after every epoch: ``samples/epoch_NNN.png``."""
    import keras

    class SampleGrid(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            os.makedirs(os.path.join(run.output_dir, "samples"), exist_ok=True)
            save_sample_grid(self.model, os.path.join(run.output_dir, "samples", f"epoch_{epoch + 1:03d}.png"),
                             run.config.seed, run.datasets.pixel_max)

    return [SampleGrid()]


def feature_classifier(config: Config, datasets, log=print):
    """mnist_convnet (small_convnet on the digits) trained on the same data as the cnn recipe
    trains it (Adam 1e-3), cached: (model, test accuracy)."""
    import keras

    import zoo
    from recipes.runtime import artifacts, data, files, train

    small = min(datasets.input_shape[:2]) < 16  # 8x8 digits: the narrow convnet and small batches
    model_name = "small_convnet" if small else "mnist_convnet"
    epochs, batch_size = config.classifier_epochs, 32 if small else 128
    folder = config.classifier_dir
    # Named by the data (its digest too, for a folder of your own: another folder is other data).
    import hashlib

    data_key = datasets.name if not config.data else \
        f"{datasets.name}-{hashlib.sha256(datasets.source.encode()).hexdigest()[:8]}"
    path = os.path.join(folder, f"{model_name}-{data_key}-{epochs}ep-seed{config.seed}.keras")
    if os.path.exists(path) and os.path.exists(path + ".json"):
        cached = files.read_json(path + ".json")
        # A cache that does not say its pixel range may come from before the digits came in 0-255: train again.
        if cached.get("pixel_max") == datasets.pixel_max:
            return zoo.backbones.load_model(path), cached["test_accuracy"]
    log(f"[gan] training the feature classifier {model_name} on {datasets.name} for {epochs} epochs "
        f"(cached in {folder})")
    keras.utils.set_random_seed(config.seed)
    model = zoo.build(model_name, num_classes=datasets.num_classes, input_shape=datasets.input_shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], **train.compile_options(config))
    pipeline = lambda dataset, count, training: data.pipeline(dataset, count, batch_size, training, config.seed)
    model.fit(pipeline(datasets.train, datasets.num_train, True), epochs=epochs, verbose=config.fit_verbose)
    accuracy = float(model.evaluate(pipeline(datasets.test, datasets.num_test, False), verbose=0,
                                    return_dict=True)["accuracy"])
    os.makedirs(folder, exist_ok=True)
    # The workers of a cluster train the same classifier side by side and save it to the same
    # cache: each file through a name of its own and a rename, the model first.
    artifacts.save_model(model, path)
    files.write_json(path + ".json", {"test_accuracy": accuracy, "model": model_name, "epochs": epochs,
                                      "batch_size": batch_size, "learning_rate": 1e-3, "seed": config.seed,
                                      "pixel_max": datasets.pixel_max}, indent=2)
    return model, accuracy


def report(run) -> dict:
    import keras
    import numpy as np

    import zoo

    model, datasets, config, run_dir = run.model, run.datasets, run.config, run.output_dir
    save_sample_grid(model, os.path.join(run_dir, "samples.png"), config.seed, datasets.pixel_max)
    walks = zoo.gan.interpolate(model.generator, steps=10, rows=10 if model.conditional else 4, seed=config.seed)
    zoo.images.save_grid(walks, os.path.join(run_dir, "interpolation.png"), pixel_max=datasets.pixel_max)

    classifier, classifier_accuracy = feature_classifier(config, datasets, run.log)
    features = keras.Model(classifier.inputs, classifier.get_layer("dense").output)
    as_arrays = lambda dataset: [np.concatenate(part) for part in zip(*dataset.batch(2048).as_numpy_iterator())]
    train_images, _ = as_arrays(datasets.train)
    test_images, test_labels = as_arrays(datasets.test)
    count = config.fid_samples or len(test_images)
    wanted = np.resize(test_labels, count).astype("int32") if model.conditional else None
    generated = zoo.gan.sample_images(model.generator, count, wanted, seed=config.seed + 1)
    # The same generator before training (same seed, same builder): the distance to beat.
    untrained = build_model(config, datasets, run.plan).generator
    embed = lambda images: features.predict(images, batch_size=1000, verbose=0)
    train_features = embed(train_images)
    metrics = {"test_fid": zoo.fid.frechet_distance(embed(generated), train_features),
               "real_fid": zoo.fid.frechet_distance(embed(test_images[:count]), train_features),
               "untrained_fid": zoo.fid.frechet_distance(
                   embed(zoo.gan.sample_images(untrained, count, wanted, seed=config.seed + 1)), train_features),
               "classifier_accuracy": classifier_accuracy, "latent_dim": config.latent_dim, "width": config.width}
    if model.conditional:
        predicted = np.argmax(classifier.predict(generated, batch_size=1000, verbose=0), axis=-1)
        metrics["test_class_accuracy"] = float(np.mean(predicted == wanted))
    return metrics


RECIPE = Recipe(
    "gan", Config, make_datasets, build_model, report=report, callbacks=callbacks, presets=PRESETS,
    data_forms=("images",),
    publish=("samples.png", "interpolation.png"), headline=("test_fid", "test_class_accuracy"), doc=__doc__,
    columns={
        "test_fid": "GANs: Frechet distance between generated and training images in the penultimate features of "
                    "a convnet trained on the same data (not Inception's: compare within this table only)",
        "real_fid, untrained_fid": "GANs: the same distance for the real test images (the floor) and for the "
                                   "generator before training (the ceiling)",
        "test_class_accuracy": "conditional GANs: how often that convnet classifies a generated image as the "
                               "class it was generated for",
        "classifier_accuracy": "GANs: test accuracy of the convnet whose features the distances use",
        "test_d_loss, test_g_loss, test_real_score, test_fake_score": "GANs: discriminator and generator losses "
            "and the discriminator's mean probability of 'real' for real and generated test-sized batches",
        "latent_dim, width": "GANs: noise size, and the filters of the widest discriminator layer"},
    summary="GANs: DCGAN and a class-conditional DCGAN on MNIST, scored by a Frechet distance")
