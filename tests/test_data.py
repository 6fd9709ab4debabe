"""Offline import of raw files, the tfds path under mock_data, and clear data errors."""

import gzip
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from recipes.runtime import data, data_import


def test_import_mnist_from_local_raw_files(shared_dataset, tmp_path):
    source = shared_dataset("mnist")
    manifest = data_import.import_dataset("mnist", source, str(tmp_path), log=lambda message: None)
    assert manifest["files"]["train-images-idx3-ubyte.gz"]["matches_tfds"] is False  # recompressed copy
    assert manifest["files"]["t10k-labels-idx1-ubyte.gz"]["matches_tfds"] is True
    assert "train-images-idx3-ubyte.gz sha256 differs" in manifest["source"]
    (train, test), info, source = data.load_tfds("mnist", str(tmp_path))
    assert source == manifest["source"]
    assert info.splits["train"].num_examples == 60000 and info.splits["test"].num_examples == 10000
    image, label = next(iter(test))
    assert image.shape == (28, 28, 1) and 0 <= int(label) <= 9
    assert not os.path.exists(tmp_path / "downloads" / "manual")  # nothing was downloaded


def copy_mnist_like(tmp_path, shared_dataset):
    """A writable copy of the MNIST raw files, to damage in a test."""
    target = tmp_path / "raw"
    shutil.copytree(shared_dataset("mnist"), target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def generated_mnist_like(tmp_path):
    """The four raw MNIST files at full size, generated (blank images, labels 0-9 in turn): the
    corrupt-file checks run without the real copy too."""
    import struct

    target = tmp_path / "generated"
    target.mkdir()
    for split, count in (("train", 60000), ("t10k", 10000)):
        with gzip.open(target / f"{split}-images-idx3-ubyte.gz", "wb", compresslevel=1) as handle:
            handle.write(struct.pack(">IIII", 0x803, count, 28, 28) + bytes(count * 28 * 28))
        with gzip.open(target / f"{split}-labels-idx1-ubyte.gz", "wb", compresslevel=1) as handle:
            handle.write(struct.pack(">II", 0x801, count) + bytes(index % 10 for index in range(count)))
    return target


@pytest.fixture(params=["generated", "shared"])
def mnist_like(request, tmp_path, shared_dataset, monkeypatch):
    """Raw MNIST files to damage: generated ones, and a copy of the real ones where present."""
    if request.param == "generated":
        monkeypatch.setattr(data_import, "KNOWN_CONTENT", {})  # blank images are not MNIST's pixels
        return generated_mnist_like(tmp_path)
    return copy_mnist_like(tmp_path, shared_dataset)


def test_generated_raw_files_pass_the_content_checks(tmp_path):
    raw = generated_mnist_like(tmp_path)
    for name, check in data_import.TFDS_RAW_FILES["mnist"].items():
        assert len(check(str(raw / name))) == 64  # a sha256 of the decompressed content


def test_truncated_raw_file_is_reported_and_nothing_is_prepared(mnist_like, tmp_path):
    raw = mnist_like
    labels = raw / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:len(labels.read_bytes()) // 2])
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz is not a readable gzip file"):
        data_import.import_dataset("mnist", str(raw), str(tmp_path / "tfds"), log=lambda message: None)
    assert not (tmp_path / "tfds" / "mnist").exists()
    assert data.read_manifest(str(tmp_path / "tfds"), "mnist") is None


def test_wrong_content_is_reported(mnist_like, tmp_path):
    raw = mnist_like
    with gzip.open(raw / "train-labels-idx1-ubyte.gz", "rb") as handle:
        content = bytearray(handle.read())
    content[8 + 5] = 42  # a label out of range
    with gzip.open(raw / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(bytes(content))
    with pytest.raises(data.DataError, match="label 42 out of range"):
        data_import.import_dataset("mnist", str(raw), str(tmp_path / "tfds"), log=lambda message: None)
    (raw / "t10k-images-idx3-ubyte.gz").unlink()  # a missing file is named before any is read
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz missing in"):
        data_import.import_dataset("mnist", str(raw), str(tmp_path / "tfds"), log=lambda message: None)


def test_pixels_that_differ_from_canonical_mnist_are_refused(shared_dataset, tmp_path):
    raw = copy_mnist_like(tmp_path, shared_dataset)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "rb") as handle:
        content = bytearray(handle.read())
    content[-1] ^= 0xFF
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(bytes(content))
    with pytest.raises(data.DataError, match="differs from the known MNIST content"):
        data_import.import_dataset("mnist", str(raw), str(tmp_path / "tfds"), log=lambda message: None)


def test_unknown_dataset_and_missing_folder(tmp_path):
    with pytest.raises(data.DataError, match=r"Cannot import 'svhn'; importable datasets: \['cifar10'"):
        data_import.import_dataset("svhn", str(tmp_path), str(tmp_path))
    with pytest.raises(data.DataError, match="is not a directory"):
        data_import.import_dataset("mnist", str(tmp_path / "nowhere"), str(tmp_path))


def test_unprepared_dataset_offline_names_the_import_command(tmp_path):
    with pytest.raises(data.DataError) as error:
        data.load_tfds("fashion_mnist", str(tmp_path))
    message = str(error.value)
    assert "'fashion_mnist' is not prepared" in message
    assert "zoo data import fashion_mnist --from DIR" in message


def test_tfds_path_under_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "network_reachable", lambda: True)  # mock_data stands in for the download
    with tfds.testing.mock_data(num_examples=12):
        (train, test), info, source = data.load_tfds("mnist", str(tmp_path))
        images = np.stack([image for image, _ in train.as_numpy_iterator()])
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
    assert source.startswith("tfds mnist")
    assert info.features["label"].num_classes == 10


