"""Experiment tracking: ``--tracking mlflow``.

``train.run`` checks the package first (``require``), so a missing one stops the run before any
data is read; then ``session`` starts, on the chief only, a tracker whose ``callbacks`` go into
``fit`` and whose ``finish`` gets the results row at the end (a run that raises marks it failed):

    MLflow   at the end: parameters, the row's test metrics and times, the whole run folder,
             at ``MLFLOW_TRACKING_URI`` (mlflow's default otherwise), experiment = the recipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from typing import Callable

from recipes.runtime import config as config_lib


def require(tracking: str):
    """The tracking package (None for "none"), or ConfigError naming the extra to install: each
    ``--tracking`` value is the name of its package and of its pip extra."""
    if tracking == "none":
        return None
    try:
        return importlib.import_module(tracking)
    except ImportError:
        raise config_lib.ConfigError(f"--tracking {tracking} needs {tracking}: pip install -e '.[{tracking}]'") from None


@dataclasses.dataclass
class Tracker:
    """What ``train.run`` hands a tracker: Keras callbacks for ``fit``, and the row at the end."""

    callbacks: list = dataclasses.field(default_factory=list)
    finish: Callable[[dict], None] = lambda row: None
    fail: Callable[[], None] = lambda: None  # the run raised before ``finish``


@contextlib.contextmanager
def session(tracking: str, recipe: str):
    """``with session(config.tracking, name) as start:`` then ``tracker = start(config, output_dir,
    run_name, resuming)``; a run that raises before ``tracker.finish`` tells the tracker (``fail``)."""
    started = []

    def start(config: config_lib.RunConfig, output_dir: str, run_name: str, resuming: bool) -> Tracker:
        started.append(STARTERS[tracking](recipe, config, output_dir, run_name, resuming))
        return started[-1]

    try:
        yield start
    except BaseException:
        for tracker in started:
            tracker.fail()
        raise


def start_none(recipe, config, output_dir, run_name, resuming) -> Tracker:
    return Tracker()


def start_mlflow(recipe: str, config: config_lib.RunConfig, output_dir: str, run_name: str,
                 resuming: bool) -> Tracker:
    def finish(row: dict) -> None:
        mlflow = require("mlflow")
        mlflow.set_experiment(recipe)
        with mlflow.start_run(run_name=run_name):
            mlflow.log_params({key: value for key, value in dataclasses.asdict(config).items()})
            mlflow.log_metrics({key: float(value) for key, value in row.items()
                                if key.startswith("test_") or key in ("train_seconds", "samples_per_second")})
            mlflow.set_tags({key: str(row[key]) for key in ("dataset_source", "device", "commit", "command")})
            mlflow.log_artifacts(output_dir)

    return Tracker(finish=finish)


STARTERS = {"none": start_none, "mlflow": start_mlflow}
