"""DCGAN and class-conditional DCGAN on MNIST-sized images, scored by a Frechet distance.

    zoo run gan                                         # DCGAN on MNIST
    zoo run gan --model conditional_dcgan               # label in both networks
    zoo run gan --dataset fashion_mnist
    zoo run gan --quick [--model conditional_dcgan]     # seconds, scikit-learn's 8x8 digits

Data comes through tfds (import the raw files once offline: ``zoo data import mnist --from
DIR``). Both networks follow the DCGAN layout of Radford et al. (2016) scaled to 28x28:
``--width 32`` (default) makes a 1.0M-parameter generator and a 37k discriminator,
``--width 64`` doubles the channels and trained 3x slower per step on 2 CPU cores. Adam
2e-4 with beta_1 0.5 for both networks, batch 128 per replica, 3 epochs.
``zoo.gan.GAN`` holds both networks and optimizers and is correct under MirroredStrategy
(the same losses on 1 or 2 replicas; tests/test_gan.py checks it).

Every epoch writes ``samples/epoch_NNN.png`` from fixed noise (one row per class for the
conditional GAN); the final grid and a latent interpolation are copied to ``results/gan/``.

Quality (``report``): the zoo's ``mnist_convnet`` (the ``cnn`` recipe's network and
settings) is trained on the same data for ``--classifier-epochs`` and cached in
``runs/gan/feature_classifiers``; ``test_fid`` is the Frechet distance between its
128-unit penultimate features of as many generated images as the test split holds and
of the training images, ``real_fid`` the same for the real test images (the floor a
perfect generator would reach, sampling noise only), ``untrained_fid`` the same for the
generator before training (the ceiling), ``classifier_accuracy`` the classifier's test
accuracy, and for the conditional GAN ``test_class_accuracy`` is how often it classifies a
generated image as the class it was asked for (the test split's labels). These distances
live in this classifier's feature space: they compare runs of this recipe, not Inception
FIDs from papers.

Measured: see results/gan.csv and README.md (rows record device, time and command).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from recipes.runtime.config import ConfigError, RunConfig


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
    classifier_dir: str = ""  # cache of trained feature classifiers; default runs/gan/feature_classifiers
    fid_samples: int = 0  # generated images scored; 0: as many as the test split

    def __post_init__(self):
        if self.learning_rate == 0 and self.quick:  # --quick's: the model's own quick rate
            self.learning_rate = QUICK_LEARNING_RATE.get(self.model, 2e-4)
        if self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be > 0; got {self.learning_rate}")


QUICK = {"dataset": "digits", "epochs": 8, "batch_size": 32, "learning_rate": 0.0, "latent_dim": 32,
         "width": 16, "classifier_epochs": 8}
# Quick mode's learning rate per model (8 epochs of digits on 2 replicas, measured on a 2-core Intel Xeon):
# the conditional DCGAN learns its labels only at 1e-3 (at 2e-4 or 5e-4 its samples matched the asked-for
# digit at chance, 11%; at 1e-3, 80%, FID 10.8), while the unconditional one oscillated at 1e-3 (FID 58.3
# against 47.1 for the untrained generator) and gets 2e-4 (FID 34.0; 24.8 on one replica).
QUICK_LEARNING_RATE = {"dcgan": 2e-4, "conditional_dcgan": 1e-3}
PUBLISH = ("samples.png", "interpolation.png")  # copied beside the results table
PIXEL_MAX = {"mnist": 255.0, "fashion_mnist": 255.0, "digits": 16.0}


def make_datasets(config: Config):
    import dataclasses as dc

    import tensorflow as tf

    from recipes.runtime import data

    if config.dataset == "digits":
        datasets = data.digits_datasets(config.seed)
    else:
        datasets = data.load_image_classification(config.dataset, data.resolve_data_dir(config.data_dir))
    to_float = lambda image, label: (tf.cast(image, tf.float32), label)
    # The classes go to extras: a GAN has no class predictions for the runtime's confusion matrix.
    labelled = dc.replace(datasets, train=datasets.train.map(to_float), test=datasets.test.map(to_float))
    return dc.replace(labelled, num_classes=0,
                      extras={"labelled": labelled, "pixel_max": PIXEL_MAX[config.dataset]})


def build_model(config: Config, datasets):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    conditional = {"num_classes": datasets.extras["labelled"].num_classes} if "conditional" in config.model else {}
    try:
        model = zoo.build(config.model, latent_dim=config.latent_dim, image_shape=datasets.input_shape,
                          width=config.width, pixel_max=datasets.extras["pixel_max"],
                          label_smoothing=config.label_smoothing, seed=config.seed, **conditional)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"--model {config.model!r} is not a GAN the gan recipe can train ({error}); "
                          f"use one of {GAN_MODELS}") from None
    if not isinstance(model, zoo.gan.GAN):
        raise ConfigError(f"--model {config.model!r} is not a GAN; use one of {GAN_MODELS}")
    optimizer = lambda name: keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1, name=name)
    model.compile(d_optimizer=optimizer("d_adam"), g_optimizer=optimizer("g_adam"), **compile_options(config))
    return model


GAN_MODELS = ["conditional_dcgan", "dcgan"]


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
    zoo.gan.save_grid(images, path, pixel_max=pixel_max)


def callbacks(config: Config, datasets, run_dir: str) -> list:
    """A sample grid from the same noise after every epoch: ``samples/epoch_NNN.png``."""
    import keras

    class SampleGrid(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            os.makedirs(os.path.join(run_dir, "samples"), exist_ok=True)
            save_sample_grid(self.model, os.path.join(run_dir, "samples", f"epoch_{epoch + 1:03d}.png"),
                             config.seed, datasets.extras["pixel_max"])

    return [SampleGrid()]


def feature_classifier(config: Config, labelled, log=print):
    """The cnn recipe's convnet trained on the same data, cached: (model, test accuracy)."""
    import keras

    import zoo
    from recipes import cnn
    from recipes.runtime import data, files, train

    model_name = "small_convnet" if config.dataset == "digits" else "mnist_convnet"
    folder = config.classifier_dir or os.path.join("runs", "gan", "feature_classifiers")
    path = os.path.join(folder, f"{model_name}-{config.dataset}-{config.classifier_epochs}ep-seed{config.seed}.keras")
    if os.path.exists(path) and os.path.exists(path + ".json"):
        return zoo.backbones.load_model(path), files.read_json(path + ".json")["test_accuracy"]
    cnn_config = cnn.Config(model=model_name, dataset=config.dataset, epochs=config.classifier_epochs,
                            batch_size=32 if config.dataset == "digits" else 128, seed=config.seed)
    log(f"[gan] training the feature classifier {model_name} on {config.dataset} for "
        f"{cnn_config.epochs} epochs (cached in {folder})")
    keras.utils.set_random_seed(config.seed)
    model = cnn.build_model(cnn_config, labelled)
    pipeline = lambda dataset, count, training: data.pipeline(dataset, count, cnn_config.batch_size, training,
                                                             config.seed)
    model.fit(pipeline(labelled.train, labelled.num_train, True), epochs=cnn_config.epochs, verbose=config.verbose)
    accuracy = float(model.evaluate(pipeline(labelled.test, labelled.num_test, False), verbose=0,
                                    return_dict=True)["accuracy"])
    os.makedirs(folder, exist_ok=True)
    # The workers of a cluster train the same classifier side by side and save it to the same
    # cache: each file through a name of its own and a rename, the model first.
    train.save_model(model, path)
    files.write_json(path + ".json", {"test_accuracy": accuracy, "config": dataclasses.asdict(cnn_config)}, indent=2)
    return model, accuracy


