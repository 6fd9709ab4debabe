"""Convolutional networks on images: the classic MNIST convnet and the CIFAR ResNets.

    zoo run cnn                                            # mnist_convnet on MNIST
    zoo run cnn --model resnet20 --dataset cifar10 --epochs 182 --learning-rate 0.1
    zoo run cnn --quick                                    # seconds, scikit-learn's 8x8 digits

MNIST comes through tfds (import the raw files once offline: ``zoo data import mnist
--from DIR``). ``--dataset cifar10`` uses tfds's CIFAR-10 where it is prepared or
downloadable, else the imported local copy, which is JPEG-derived and so is reported
as ``cifar10_jpeg75``.

Expected result: the classic Keras MNIST convnet reports 99.25% test accuracy after 12
epochs; this recipe's defaults (Adam, 12 epochs, batch 128) should reach at least 99.2%.
On 2 CPU cores the full MNIST run takes roughly 10-15 minutes (see results/cnn.csv for
the measured time). ResNet-20 is published at 91.25% on pixel-exact CIFAR-10 (He et al.
2016, Table 6) after 64k iterations of SGD with momentum.

Speed, measured by ``make bench`` on 2 CPU cores (benchmarks/cnn_speed.py): see the
benchmark's output and the README; the defaults (XLA on, one step per execution) are the
fastest setting it found for this network on CPU.
"""

from __future__ import annotations

import dataclasses

from recipes.runtime.config import RunConfig

DATASETS = ("mnist", "fashion_mnist", "cifar10", "digits")


@dataclasses.dataclass
class Config(RunConfig):
    model: str = "mnist_convnet"  # any registered model that takes images (zoo list)
    dataset: str = "mnist"  # mnist | fashion_mnist | cifar10 | digits (8x8, ships with scikit-learn)
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"  # adam | sgd (SGD uses Nesterov momentum 0.9 and cosine decay)
    augment: bool = False  # random flips and shifts (ResNets only)


# What --quick changes: the 8x8 digits that ship with scikit-learn, a few epochs.
QUICK = {"dataset": "digits", "model": "small_convnet", "epochs": 5, "batch_size": 32}


def make_datasets(config: Config):
    from recipes.runtime import data

    if config.dataset not in DATASETS:
        raise data.DataError(f"Unknown dataset {config.dataset!r} for cnn; expected one of {list(DATASETS)}")
    if config.dataset == "digits":
        return digits_datasets(config.seed)
    if config.dataset == "cifar10":
        return cifar10_datasets(config)
    (train, test), info, source = data.load_tfds(config.dataset, data.resolve_data_dir(config))
    return data.Datasets(train, test, config.dataset, source, info.splits["train"].num_examples,
                         info.splits["test"].num_examples, info.features["image"].shape,
                         info.features["label"].num_classes, info.features["label"].names)


def digits_datasets(seed: int):
    """scikit-learn's 1,797 8x8 digits (pixel values 0-16), split 75/25 with a fixed seed."""
    import numpy as np
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from recipes.runtime import data

    digits = load_digits()
    images = digits.images.astype("float32")[..., None]
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.25,
                                                        random_state=seed, stratify=digits.target)
    source = f"scikit-learn {sklearn.__version__} load_digits (UCI optical digits, 8x8, bundled)"
    return data.Datasets(data.from_arrays(x_train, y_train), data.from_arrays(x_test, y_test), "digits",
                         source, len(x_train), len(x_test), (8, 8, 1), 10,
                         [str(label) for label in np.unique(digits.target)])


def cifar10_datasets(config: Config):
    """tfds CIFAR-10 where available, else the imported JPEG copy (named cifar10_jpeg75)."""
    import tensorflow_datasets as tfds

    from recipes.runtime import data

    data_dir = data.resolve_data_dir(config)
    if tfds.builder("cifar10", data_dir=data_dir).is_prepared() or (
            data.read_manifest(data_dir, "cifar10_jpeg75") is None and data.network_reachable()):
        (train, test), info, source = data.load_tfds("cifar10", data_dir)
        return data.Datasets(train, test, "cifar10", source, 50000, 10000, (32, 32, 3), 10,
                             info.features["label"].names)
    (train, test), class_names, manifest = data.load_image_folder("cifar10_jpeg75", data_dir, (32, 32, 3))
    return data.Datasets(train, test, "cifar10_jpeg75", manifest["source"], manifest["examples"]["train"],
                         manifest["examples"]["test"], (32, 32, 3), 10, class_names)


def build_model(config: Config, datasets):
    import keras

    import zoo
    from recipes.runtime.train import compile_options

    options = {"augment": True} if config.augment else {}
    model = zoo.build(config.model, num_classes=datasets.num_classes, input_shape=datasets.input_shape,
                      **options)
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate)
    elif config.optimizer == "sgd":
        steps = config.epochs * -(-datasets.num_train // config.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    else:
        raise ValueError(f"Unknown optimizer {config.optimizer!r}; expected 'adam' or 'sgd'")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  **compile_options(config))
    return model
