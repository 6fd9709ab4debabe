"""What a run leaves behind: the saved model, curves and confusion matrix, the common row
columns and the published pictures beside the table (experiment trackers: ``tracking.py``).

Used by ``train.run`` for every recipe; recipes that save files several workers may write
(a cached classifier, a quick backbone) use ``save_model`` too.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import subprocess

import keras
import numpy as np
import tensorflow as tf

from recipes.runtime import config as config_lib
from recipes.runtime import data as data_lib
from recipes.runtime import distribute, files, results

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "zoo", "recipes"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def plot_history(history_csv: str, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    history = pd.read_csv(history_csv)
    metrics = [column for column in history.columns if column != "epoch" and not column.startswith("val_")]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        epochs = history["epoch"] + 1
        axis.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="test")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def confusion_matrix(model, test: tf.data.Dataset, num_classes: int) -> np.ndarray:
    labels = np.concatenate([np.asarray(label).reshape(-1) for _, label in test])
    predictions = np.argmax(model.predict(test, verbose=0), axis=-1)
    if len(predictions) != len(labels):
        raise data_lib.DataError(f"model.predict gave {len(predictions)} predictions for the test split's "
                                 f"{len(labels)} examples: its input ended early; no results row was written.")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(int), predictions.astype(int)), 1)
    return matrix


def plot_confusion(matrix: np.ndarray, class_names: list, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.5 * len(matrix))
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    names = class_names or [str(index) for index in range(len(matrix))]
    axis.set_xticks(range(len(matrix)), names, rotation=90)
    axis.set_yticks(range(len(matrix)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > matrix.max() / 2 else "black")
    figure.colorbar(image)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def save_model(model, path: str) -> None:
    """``model.save(path)`` under a name of this process's, then renamed: a reader (a resumed
    run, another worker of a cluster saving the same file) never finds half a file."""
    partial = f"{path}.{os.getpid()}.partial.keras"
    model.save(partial)
    os.replace(partial, path)


def run_columns(placement, config: config_lib.RunConfig, commit: str, jit_compile: bool = False) -> dict:
    """The columns every results row shares: when, on what and with which software and settings it ran.
    ``placement`` is ``distribute.make_strategy``'s; recipes that train no model (``run``) use it too."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "workers": placement.workers, "replicas": placement.replicas, "strategy": placement.name, "device": placement.device,
        "backend": keras.backend.backend(), "tensorflow_version": tf.__version__, "keras_version": keras.__version__,
        "mixed_precision": config.mixed_precision, "jit_compile": jit_compile,
        "steps_per_execution": config.steps_per_execution, "commit": commit, "seed": config.seed, "preset": config.preset,
    }


def describe_data(datasets, output_dir: str) -> None:
    """``data.json``: what ``zoo predict`` needs to turn the saved model's outputs into answers."""
    files.write_json(os.path.join(output_dir, "data.json"), {
        "name": datasets.name, "source": datasets.source, "task": datasets.task,
        "input_shape": list(datasets.input_shape), "class_names": list(datasets.class_names),
        "pixel_max": datasets.pixel_max, "table_columns": datasets.table_columns,
        "series_unit": datasets.series.unit if datasets.series is not None else None}, indent=2, default=str)


def record(recipe, config, row: dict, output_dir: str, results_dir: str) -> str | None:
    """Save the run's config and row beside its artifacts; on the chief, append the row and copy
    the pictures the recipe shows beside its table. Returns the results CSV (None off the chief)."""
    files.write_json(os.path.join(output_dir, "config.json"), {"config": dataclasses.asdict(config), "row": row},
                     indent=2, default=str)
    if not distribute.is_chief():
        return None
    return results.append_row(results_dir, recipe.name, row, published={
        artifact: os.path.join(output_dir, artifact) for artifact in recipe.published(config)})