def test_pipeline_batches_at_the_global_batch_and_shuffles_only_training():
    dataset = data.from_arrays(np.arange(10, dtype="float32"), np.arange(10))
    test_batches = [batch.tolist() for batch, _ in data.pipeline(dataset, 10, 4, False, 0).as_numpy_iterator()]
    assert test_batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    train = [value for batch, _ in data.pipeline(dataset, 10, 4, True, 0).as_numpy_iterator() for value in batch]
    assert sorted(train) == list(range(10)) and train != list(range(10))


def test_memory_mapped_arrays_stream_in_chunks_with_the_same_elements_as_in_memory_ones(tmp_path):
    rng = np.random.default_rng(0)
    features, mirrored, labels = rng.random((23, 3, 2), "float32"), rng.random((23, 3, 2), "float32"), np.arange(23)
    for name, array in (("features", features), ("mirrored", mirrored), ("labels", labels)):
        np.save(tmp_path / f"{name}.npy", array)
    mapped = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in ("features", "mirrored", "labels")}
    assert isinstance(mapped["features"], np.memmap)
    streamed = data.from_arrays((mapped["features"], mapped["mirrored"]), mapped["labels"], chunk=5)
    assert streamed.element_spec[0][0].shape == (3, 2)  # static shapes, as the model's input needs
    elements = list(streamed.as_numpy_iterator())
    assert len(elements) == 23  # 5 chunks, the last one short
    for (pair, label), index in zip(elements, range(23)):
        assert label == index
        np.testing.assert_array_equal(pair[0], features[index])
        np.testing.assert_array_equal(pair[1], mirrored[index])
    batches = list(data.pipeline(streamed, 23, 8, True, 0, cache=False).as_numpy_iterator())
    assert sorted(int(label) for _, labels_ in batches for label in labels_) == list(range(23))
    with pytest.raises(data.DataError, match="one row per label"):
        data.from_arrays(mapped["features"], np.arange(22))


def test_manifest_is_written_atomically(tmp_path):
    data_import._write_manifest(str(tmp_path), "x", {"source": "s"})
    assert json.loads((tmp_path / data.MANIFEST_DIR / "x.json").read_text()) == {"source": "s"}
    assert os.listdir(tmp_path / data.MANIFEST_DIR) == ["x.json"]


def test_import_cifar10_image_folder_and_load_it_through_the_recipe(shared_dataset, tmp_path):
    manifest = data_import.import_dataset("cifar10", shared_dataset("cifar10_jpeg75"), str(tmp_path),
                                   log=lambda message: None)
    assert manifest["examples"] == {"train": 50000, "test": 10000}
    assert "not pixel-exact" in manifest["source"]
    datasets = data.image_classification("cifar10", str(tmp_path), seed=42)  # what every recipe calls
    assert (datasets.name, datasets.num_train, datasets.input_shape) == ("cifar10_jpeg75", 50000, (32, 32, 3))
    assert datasets.class_names[:3] == ["airplane", "automobile", "bird"]
    image, label = next(iter(datasets.test))
    assert image.shape == (32, 32, 3) and 0 <= int(label) < 10


