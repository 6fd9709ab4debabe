"""What kind of data ``--data PATH`` is, found from the path alone (no TensorFlow here, so
``zoo run X --dry-run`` and the presets of a form answer at once).

- ``images``: a folder of class folders holding image files (or ``train/`` and ``test/`` of those);
- ``text``: a folder of class folders holding ``.txt`` files, or a CSV with a column of text;
- ``corpus``: one text file, for a character language model;
- ``series``: a CSV of numbers (one column is the series; a date or time column orders it);
- ``table``: a CSV of numeric features and a label or target column.

A CSV is a table for a recipe that takes tables (mlp); for the sequence recipes it is text when a
column holds words, else a series. ``--data-format`` says it outright.
"""

from __future__ import annotations

import functools
import os

FORMS = ("images", "text", "corpus", "series", "table")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class FormError(ValueError):
    """``--data`` names nothing, or something no recipe reads; the message says what to pass."""


def first_files(root: str, limit: int = 50) -> list[str]:
    found = []
    for folder, folders, names in os.walk(root):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [name.lower() for name in sorted(names) if not name.startswith(".")]
        if len(found) >= limit:
            break
    return found


def read_csv(path: str, **options):
    """``pandas.read_csv``, or FormError naming the file when it is not a CSV pandas can read."""
    import pandas as pd

    try:
        return pd.read_csv(path, **options)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise FormError(f"{path} is not a CSV pandas can read ({error}); save it as comma-separated UTF-8 text "
                        f"with a header row") from None


def word_columns(frame) -> list[str]:
    """The columns of ``frame`` that hold words: strings, most of them with a space."""
    import pandas as pd

    head = frame.head(200)
    return [column for column in head.columns if pd.api.types.is_string_dtype(head[column])
            and head[column].astype(str).str.contains(" ").mean() > 0.5]


def text_columns(path: str) -> list[str]:
    return word_columns(read_csv(path, nrows=200))


@functools.lru_cache(maxsize=32)
def detect(path: str, requested: str = "auto", accepted: tuple[str, ...] = FORMS) -> str:
    """The form of the data at ``path`` among ``accepted`` (``requested`` unless it is "auto")."""
    path = os.path.expanduser(path)
    if requested != "auto":
        form = requested
    elif os.path.isdir(path):
        names = first_files(path)
        form = "text" if names and sum(name.endswith(".txt") for name in names) > len(names) / 2 else "images"
    elif os.path.isfile(path) and path.lower().endswith(".csv"):
        form = "table" if "table" in accepted else ("text" if text_columns(path) else "series")
    elif os.path.isfile(path) and path.lower().endswith((".txt", ".md", ".text")):
        form = "corpus"
    elif not os.path.exists(path):
        raise FormError(f"--data {path!r}: no such file or folder")
    else:
        raise FormError(f"--data {path!r}: cannot tell its form from its name; pass --data-format "
                        f"({', '.join(FORMS)})")
    if form not in accepted:
        raise FormError(f"--data {path!r} is {form} data; this recipe trains on {' or '.join(accepted)} "
                        f"(--data-format forces a form)")
    return form


TASK_OF_FORM = {"text": "classify", "corpus": "language_model", "series": "forecast", "images": "image",
                "table": "classify"}


def task_of(data: str, requested: str, accepted: tuple[str, ...]) -> str:
    """The sequence recipes' task for ``--data``: text -> classify, corpus -> language_model,
    series -> forecast. A path that cannot be read as one raises the runtime's DataError."""
    try:
        return TASK_OF_FORM[detect(os.path.abspath(os.path.expanduser(data)), requested, accepted)]
    except FormError as error:
        from recipes.runtime.data import DataError

        raise DataError(str(error)) from None
