"""Convolutional networks on images: the classic MNIST convnet and the CIFAR ResNets.

    zoo run cnn                                            # mnist_convnet on MNIST
    zoo run cnn --model resnet20 --dataset cifar10 --optimizer sgd --learning-rate 0.1 \
        --augment --epochs 180
    zoo run cnn --quick                                    # seconds, scikit-learn's 8x8 digits

MNIST comes through tfds (import the raw files once offline: ``zoo data import mnist
--from DIR``). ``--dataset cifar10`` uses tfds's CIFAR-10 where it is prepared or
downloadable, else the imported local copy, which is JPEG-derived and so is reported
as ``cifar10_jpeg75``.

Measured (results/cnn.csv): the defaults (Adam 1e-3, 12 epochs, batch 128) reached
99.20% test accuracy on MNIST in 26 minutes on 2 shared CPU cores; the classic Keras
mnist_cnn example reports 99.25% after 12 epochs. ResNet-20 is published at 91.25% on
pixel-exact CIFAR-10 (He et al. 2016, Table 6); the zoo's ResNet-20 reached 87.0% on
cifar10_jpeg75 in 50 cosine epochs and 87.5% in 100 on one H100 (JAX backend,
benchmarks/RESULTS.md).

Speed (``make bench``, benchmarks/RESULTS.md, 2 CPU cores, TF 2.21): Keras trains this
convnet within 5% of the same network in plain PyTorch (1.05x); a tf.data pipeline and
``steps_per_execution=8`` change nothing (1.00x) because the convolutions dominate, and
XLA makes it 5-7x slower on CPU, so XLA is on only where GPUs exist (``--jit-compile auto``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from recipes.runtime.config import RunConfig

@dataclasses.dataclass
class Config(RunConfig):
    model: str = "mnist_convnet"  # any registered model that takes images (zoo list)
    dataset: Literal["mnist", "fashion_mnist", "cifar10", "digits"] = "mnist"  # digits: 8x8, ships with scikit-learn
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"  # sgd: Nesterov momentum 0.9 and cosine decay
    augment: bool = False  # random flips and 4-pixel shifts of training batches (He et al.'s CIFAR setup)


# What --quick changes: the 8x8 digits that ship with scikit-learn, a few epochs.
QUICK = {"dataset": "digits", "model": "small_convnet", "epochs": 5, "batch_size": 32}


def make_datasets(config: Config):
    from recipes.runtime import data

    if config.dataset == "digits":
        datasets = data.digits_datasets(config.seed)
    elif config.dataset == "cifar10":
        datasets = cifar10_datasets(config)
    else:
        datasets = data.load_image_classification(config.dataset, data.resolve_data_dir(config.data_dir))
    if config.augment:
        datasets.augment = augmentation(datasets.input_shape)
    return datasets


def augmentation(input_shape):
    """Random horizontal flips and shifts of up to 4 pixels, as Keras layers on batches."""
    import keras

    height, width = input_shape[:2]
    return keras.Sequential([keras.layers.RandomFlip("horizontal"),
                             keras.layers.RandomTranslation(4 / height, 4 / width, fill_mode="constant")],
                            name="augmentation")


def cifar10_datasets(config: Config):
    """tfds CIFAR-10 where available, else the imported JPEG copy (named cifar10_jpeg75)."""
    import tensorflow_datasets as tfds

    from recipes.runtime import data

    data_dir = data.resolve_data_dir(config.data_dir)
    if tfds.builder("cifar10", data_dir=data_dir).is_prepared() or (
            data.read_manifest(data_dir, "cifar10_jpeg75") is None and data.network_reachable()):
        return data.load_image_classification("cifar10", data_dir)
    (train, test), class_names, manifest = data.load_image_folder("cifar10_jpeg75", data_dir, (32, 32, 3))
    return data.Datasets(train, test, "cifar10_jpeg75", manifest["source"], manifest["examples"]["train"],
                         manifest["examples"]["test"], (32, 32, 3), 10, class_names)


def build_model(config: Config, datasets):
    import keras

    import zoo
    from recipes.runtime.train import compile_options, steps_per_epoch

    model = zoo.build(config.model, num_classes=datasets.num_classes, input_shape=datasets.input_shape)
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate)
    else:
        steps = config.epochs * steps_per_epoch(config, datasets.num_train)
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  **compile_options(config))
    return model
