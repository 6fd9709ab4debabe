"""Your own data in: ``--data PATH`` gives a recipe the same ``Datasets`` the benchmark sets do.

The form is found from what PATH is (``--data-format`` forces it):

- ``images``: a folder with one subfolder of images per class (the layout of
  ``keras.utils.image_dataset_from_directory`` and ``tfds.ImageFolder``), with ``train/`` and
  ``test/`` inside, or a ``--test-fraction`` split made once with the seed (stratified, and
  recorded in the row). Images of any size and mode are read with Pillow, converted to the
  folder's most common mode (grey or RGB) and resized to its most common size.
- ``table``: a CSV of numeric features and a label or target column (``--label-column``; by
  default one named ``label`` or ``target``, else the last). Integer or text labels with few
  values make a classification, anything else a regression.
- ``text``, ``corpus``, ``series``: read by ``recipes/runtime/user_sequences.py``.

The row says what the data was: ``dataset`` is the folder's or file's name, ``dataset_source``
its path, file count and a content digest. Bad data stops the run before anything is
written, with a ``DataError`` naming the file and the fix.
"""

from __future__ import annotations

import collections
import hashlib
import os

import numpy as np

from recipes.runtime import forms
from recipes.runtime.data import DataError, Datasets, from_arrays

MAX_CLASSES_OF_INTEGERS = 20  # an integer label column with more values than this is a regression target


def form_of(config, accepted: tuple[str, ...]) -> tuple[str, str]:
    """(the absolute path of ``config.data``, its form among ``accepted``), or DataError saying why not."""
    path = os.path.abspath(os.path.expanduser(config.data))
    try:
        form = forms.detect(path, config.data_format, accepted)
    except forms.FormError as error:
        raise DataError(str(error)) from None
    if not os.path.exists(path):
        raise DataError(f"--data {config.data!r}: no such file or folder")
    return path, form


def load(config, accepted: tuple[str, ...]):
    """What ``config.data`` holds, in one of the ``accepted`` forms: ``Datasets`` for images and
    tables, the raw parts (texts, a corpus, a series) for ``recipes/runtime/sequences.py`` to window."""
    path, form = form_of(config, accepted)
    if form in ("text", "corpus", "series"):
        from recipes.runtime import user_sequences

        return getattr(user_sequences, form if form != "text" else "texts")(path, config)
    return {"images": image_folder, "table": table}[form](path, config)


def read_csv(path: str, **options):
    """``pandas.read_csv``, or DataError naming the file when it is not a CSV pandas can read."""
    try:
        return forms.read_csv(path, **options)
    except forms.FormError as error:
        raise DataError(str(error)) from None


def listed(paths: list[str]) -> str:
    """The first five of ``paths`` and how many more, for a message."""
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def digest(paths: list[str], root: str) -> str:
    """sha256 over the files' paths relative to ``root`` and their contents."""
    total = hashlib.sha256()
    for path in paths:
        total.update(os.path.relpath(path, root).encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                total.update(block)
    return total.hexdigest()


def describe_source(kind: str, path: str, files: list[str], root: str, split: str) -> str:
    return f"{kind} {path}: {len(files)} files, sha256 {digest(files, root)[:16]}; {split}"


# --- image folders ----------------------------------------------------------------------

def class_folders(root: str) -> dict[str, list[str]]:
    """Class name -> its image files (sorted), for a folder of class folders."""
    classes = {}
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if os.path.isdir(folder) and not name.startswith("."):
            classes[name] = sorted(os.path.join(folder, file) for file in os.listdir(folder)
                                   if not file.startswith(".") and os.path.isfile(os.path.join(folder, file)))
    if not classes:
        raise DataError(f"{root} holds no class folders: put each class's images in a folder of its own "
                        f"(e.g. {root}/cats/1.png, {root}/dogs/2.png), or train/ and test/ folders of those")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataError(f"class folder(s) {[os.path.join(root, name) for name in empty]} are empty: add images "
                        f"or remove the folder")
    return classes


def class_splits(root: str) -> tuple[bool, dict, list[str]]:
    """(whether ``root`` holds train/ and test/, {split: {class: files}}, the class names): a folder of
    class folders, or train/ and test/ of the same class folders, with at least two classes."""
    split_folders = all(os.path.isdir(os.path.join(root, name)) for name in ("train", "test"))
    splits = {name: class_folders(os.path.join(root, name)) for name in ("train", "test")} if split_folders \
        else {"all": class_folders(root)}
    names = sorted({name for classes in splits.values() for name in classes})
    if len(names) < 2:
        raise DataError(f"{root} has one class only ({names}): a classifier needs at least two class folders")
    if split_folders and set(splits["train"]) != set(splits["test"]):
        raise DataError(f"{root}/train and {root}/test name different classes: {sorted(splits['train'])} against "
                        f"{sorted(splits['test'])}; give both the same class folders")
    return split_folders, splits, names


def refuse_unreadable(bad: list[str], total: int) -> None:
    raise DataError(f"{len(bad)} of {total} files are not images Pillow can read: {listed(bad)}. Remove them, or "
                    f"pass --skip-bad-files true to train on the others")


def image_array(path: str, mode: str, width: int, height: int) -> np.ndarray:
    """The image file at ``path`` as float32 pixels, converted to ``mode`` (L or RGB) and resized; Pillow's
    UnidentifiedImageError or OSError when it cannot be read."""
    from PIL import Image

    with Image.open(path) as opened:
        pixels = np.asarray(opened.convert(mode).resize((width, height)), "float32")
    return pixels.reshape(height, width, 1 if mode == "L" else 3)


def image_folder(root: str, config) -> Datasets:
    from PIL import Image, UnidentifiedImageError

    split_folders, splits, names = class_splits(root)
    files = {split: [(path, names.index(name)) for name, paths in classes.items() for path in paths]
             for split, classes in splits.items()}
    total = sum(len(pairs) for pairs in files.values())
    # First the headers only (mode and size; nothing decoded), for the folder's most common mode and size.
    headers, bad = {}, []
    for path, _ in (pair for pairs in files.values() for pair in pairs):
        try:
            with Image.open(path) as opened:
                headers[path] = ("L" if opened.mode in ("L", "1", "I;16", "I") else "RGB", opened.size)
        except (UnidentifiedImageError, OSError):
            bad.append(path)
    if not headers:
        refuse_unreadable(bad, total)
    mode = collections.Counter(mode for mode, _ in headers.values()).most_common(1)[0][0]
    width, height = collections.Counter(size for _, size in headers.values()).most_common(1)[0][0]
    channels = 1 if mode == "L" else 3
    arrays, kept = {}, []
    for split, pairs in files.items():  # then each image decoded, converted and resized once
        images, labels = [], []
        for path, label in pairs:
            if path not in headers:
                continue
            try:
                images.append(image_array(path, mode, width, height))
                labels.append(label)
                kept.append(path)
            except (UnidentifiedImageError, OSError):  # a header that reads, a body that does not (truncated)
                bad.append(path)
        arrays[split] = (np.stack(images) if images else np.zeros((0, height, width, channels), "float32"),
                         np.array(labels, "int64"))
    if bad and not config.skip_bad_files:
        refuse_unreadable(bad, total)
    if split_folders:
        (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
        split_note = "its train/ and test/ folders"
    else:
        x, y = arrays["all"]
        x_train, x_test, y_train, y_test = split_once(x, y, config.test_fraction, config.seed, root)
        split_note = f"test split {config.test_fraction:g} stratified by seed {config.seed}"
    note = f"{split_note}; {mode} {height}x{width}" + (f"; {len(bad)} unreadable files skipped" if bad else "")
    return Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test), os.path.basename(root.rstrip("/")),
                    describe_source("image folder", root, kept, root, note), len(x_train), len(x_test),
                    (height, width, channels), len(names), names)


