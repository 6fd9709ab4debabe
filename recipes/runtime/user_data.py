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
- ``text``: a folder of class folders of UTF-8 ``.txt`` files (the IMDB layout), or a CSV with a
  text column (``--text-column``) and a label column;
- ``corpus``: one UTF-8 text file, split 90/5/5 in order (train, validation, test) as tfds splits
  tiny_shakespeare;
- ``series``: a CSV column of numbers (``--value-column``; a ``date`` or ``time`` column orders the
  rows), its last 20% held out.

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


def load(config, accepted: tuple[str, ...]):
    """What ``config.data`` holds, in one of the ``accepted`` forms: ``Datasets`` for images and
    tables, the raw parts (texts, a corpus, a series) for ``recipes/runtime/sequences.py`` to window."""
    path = os.path.abspath(os.path.expanduser(config.data))
    try:
        form = forms.detect(path, config.data_format, accepted)
    except forms.FormError as error:
        raise DataError(str(error)) from None
    if not os.path.exists(path):
        raise DataError(f"--data {config.data!r}: no such file or folder")
    return {"images": image_folder, "table": table, "text": texts, "corpus": corpus, "series": series}[form](
        path, config)


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


def read_images(files: list[str], skip_bad: bool):
    """(Pillow images, the files they came from); unreadable files fail the run unless ``skip_bad``."""
    from PIL import Image, UnidentifiedImageError

    images, kept, bad = [], [], []
    for path in files:
        try:
            with Image.open(path) as opened:
                opened.load()
                images.append(opened.copy())
            kept.append(path)
        except (UnidentifiedImageError, OSError):
            bad.append(path)
    if bad and not skip_bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DataError(f"{len(bad)} of {len(files)} files are not images Pillow can read: {shown}. Remove them, "
                        f"or pass --skip-bad-files true to train on the others")
    return images, kept, bad


def image_folder(root: str, config) -> Datasets:
    split_folders = all(os.path.isdir(os.path.join(root, name)) for name in ("train", "test"))
    splits = {name: class_folders(os.path.join(root, name)) for name in ("train", "test")} if split_folders \
        else {"all": class_folders(root)}
    names = sorted({name for classes in splits.values() for name in classes})
    if len(names) < 2:
        raise DataError(f"{root} has one class only ({names}): a classifier needs at least two class folders")
    if split_folders and set(splits["train"]) != set(splits["test"]):
        raise DataError(f"{root}/train and {root}/test name different classes: {sorted(splits['train'])} against "
                        f"{sorted(splits['test'])}; give both the same class folders")
    loaded, skipped, all_files = {}, [], []
    for split, classes in splits.items():
        files = [(path, names.index(name)) for name, paths in classes.items() for path in paths]
        images, kept, bad = read_images([path for path, _ in files], config.skip_bad_files)
        label_of = dict(files)
        loaded[split] = (images, np.array([label_of[path] for path in kept], "int64"))
        skipped += bad
        all_files += kept
    images = [image for split_images, _ in loaded.values() for image in split_images]
    mode = collections.Counter("L" if image.mode in ("L", "1", "I;16", "I") else "RGB" for image in images).most_common(1)[0][0]
    width, height = collections.Counter(image.size for image in images).most_common(1)[0][0]
    channels = 1 if mode == "L" else 3
    as_array = lambda image: np.asarray(image.convert(mode).resize((width, height)), "float32").reshape(
        height, width, channels)
    arrays = {split: (np.stack([as_array(image) for image in split_images]), labels)
              for split, (split_images, labels) in loaded.items()}
    if split_folders:
        (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
        split_note = "its train/ and test/ folders"
    else:
        x, y = arrays["all"]
        x_train, x_test, y_train, y_test = split_once(x, y, config.test_fraction, config.seed, root)
        split_note = f"test split {config.test_fraction:g} stratified by seed {config.seed}"
    note = f"{split_note}; {mode} {height}x{width}" + (f"; {len(skipped)} unreadable files skipped" if skipped else "")
    return Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test), os.path.basename(root.rstrip("/")),
                    describe_source("image folder", root, all_files, root, note), len(x_train), len(x_test),
                    (height, width, channels), len(names), names)


