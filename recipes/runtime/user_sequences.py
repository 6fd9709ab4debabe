"""Your own texts, corpora and series (``--data``), for the sequence recipes (rnn, transformer).

- ``text``: a folder of class folders of UTF-8 ``.txt`` files (the IMDB layout), or a CSV with a
  text column (``--text-column``) and a label column (``--label-column``);
- ``corpus``: one UTF-8 text file, split 90/5/5 in order (train, validation, test) as tfds splits
  tiny_shakespeare;
- ``series``: a CSV column of numbers (``--value-column``; a ``date`` or ``time`` column orders the
  rows, gaps are interpolated), its last 20% held out.

Each loader returns the raw parts; ``sequence_datasets`` hands them to ``sequences.py`` to be
vectorised or windowed into the same ``Datasets`` the benchmark sets give.
"""

from __future__ import annotations

import os

import numpy as np

from recipes.runtime import forms
from recipes.runtime.data import DataError, Datasets
from recipes.runtime.user_data import class_splits, describe_source, form_of, label_column, listed, read_csv, \
    split_once


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}); save it as UTF-8") from None


def texts(path: str, config) -> dict:
    """{"train": (texts, labels), "test": (...), "class_names", "source"} from a folder or a CSV."""

    if os.path.isdir(path):
        split_folders, splits, names = class_splits(path)
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
            raise DataError(f"{len(bad)} files are not UTF-8 text: {listed(bad)}. Save them as UTF-8, or pass "
                            f"--skip-bad-files true to train on the others")
        kind, root = "text folder", path
    else:
        frame = read_csv(path)
        words = forms.word_columns(frame)
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

    frame = read_csv(path)
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

    path, form = form_of(config, accepted)
    parts = {"text": texts, "corpus": corpus, "series": series}[form](path, config)
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