def split_once(x, y, test_fraction: float, seed: int, path: str, by_class: bool = True):
    """The seeded train/test split of ``--data`` that has no train/ and test/: stratified by class
    (``by_class``, where every class has two examples), plain for regression targets."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise DataError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    counts = collections.Counter(y.tolist() if hasattr(y, "tolist") else y) if by_class else {}
    stratify = y if counts and min(counts.values()) >= 2 else None
    try:
        return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError as error:
        raise DataError(f"{path}: cannot split {len(y)} examples with --test-fraction {test_fraction:g} "
                        f"({error}); add data or change the fraction") from None


# --- tables -------------------------------------------------------------------------------

def label_column(frame, requested: str, path: str) -> str:
    if requested:
        if requested not in frame.columns:
            raise DataError(f"{path} has no column {requested!r} (--label-column); its columns: {list(frame.columns)}")
        return requested
    for name in ("label", "target"):
        if name in frame.columns:
            return name
    return frame.columns[-1]


def table(path: str, config) -> Datasets:
    import pandas as pd

    frame = read_csv(path)
    if len(frame.columns) < 2 or len(frame) < 4:
        raise DataError(f"{path}: a table needs a header, at least one feature column and a label column, and "
                        f"a few rows; it has {len(frame.columns)} columns and {len(frame)} rows")
    target = label_column(frame, config.label_column, path)
    missing = frame.index[frame[target].isna()].tolist()
    if missing:
        raise DataError(f"{path}: {len(missing)} rows have no {target!r} (data rows {[row + 1 for row in missing[:5]]}"
                        f"{' ...' if len(missing) > 5 else ''}); fill them in or drop those rows")
    features = frame.drop(columns=[target])
    text = [column for column in features.columns if not pd.api.types.is_numeric_dtype(features[column])]
    if text:
        raise DataError(f"{path}: feature columns {text} are not numbers; the MLP takes numeric features (encode "
                        f"them, or drop them)")
    empty = features.columns[features.isna().any()].tolist()
    if empty:
        raise DataError(f"{path}: feature columns {empty} have empty cells; fill them in or drop those rows")
    labels = frame[target]
    classify = not pd.api.types.is_float_dtype(labels) and (
        not pd.api.types.is_numeric_dtype(labels) or labels.nunique() <= MAX_CLASSES_OF_INTEGERS)
    x = features.to_numpy("float32")
    if classify:
        names = sorted(labels.astype(str).unique().tolist(), key=lambda name: (len(name), name))
        y = labels.astype(str).map({name: index for index, name in enumerate(names)}).to_numpy("int64")
        if len(names) < 2:
            raise DataError(f"{path}: the label column {target!r} has one value only ({names}); a classifier "
                            f"needs at least two")
    else:
        names, y = [], labels.to_numpy("float32")
    x_train, x_test, y_train, y_test = split_once(x, y, config.test_fraction, config.seed, path, by_class=classify)
    note = (f"label column {target!r}, {len(features.columns)} features, test split {config.test_fraction:g} by "
            f"seed {config.seed}")
    datasets = Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test),
                        os.path.splitext(os.path.basename(path))[0],
                        describe_source("table", path, [path], os.path.dirname(path), note), len(x_train),
                        len(x_test), (x.shape[1],), len(names), names, task="classify" if classify else "regress")
    datasets.table_columns = {"features": list(features.columns), "label": target}
    return datasets