def split_once(x, y, test_fraction: float, seed: int, path: str):
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise DataError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    counts = collections.Counter(y.tolist() if hasattr(y, "tolist") else y)
    stratify = y if min(counts.values()) >= 2 else None
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

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path} is not a CSV pandas can read ({error}); save it as comma-separated UTF-8 text "
                        f"with a header row") from None
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
    x_train, x_test, y_train, y_test = split_once(x, y, config.test_fraction, config.seed, path) if classify \
        else split_unstratified(x, y, config.test_fraction, config.seed, path)
    note = (f"label column {target!r}, {len(features.columns)} features, test split {config.test_fraction:g} by "
            f"seed {config.seed}")
    datasets = Datasets(from_arrays(x_train, y_train), from_arrays(x_test, y_test),
                        os.path.splitext(os.path.basename(path))[0],
                        describe_source("table", path, [path], os.path.dirname(path), note), len(x_train),
                        len(x_test), (x.shape[1],), len(names), names, task="classify" if classify else "regress")
    datasets.table_columns = {"features": list(features.columns), "label": target}
    return datasets


def split_unstratified(x, y, test_fraction: float, seed: int, path: str):
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise DataError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    return train_test_split(x, y, test_size=test_fraction, random_state=seed)


# --- text, corpora and series: the raw parts sequences.py windows ----------------------------

def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}); save it as UTF-8") from None


def texts(path: str, config) -> dict:
    """{"train": (texts, labels), "test": (...), "class_names", "source"} from a folder or a CSV."""
    import pandas as pd

    if os.path.isdir(path):
        split_folders = all(os.path.isdir(os.path.join(path, name)) for name in ("train", "test"))
        splits = {name: class_folders(os.path.join(path, name)) for name in ("train", "test")} if split_folders \
            else {"all": class_folders(path)}
        names = sorted({name for classes in splits.values() for name in classes})
        documents, bad, files = {}, [], []
        for split, classes in splits.items():
            documents[split] = ([], [])
            for name, paths in classes.items():
                for file in paths:
                    try:
                        documents[split][0].append(read_text(file))
                        documents[split][1].append(names.index(name))
                        files.append(file)
                    except DataError:
                        bad.append(file)
        if bad and not config.skip_bad_files:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise DataError(f"{len(bad)} files are not UTF-8 text: {shown}. Save them as UTF-8, or pass "
                            f"--skip-bad-files true to train on the others")
        kind, root = "text folder", path
    else:
        frame = pd.read_csv(path)
        words = forms.text_columns(path)
        text = config.text_column or ("text" if "text" in frame.columns else (words[0] if words else ""))
        if text not in frame.columns:
            raise DataError(f"{path} has no column of text {text!r} (--text-column); its columns: "
                            f"{list(frame.columns)}")
        target = label_column(frame.drop(columns=[text]), config.label_column, path)
        missing = frame.index[frame[target].isna() | frame[text].isna()].tolist()
        if missing:
            raise DataError(f"{path}: {len(missing)} rows lack a {text!r} or {target!r} (data rows "
                            f"{[row + 1 for row in missing[:5]]}); fill them in or drop those rows")
        names = sorted(frame[target].astype(str).unique().tolist())
        labels = frame[target].astype(str).map({name: index for index, name in enumerate(names)}).tolist()
        documents, split_folders, bad = {"all": (frame[text].astype(str).tolist(), labels)}, False, []
        kind, root, files = "text table", os.path.dirname(path), [path]
    if len(names) < 2:
        raise DataError(f"{path} has one class only ({names}): a classifier needs at least two")
    if split_folders:
        train, test = documents["train"], documents["test"]
        note = "its train/ and test/ folders"
    else:
        x_train, x_test, y_train, y_test = split_once(np.array(documents["all"][0], dtype=object),
                                                      np.array(documents["all"][1]), config.test_fraction,
                                                      config.seed, path)
        train, test = (list(x_train), list(y_train)), (list(x_test), list(y_test))
        note = f"test split {config.test_fraction:g} stratified by seed {config.seed}"
    note += f"; {len(bad)} non-UTF-8 files skipped" if bad else ""
    return {"train": train, "test": test, "class_names": names,
            "name": os.path.splitext(os.path.basename(path.rstrip("/")))[0],
            "source": describe_source(kind, path, files, root, note)}


