"""Experiment tracking: ``--tracking mlflow`` or ``--tracking wandb`` (Weights & Biases).

``train.run`` checks the package first (``require``), so a missing one stops the run before any
data is read; then ``session`` starts, on the chief only, a tracker whose ``callbacks`` go into
``fit`` and whose ``finish`` gets the results row at the end (a run that raises marks it failed):

    MLflow   at the end: parameters, the row's test metrics and times, the whole run folder,
             at ``MLFLOW_TRACKING_URI`` (mlflow's default otherwise), experiment = the recipe.
    W&B      as it trains: the config, every epoch's metrics (step = the epoch, as in
             history.csv); at the end the row as the summary and the run folder's PNGs.
             Offline unless WANDB_MODE says otherwise; project ``zoo-<recipe>`` unless
             WANDB_PROJECT is set; the files under ``<output dir>/wandb/`` unless WANDB_DIR is
             set. ``wandb sync <output dir>/wandb/offline-run-*`` uploads them later.

A resumed run continues the same W&B run: its id is kept beside the checkpoint (removed with
it when the run finishes), and each invocation logs the epochs it trains under that id, so
``wandb sync`` of the run's offline folders (in start order) makes one run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
from typing import Callable

from recipes.runtime import config as config_lib
from recipes.runtime import files


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
    run_name, resuming)``; a run that raises before ``tracker.finish`` marks its W&B run failed."""
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


def start_wandb(recipe: str, config: config_lib.RunConfig, output_dir: str, run_name: str,
                resuming: bool) -> Tracker:
    wandb = require("wandb")
    import keras

    # The id lives beside the checkpoint: a resumed invocation continues the same W&B run, a
    # fresh run (the checkpoint removed when the last one finished) gets a new id.
    id_path = os.path.join(output_dir, "backup", "zoo_wandb_run.json")
    run_id = files.read_json(id_path)["id"] if resuming and os.path.exists(id_path) else None
    run = wandb.init(project=os.environ.get("WANDB_PROJECT") or f"zoo-{recipe}", name=run_name, id=run_id,
                     resume="allow", dir=None if os.environ.get("WANDB_DIR") else output_dir,
                     mode=os.environ.get("WANDB_MODE") or "offline",  # never the network unless asked
                     config=dataclasses.asdict(config))
    os.makedirs(os.path.dirname(id_path), exist_ok=True)
    files.write_json(id_path, {"id": run.id})
    wandb_root = os.path.dirname(os.path.dirname(os.path.abspath(run.dir)))  # <dir>/wandb, whose PNGs are W&B's copies

    metrics = set()  # keys logged per epoch: a picture of the same name (the mlp's loss.png) must not replace one

    class LogEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metrics.update(logs or {})
            run.log({key: float(value) for key, value in (logs or {}).items()}, step=epoch)

    def finish(row: dict) -> None:
        pictures = {}
        for folder, subfolders, names in os.walk(output_dir):
            subfolders[:] = sorted(name for name in subfolders if os.path.abspath(os.path.join(folder, name)) != wandb_root)
            for name in sorted(names):
                if name.endswith(".png"):
                    path = os.path.join(folder, name)
                    key = os.path.relpath(path, output_dir)[:-len(".png")]
                    pictures[f"{key}_picture" if key in metrics else key] = wandb.Image(path)
        if pictures:
            run.log(pictures, step=max(row["epochs"] - 1, 0))  # beside the last epoch's metrics
        run.summary.update(row)
        run.finish()

    return Tracker(callbacks=[LogEpoch()], finish=finish, fail=lambda: run.finish(exit_code=1))


STARTERS = {"none": start_none, "mlflow": start_mlflow, "wandb": start_wandb}
