"""Datasets: what a recipe's ``make_datasets`` returns, tfds loading, bundled data, tf.data pipelines.

Data a tfds builder cannot download here is imported once from local raw files
(``zoo data import NAME --from DIR``, ``recipes/runtime/data_import.py``); loading reads the
import's manifest for the ``dataset_source`` column. CIFAR-10's local copy is a JPEG image
folder, reported as ``cifar10_jpeg75``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
MANIFEST_DIR = "zoo_imports"


class DataError(RuntimeError):
    """Missing, unprepared or corrupt data; the message says what to run."""


TASKS = ("classify", "regress", "language_model", "forecast", "generate", "reconstruct", "dream")


@dataclass
class Datasets:
    """What a recipe's ``make_datasets`` returns to the runtime: the splits and the facts about them."""

    train: tf.data.Dataset | None  # unbatched (features, target) examples; None: nothing to train on
    test: tf.data.Dataset | None
    name: str  # the name results use, e.g. "mnist" or "cifar10_jpeg75"
    source: str  # where the data came from, for the dataset_source column
    num_train: int
    num_test: int
    input_shape: tuple
    num_classes: int = 0  # classes of the labels (0: none, e.g. regression)
    class_names: list = field(default_factory=list)
    task: str = "classify"  # one of TASKS; the runtime draws a confusion matrix for "classify" only
    pixel_max: float = 255.0  # images: the largest pixel value (every image set here comes in 0-255)
    vocabulary: Any = None  # text: the character vocabulary (zoo.text.CharVocabulary) or the word vectorizer
    vocab_size: int = 0  # text: the ids a model embeds (padding and out-of-vocabulary included)
    prompt: str = ""  # language models: the start of the test text that generated samples continue
    tokens_per_example: int = 0  # sequences: tokens a training example holds (for tokens_per_second)
    labelled: "Datasets | None" = None  # the same images with their class labels, where the targets are images
    augment: Callable | None = None  # applied to training batches only, e.g. random flips
    # (features, labels) -> (features, labels) on each training batch, before ``augment``:
    # e.g. random crops of longer cached windows, so every epoch sees new windows
    train_batch_map: Callable | None = None
    series: Any = None  # forecasting: the series and its held-out windows (sequences.Series)
    images: Any = None  # a few images worked on directly, as an array (deepdream's photo)
    table_columns: dict | None = None  # a table's {"features": [column, ...], "label": column}


# --- where data came from ---------------------------------------------------------------

def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def import_command(name: str) -> str:
    return f"zoo data import {name} --from DIR --data-dir DATA_DIR"