def corpus(path: str, config) -> dict:
    """{"texts": {"train", "validation", "test"}, "name", "source"}: the file split 90/5/5 in order."""
    text = read_text(path)
    if len(text) < 2000:
        raise DataError(f"{path} holds {len(text)} characters; a character language model needs a few thousand "
                        f"at least (the test split is its last 5%)")
    cut_train, cut_test = int(len(text) * 0.9), int(len(text) * 0.95)
    return {"texts": {"train": text[:cut_train], "validation": text[cut_train:cut_test], "test": text[cut_test:]},
            "name": os.path.splitext(os.path.basename(path))[0],
            "source": describe_source("text file", path, [path], os.path.dirname(path), "split 90/5/5 in order")}


def series(path: str, config) -> dict:
    """{"values", "unit", "name", "source"}: one numeric column, in time order, gaps interpolated."""
    import pandas as pd

    frame = pd.read_csv(path)
    times = [column for column in frame.columns if str(column).lower() in ("date", "time", "timestamp", "datetime")]
    if times:
        frame = frame.sort_values(times[0], key=lambda column: pd.to_datetime(column, errors="coerce"))
    numeric = [column for column in frame.columns if pd.api.types.is_numeric_dtype(frame[column])]
    column = config.value_column or ("value" if "value" in frame.columns else (numeric[-1] if numeric else ""))
    if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
        raise DataError(f"{path} has no numeric column {column!r} to forecast (--value-column); its numeric "
                        f"columns: {numeric}")
    values = frame[column].interpolate(limit_direction="both").to_numpy("float32")
    if np.isnan(values).any():
        raise DataError(f"{path}: column {column!r} holds no numbers")
    gaps = int(frame[column].isna().sum())
    note = f"column {column!r}" + (f" ordered by {times[0]!r}" if times else "") + \
        (f", {gaps} gaps interpolated" if gaps else "") + ", the last 20% held out"
    return {"values": values, "unit": str(column), "name": os.path.splitext(os.path.basename(path))[0],
            "source": describe_source("series", path, [path], os.path.dirname(path), note)}


def sequence_datasets(config, accepted: tuple[str, ...], sequence_length: int, horizon: int = 12,
                      random_offsets: bool = False) -> Datasets:
    """``config.data`` as the sequence recipes' ``Datasets``: texts vectorised, a corpus windowed
    into characters, a series into forecast windows (``recipes/runtime/sequences.py``)."""
    import tensorflow as tf

    from recipes.runtime import sequences

    parts, form = load(config, accepted), forms.detect(os.path.abspath(os.path.expanduser(config.data)),
                                                        config.data_format, accepted)
    if form == "text":
        as_dataset = lambda split: tf.data.Dataset.from_tensor_slices(
            (tf.constant(parts[split][0], tf.string), tf.constant(parts[split][1], tf.int64)))
        return sequences.vectorized(as_dataset("train"), as_dataset("test"), len(parts["train"][0]),
                                    len(parts["test"][0]), parts["class_names"], parts["name"], parts["source"],
                                    config.vocab_size, sequence_length, config.keep)
    if form == "corpus":
        return sequences.windows_of(parts["texts"], parts["name"], parts["source"], sequence_length, random_offsets)
    return sequences.forecasts_of(parts["values"], parts["unit"], parts["name"], parts["source"], sequence_length,
                                  horizon)