def report(model, datasets, config: Config, run_dir: str) -> dict:
    import keras
    import numpy as np

    import zoo

    labelled, pixel_max = datasets.extras["labelled"], datasets.extras["pixel_max"]
    save_sample_grid(model, os.path.join(run_dir, "samples.png"), config.seed, pixel_max)
    walks = zoo.gan.interpolate(model.generator, steps=10, rows=10 if model.conditional else 4, seed=config.seed)
    zoo.gan.save_grid(walks, os.path.join(run_dir, "interpolation.png"), pixel_max=pixel_max)

    classifier, classifier_accuracy = feature_classifier(config, labelled)
    features = keras.Model(classifier.inputs, classifier.get_layer("dense").output)
    as_arrays = lambda dataset: [np.concatenate(part) for part in zip(*dataset.batch(2048).as_numpy_iterator())]
    train_images, _ = as_arrays(labelled.train)
    test_images, test_labels = as_arrays(labelled.test)
    count = config.fid_samples or len(test_images)
    wanted = np.resize(test_labels, count).astype("int32") if model.conditional else None
    generated = zoo.gan.sample_images(model.generator, count, wanted, seed=config.seed + 1)
    # The same generator before training (same seed, same builder): the distance to beat.
    untrained = build_model(config, datasets).generator
    embed = lambda images: features.predict(images, batch_size=1000, verbose=0)
    train_features = embed(train_images)
    metrics = {"test_fid": zoo.gan.frechet_distance(embed(generated), train_features),
               "real_fid": zoo.gan.frechet_distance(embed(test_images[:count]), train_features),
               "untrained_fid": zoo.gan.frechet_distance(
                   embed(zoo.gan.sample_images(untrained, count, wanted, seed=config.seed + 1)), train_features),
               "classifier_accuracy": classifier_accuracy, "latent_dim": config.latent_dim, "width": config.width}
    if model.conditional:
        predicted = np.argmax(classifier.predict(generated, batch_size=1000, verbose=0), axis=-1)
        metrics["test_class_accuracy"] = float(np.mean(predicted == wanted))
    return metrics