def read_manifest(data_dir: str, name: str) -> dict | None:
    path = os.path.join(data_dir, MANIFEST_DIR, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


# --- loading ----------------------------------------------------------------------------

def resolve_data_dir(data_dir: str = "") -> str:
    """The tfds data dir: --data-dir, then $ZOO_DATA_DIR, then tfds's own default."""
    return data_dir or os.environ.get("ZOO_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """Whether tfds could download; ZOO_OFFLINE=1 says no without trying."""
    if os.environ.get("ZOO_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_tfds(name: str, data_dir: str, splits=None, as_supervised: bool = True, with_splits: bool = False) -> tuple:
    """``(datasets, info, source)`` for tfds dataset ``name``, as (input, label) pairs when
    ``as_supervised``, else as feature dictionaries.

    Fails at once, naming the import command, when the data is neither prepared in
    ``data_dir`` nor downloadable.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"tensorflow-datasets has no dataset named {name!r}") from None
    if not builder.is_prepared():
        if not network_reachable():
            raise DataError(
                f"Dataset {name!r} is not prepared in {data_dir} and cannot be downloaded (no network). "
                f"Import the raw files once with:\n    {import_command(name)}\n"
                f"or point --data-dir / ZOO_DATA_DIR at a tfds data dir that has it.")
        builder.download_and_prepare()
    manifest = read_manifest(data_dir, name)
    source = manifest["source"] if manifest else f"tfds {name} (downloaded by tensorflow-datasets)"
    if splits is None:  # train and test; a set with no test split holds out the last 20% of train
        splits = ("train", "test") if "test" in builder.info.splits else ("train[:80%]", "train[80%:]")
        if splits[1] != "test":
            source += "; no test split: the last 20% of train held out"
    datasets = [builder.as_dataset(split=split, as_supervised=as_supervised, shuffle_files=split == "train")
                for split in splits]
    return (datasets, builder.info, source, splits) if with_splits else (datasets, builder.info, source)


def count_examples(dataset: tf.data.Dataset) -> int:
    cardinality = int(dataset.cardinality())
    return cardinality if cardinality >= 0 else int(dataset.reduce(0, lambda count, _: count + 1))


def split_sizes(info, train: tf.data.Dataset, test: tf.data.Dataset, splits=("train", "test")) -> tuple[int, int]:
    """Examples in the train and test splits: tfds's metadata, else counted."""
    try:
        sizes = info.splits[splits[0]].num_examples, info.splits[splits[1]].num_examples
        if min(sizes) > 0:
            return sizes
    except (KeyError, ValueError):  # split sizes are unknown when tfds.testing.mock_data has no metadata
        pass
    return count_examples(train), count_examples(test)


def supervised_features(name: str, info, kind: str) -> tuple:
    """(input feature, label feature) of a tfds set, checked to be ``kind`` ("image" or "text") and classes."""
    import tensorflow_datasets as tfds

    keys = info.supervised_keys
    if not keys or len(keys) < 2:
        raise DataError(f"tfds {name} has no supervised (input, label) pair to train a classifier on")
    feature, label = info.features[keys[0]], info.features[keys[1]]
    expected = {"image": tfds.features.Image, "text": tfds.features.Text}[kind]
    if not isinstance(feature, expected) or not isinstance(label, tfds.features.ClassLabel):
        raise DataError(f"tfds {name} pairs {keys[0]!r} ({type(feature).__name__}) with {keys[1]!r} "
                        f"({type(label).__name__}); this recipe needs {kind} in, a class label out")
    if kind == "image" and None in tuple(feature.shape):
        raise DataError(f"tfds {name}'s images vary in size ({feature.shape}); write them out as class folders and "
                        f"train with --data, which resizes them to one size")
    return feature, label


def load_image_classification(name: str, data_dir: str) -> Datasets:
    """A tfds image-classification dataset (mnist, fashion_mnist, cifar10 ...) as ``Datasets``."""
    (train, test), info, source, splits = load_tfds(name, data_dir, with_splits=True)
    image, label = supervised_features(name, info, "image")
    num_train, num_test = split_sizes(info, train, test, splits)
    return Datasets(train, test, name, source, num_train, num_test, tuple(image.shape), label.num_classes,
                    list(label.names))



def load_text_classification(name: str, data_dir: str) -> tuple[tf.data.Dataset, tf.data.Dataset, int, int, list, str]:
    """``(train, test, num_train, num_test, class_names, source)`` of (text, label) pairs, e.g. imdb_reviews."""
    (train, test), info, source, splits = load_tfds(name, data_dir, with_splits=True)
    _, label = supervised_features(name, info, "text")
    num_train, num_test = split_sizes(info, train, test, splits)
    return train, test, num_train, num_test, list(label.names), source


def load_text_corpus(name: str, data_dir: str, splits=("train", "validation", "test")) -> tuple[dict, str]:
    """``({split: text}, source)`` for a corpus stored as one text per split (tiny_shakespeare)."""
    datasets, _, source = load_tfds(name, data_dir, splits, as_supervised=False)
    texts = {}
    for split, dataset in zip(splits, datasets):
        texts[split] = "".join(example["text"].numpy().decode("utf-8") for example in dataset)
        if not texts[split]:
            raise DataError(f"The {split} split of {name} in {data_dir} is empty; import it again with:\n"
                            f"    {import_command(name)}")
    return texts, source


def load_image_folder(local_name: str, data_dir: str, image_shape: tuple) -> tuple[list, list, dict]:
    """``([train, test], class_names, manifest)`` for an imported image folder."""
    import tensorflow_datasets as tfds

    manifest = read_manifest(data_dir, local_name)
    root = os.path.join(data_dir, local_name)
    if manifest is None or not os.path.isdir(root):
        raise DataError(f"{local_name} is not imported in {data_dir}. Import it once with:\n"
                        f"    {import_command('cifar10')}")
    builder = tfds.ImageFolder(root, shape=image_shape)
    datasets = [builder.as_dataset(split=split, as_supervised=True, shuffle_files=split == "train")
                for split in ("train", "test")]
    return datasets, builder.info.features["label"].names, manifest


def first_batch_size(batch_size: int, num_examples: int, replicas: int) -> int:
    """The global batch to use so that the first batch splits evenly across replicas.

    Keras 3.15 (TensorFlow backend) averages the first distributed batch across replicas
    to build the model (``_maybe_symbolic_build``); when a data set is smaller than one
    global batch and its size is not a multiple of the replicas, the per-replica parts
    differ in shape and that fails ("Inputs to operation AddN ... must have the same size
    and shape"). A batch that is a multiple of the replicas avoids it; later uneven
    batches are fine.
    """
    if replicas <= 1 or num_examples >= batch_size or num_examples % replicas == 0:
        return batch_size
    return max(replicas, num_examples - num_examples % replicas)


def pipeline(dataset: tf.data.Dataset, num_examples: int, batch_size: int, training: bool, seed: int,
             augment: Callable | None = None, shuffle_buffer: int = 10_000, replicas: int = 1,
             batch_map: Callable | None = None, cache: bool = True) -> tf.data.Dataset:
    """cache -> shuffle -> batch -> batch_map and augment (training only) -> prefetch.

    ``cache=False`` for data already in memory (arrays), which a cache would copy.

    ``batch_size`` is the global batch; tf.distribute splits each batch across replicas
    (``replicas`` of them; see ``first_batch_size`` for data smaller than one batch).
    Augmentation runs here rather than inside the model because Keras's random image
    layers cannot be XLA-compiled and would switch XLA off for the whole train step.
    """
    batch_size = first_batch_size(batch_size, num_examples, replicas)
    # Under MultiWorkerMirroredStrategy every worker reads the whole pipeline and keeps its part of
    # each global batch, so 2 workers x 1 replica see the batches 1 process x 2 replicas sees (the
    # default, AUTO, would shard by files where a dataset has several, giving each worker other data).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    # Stating the size lets Keras show progress and know where an epoch ends.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_examples))
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training and batch_map is not None:
        dataset = dataset.map(batch_map, num_parallel_calls=AUTOTUNE)
    if training and augment is not None:
        dataset = dataset.map(lambda images, labels: (augment(tf.cast(images, tf.float32), training=True), labels),
                              num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def digits_datasets(seed: int) -> Datasets:
    """scikit-learn's 1,797 8x8 digits, split 75/25 with a fixed seed, in 0-255 pixels like every
    image set here (the file's 0-16 levels times 255/16)."""
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images.astype("float32") * (255.0 / 16.0))[..., None]
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.25,
                                                        random_state=seed, stratify=digits.target)
    source = f"scikit-learn {sklearn.__version__} load_digits (UCI optical digits, 8x8, bundled)"
    return Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test), "digits",
                    source, len(x_train), len(x_test), (8, 8, 1), 10,
                    [str(label) for label in np.unique(digits.target)])