def test_an_archive_with_the_wrong_layout_is_refused(tmp_path):
    import tarfile

    source = tmp_path / "source"
    (source / "cifar10_jpeg75" / "train" / "cat").mkdir(parents=True)
    (source / "cifar10_jpeg75" / "train" / "cat" / "0.jpg").write_bytes(b"not a jpeg")
    with tarfile.open(tmp_path / "images.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar10_jpeg75", arcname="cifar10_jpeg75")
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    (tmp_path / "images.tar.gz").rename(archive_dir / "images.tar.gz")
    with pytest.raises(data.DataError, match=r"train/ holds classes \['cat'\], expected \['airplane'"):
        data_import.import_dataset("cifar10", str(archive_dir), str(tmp_path / "tfds"), log=lambda message: None)
    assert not (tmp_path / "tfds" / "cifar10_jpeg75").exists()
    (archive_dir / "images.tar.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(data.DataError, match="could not be unpacked"):
        data_import.import_dataset("cifar10", str(archive_dir), str(tmp_path / "tfds"), log=lambda message: None)


def test_import_tiny_shakespeare_and_read_its_splits(shared_dataset, tmp_path):
    manifest = data_import.import_dataset("tiny_shakespeare", shared_dataset("tiny_shakespeare"), str(tmp_path),
                                   log=lambda message: None)
    assert manifest["files"]["input.txt"]["matches_tfds"] is True
    texts, source = data.load_text_corpus("tiny_shakespeare", str(tmp_path))
    # tfds splits the 1,115,394 characters 90/5/5 in order.
    assert [len(texts[split]) for split in ("train", "validation", "test")] == [1003854, 55770, 55770]
    assert texts["train"].startswith("First Citizen:")
    assert source == manifest["source"]


@pytest.mark.slow  # about a minute: the archive holds 100,000 reviews, and tfds prepares them all
def test_import_imdb_reviews(shared_dataset, tmp_path):
    manifest = data_import.import_dataset("imdb_reviews", shared_dataset("imdb_reviews"), str(tmp_path),
                                   log=lambda message: None)
    assert "aclImdb_v1.tar.gz sha256 differs" in manifest["source"]  # repacked copy, content verified
    train, test, num_train, num_test, class_names, _ = data.load_text_classification("imdb_reviews", str(tmp_path))
    assert (num_train, num_test, class_names) == (25000, 25000, ["neg", "pos"])
    text, label = next(iter(test))
    assert text.dtype.name == "string" and int(label) in (0, 1)


def test_broken_imdb_archives_are_reported(tmp_path):
    import io
    import tarfile

    truncated = tmp_path / "truncated" / "aclImdb_v1.tar.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 100)
    with pytest.raises(data.DataError, match="could not be read as a .tar.gz archive"):
        data_import.import_dataset("imdb_reviews", str(truncated.parent), str(tmp_path / "tfds"), log=lambda m: None)
    partial = tmp_path / "partial" / "aclImdb_v1.tar.gz"  # the right layout, far too few reviews
    partial.parent.mkdir()
    with tarfile.open(partial, "w:gz") as tar:
        review = b"A fine film."
        member = tarfile.TarInfo("aclImdb/train/pos/0_9.txt")
        member.size = len(review)
        tar.addfile(member, io.BytesIO(review))
    with pytest.raises(data.DataError, match="review counts .* this is not the aclImdb_v1 archive"):
        data_import.import_dataset("imdb_reviews", str(partial.parent), str(tmp_path / "tfds"), log=lambda m: None)
    assert data.read_manifest(str(tmp_path / "tfds"), "imdb_reviews") is None


def test_text_that_is_not_utf8_is_reported(tmp_path):
    (tmp_path / "input.txt").write_bytes(b"\xff\xfe" * 1000)
    with pytest.raises(data.DataError, match="is not UTF-8 text"):
        data_import.import_dataset("tiny_shakespeare", str(tmp_path), str(tmp_path / "tfds"), log=lambda m: None)