def image_classification(name: str, data_dir: str, seed: int) -> Datasets:
    """An image set by name: ``digits`` (bundled), ``cifar10`` (tfds's where prepared or downloadable,
    else the imported JPEG copy, named ``cifar10_jpeg75``) or any tfds image-classification set."""
    if name == "digits":
        return digits_datasets(seed)
    data_dir = resolve_data_dir(data_dir)
    if name == "cifar10":
        import tensorflow_datasets as tfds

        if not tfds.builder("cifar10", data_dir=data_dir).is_prepared() and (
                read_manifest(data_dir, "cifar10_jpeg75") is not None or not network_reachable()):
            (train, test), class_names, manifest = load_image_folder("cifar10_jpeg75", data_dir, (32, 32, 3))
            return Datasets(train, test, "cifar10_jpeg75", manifest["source"], manifest["examples"]["train"],
                            manifest["examples"]["test"], (32, 32, 3), 10, class_names)
    return load_image_classification(name, data_dir)


def images(config) -> Datasets:
    """The image set a recipe trains on: the user's folder (``--data``) when given, else ``--dataset``."""
    if config.data:
        from recipes.runtime import user_data

        return user_data.load(config, ("images",))
    return image_classification(config.dataset, config.data_dir, config.seed)


def global_batches(datasets: Datasets, plan, seed: int, train=None, test=None, **options) -> tuple:
    """(train, test) pipelines at the plan's global batch, for any stage (a baseline, a classifier of
    its own); ``train``/``test`` replace the splits (e.g. mapped copies), ``options`` go to ``pipeline``."""
    train = datasets.train if train is None else train
    test = datasets.test if test is None else test
    return (pipeline(train, datasets.num_train, plan.global_batch_size, training=True, seed=seed,
                     replicas=plan.replicas, **options),
            pipeline(test, datasets.num_test, plan.global_batch_size, training=False, seed=seed,
                     replicas=plan.replicas, **options))


def from_arrays(features, labels: np.ndarray, chunk: int = 1024) -> tf.data.Dataset:
    """One element per row of ``features`` (an array or a nest of arrays) and ``labels``.

    In-memory arrays are copied into the dataset. Memory-mapped ones (``np.load(path,
    mmap_mode="r")``) are read ``chunk`` rows at a time, in order, so data larger than the
    free memory (a fine-tune's cached features: 5.5 GB for CIFAR-10 at 192 px with mirrored
    copies) streams from the file and the page cache instead of being copied twice.
    """
    arrays = tf.nest.flatten((features, labels))
    if not any(isinstance(array, np.memmap) for array in arrays):
        return tf.data.Dataset.from_tensor_slices((features, labels))
    count = len(labels)
    if any(len(array) != count for array in arrays):
        raise DataError(f"from_arrays: every array needs one row per label ({count}); got "
                        f"{[len(array) for array in arrays]} rows")

    def read(start):
        return [np.asarray(array[start:start + chunk]) for array in arrays]

    def rows(start):
        parts = tf.numpy_function(read, [start], [tf.as_dtype(array.dtype) for array in arrays], stateful=False)
        parts = [tf.ensure_shape(part, (None, *array.shape[1:])) for part, array in zip(parts, arrays)]
        return tf.nest.pack_sequence_as((features, labels), parts)

    return tf.data.Dataset.range(0, count, chunk).map(rows, num_parallel_calls=AUTOTUNE).unbatch()
