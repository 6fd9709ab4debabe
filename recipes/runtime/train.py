"""One run of a recipe: seed, strategy, data, build and compile in scope, fit, evaluate,
save, plot, and write the results row.

A recipe module provides ``Config`` (a RunConfig subclass), ``make_datasets(config)``
returning ``data.Datasets``, and ``build_model(config, datasets)`` returning a compiled
model (it runs inside ``strategy.scope()``). It may provide ``report(model, datasets,
config, run_dir)`` returning extra metrics and writing extra artifacts, and
``run_name(config)`` naming the model in the run folder and the results row, and
``callbacks(config, datasets, run_dir)`` returning extra Keras callbacks (e.g. sample grids),
and ``fit(model, train, test, config, datasets, callbacks, backup_dir)`` training in place of
``model.fit`` (several phases; each keeps its own checkpoint under ``backup_dir``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from recipes.runtime import cluster, distribute, files, results
from recipes.runtime import config as config_lib
from recipes.runtime import data as data_lib
from recipes.runtime.callbacks import (
    BlankValidation,
    Checkpoint,
    CountBatches,
    ResumeError,
    StopOnNaN,
    TrainingClock,
    read_side_file,
)

# fit() warns that it ignores shuffle=True for a tf.data.Dataset; the pipeline shuffles itself.
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NaNLossError(RuntimeError):
    """Training diverged; no results row is written."""


# Settings that may change when an interrupted run is resumed; any other change is refused.
RESUMABLE_CHANGES = {"epochs", "verbose", "tracking", "results_dir", "validation_freq", "worker_timeout"}


def prepare_resume(backup_dir: str, config: config_lib.RunConfig) -> bool:
    """True when ``backup_dir`` holds a checkpoint to resume with the same settings.

    The settings are stored beside the checkpoint; resuming with different ones (another
    loss, model or data set in the same output folder) raises ResumeError rather than
    silently continuing a different run.
    """
    settings_path = os.path.join(backup_dir, "zoo_settings.json")
    current = {key: value for key, value in dataclasses.asdict(config).items() if key not in RESUMABLE_CHANGES}
    current = json.loads(json.dumps(current, default=str))  # tuples -> lists, as stored
    if os.path.exists(settings_path):
        saved = read_side_file(settings_path, backup_dir)
        # A field added to the config after the checkpoint was written, left at its default,
        # is the setting the old code used: that is not a change.
        defaults = {field.name: field.default for field in dataclasses.fields(config)}
        added_at_default = {key for key in set(current) - set(saved) if current[key] == defaults.get(key)}
        changed = sorted(key for key in (set(saved) | set(current)) - added_at_default
                         if saved.get(key) != current.get(key))
        if changed:
            details = ", ".join(f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in changed)
            raise ResumeError(f"{os.path.dirname(backup_dir)} holds an interrupted run with other settings "
                              f"({details}). Resume it with its own options, choose another --output-dir, "
                              f"or delete {backup_dir} to start over.")
    else:
        files.write_json(settings_path, current, indent=2)
    # A multi-phase recipe keeps its phases' checkpoints in subfolders; the clock marks any finished epoch.
    return any(os.path.exists(os.path.join(backup_dir, name))
               for name in ("training_metadata.json", "zoo_training_seconds.json"))


def recipe_callbacks(module, config, datasets, output_dir: str) -> list:
    return module.callbacks(config, datasets, output_dir) if hasattr(module, "callbacks") else []


def previous_training_seconds(path: str, resuming: bool) -> list[float] | None:
    """Seconds of each epoch the interrupted invocations trained; None when a resumed checkpoint
    has no clock."""
    if not resuming:
        return []
    if not os.path.exists(path):
        return None
    clock = read_side_file(path, os.path.dirname(path))
    if not isinstance(clock, dict) or not isinstance(clock.get("seconds"), (int, float)):
        raise ResumeError(f"{path} holds no training seconds ({clock!r}). Delete {os.path.dirname(path)} "
                          f"to start the run over.")
    return [float(seconds) for seconds in clock.get("epoch_seconds", [clock["seconds"]])]


def use_xla(config: config_lib.RunConfig) -> bool:
    """Resolve ``jit_compile``: "auto" means XLA on GPUs only.

    On CPU, XLA made the MNIST convnet about 5x slower in ``make bench`` (TF 2.21, 2 cores).
    """
    if config.jit_compile == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return config.jit_compile == "true"


def compile_options(config: config_lib.RunConfig) -> dict:
    """The keyword arguments of ``model.compile`` that every recipe shares."""
    return {"jit_compile": use_xla(config), "steps_per_execution": config.steps_per_execution}


def validation_epochs(config: config_lib.RunConfig) -> list[int]:
    """The epochs (1-based) that evaluate on the test split: every ``validation_freq``-th and the last.

    Evaluating a large test set costs as much as a good part of an epoch (IMDB's 25,000
    reviews through attention), so long runs may evaluate less often than every epoch.
    """
    if config.validation_freq < 1:
        raise config_lib.ConfigError(f"--validation-freq must be at least 1, got {config.validation_freq}")
    return sorted({*range(config.validation_freq, config.epochs + 1, config.validation_freq), config.epochs})


def steps_per_epoch(config: config_lib.RunConfig, num_examples: int) -> int:
    """Optimizer steps per epoch at the global batch; call inside ``strategy.scope()``."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return -(-num_examples // (config.batch_size * replicas))


def default_dirs(recipe: str, run_name: str, config: config_lib.RunConfig) -> tuple[str, str]:
    suffix = "-quick" if config.quick else ""
    output_dir = config.output_dir or os.path.join("runs", recipe, f"{run_name}{suffix}")
    results_dir = config.results_dir or ("runs/quick-results" if config.quick else "results")
    return output_dir, results_dir


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


def set_precision(mixed_precision: bool) -> None:
    if not mixed_precision:
        keras.mixed_precision.set_global_policy("float32")
    elif tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    else:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")


def run(recipe: str, module, config: config_lib.RunConfig, command: str = "",
        extra_callbacks: list | None = None, log=print) -> dict:
    """Train, evaluate and record one run; returns the results row."""
    if hasattr(config, "model"):
        import zoo
        zoo.get_builder(config.model)  # an unknown name fails now, not after loading the data
    if config.tracking == "mlflow":
        _import_mlflow()
    commit = git_commit()  # the code as it is when the run starts
    placement = distribute.make_strategy(config.strategy, config.cpu_replicas, config.worker_timeout)
    if placement.replicas > 1 and config.steps_per_execution > 1:
        raise config_lib.ConfigError(
            f"steps_per_execution={config.steps_per_execution} with {placement.replicas} replicas fails inside "
            f"Keras {keras.__version__} / TensorFlow {tf.__version__} ('You must feed a value for placeholder "
            f"tensor' in multi_step_on_iterator); use --steps-per-execution 1 with MirroredStrategy.")
    keras.utils.set_random_seed(config.seed)
    set_precision(config.mixed_precision)
    run_name = module.run_name(config) if hasattr(module, "run_name") else getattr(config, "model", recipe)

    datasets = module.make_datasets(config)
    if 0 < config.train_examples < datasets.num_train:
        datasets.train, datasets.num_train = datasets.train.take(config.train_examples), config.train_examples
    output_dir, results_dir = default_dirs(recipe, f"{run_name}-{datasets.name}", config)
    chief, run_dir = distribute.is_chief(), output_dir
    # Every worker of a cluster takes part in saving: the others write into a folder of their own.
    with cluster.worker_folder(run_dir) as output_dir, cluster.peer_failures(placement.workers, run_dir):
        global_batch = config.batch_size * placement.replicas
        log(f"[{recipe}] {run_name} on {datasets.name} ({datasets.num_train} train / {datasets.num_test} test; "
            f"{datasets.source})")
        log(f"[{recipe}] strategy={placement.name} replicas={placement.replicas} device={placement.device} "
            f"per-replica batch={config.batch_size} global batch={global_batch}")
        if placement.workers > 1:
            log(f"[{recipe}] {placement.workers} workers, {placement.replicas // placement.workers} replica(s) each; this "
                f"is {'the chief' if chief else 'a worker'}: {cluster.current_task().name} "
                f"(input sharded by data: each worker reads every example and keeps its part of each global batch)")
        train = data_lib.pipeline(datasets.train, datasets.num_train, global_batch, training=True,
                                  seed=config.seed, augment=datasets.augment, replicas=placement.replicas,
                                  batch_map=datasets.train_batch_map)
        test = data_lib.pipeline(datasets.test, datasets.num_test, global_batch, training=False, seed=config.seed,
                                 replicas=placement.replicas)

        with placement.strategy.scope():
            model = module.build_model(config, datasets)
        os.makedirs(output_dir, exist_ok=True)  # only now: a setting the model refuses leaves no folder behind
        log(f"[{recipe}] model {model.name}: {model.count_params():,} parameters; output dir {output_dir}")

        backup_dir = os.path.join(output_dir, "backup")
        history_csv = os.path.join(output_dir, "history.csv")
        resuming = prepare_resume(backup_dir, config)
        if resuming:
            log(f"[{recipe}] resuming from the checkpoint in {backup_dir}")
        elif os.path.exists(history_csv):
            os.remove(history_csv)
        nan_guard = StopOnNaN()
        previous_seconds = previous_training_seconds(os.path.join(backup_dir, "zoo_training_seconds.json"), resuming)
        clock = TrainingClock(os.path.join(backup_dir, "zoo_training_seconds.json"), previous_seconds or [])
        callbacks = [BlankValidation(), keras.callbacks.CSVLogger(history_csv, append=True),
                     keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard")),
                     nan_guard, clock, *recipe_callbacks(module, config, datasets, output_dir)]

        clock.epoch_start = time.perf_counter()  # the clock counts from here, not from its creation
        try:
            if hasattr(module, "fit"):  # several phases, each with its own checkpoint under backup_dir
                history = module.fit(model, train, test, config, datasets, callbacks=[*callbacks, *(extra_callbacks or [])],
                                     backup_dir=backup_dir)
            else:
                checkpoint = Checkpoint(backup_dir, history_csv, clock)  # restores first, saves after the history
                history = model.fit(train, epochs=config.epochs, validation_data=test, verbose=config.verbose,
                                    callbacks=[checkpoint.restorer, *callbacks, checkpoint, *(extra_callbacks or [])],
                                    validation_freq=validation_epochs(config))
        except OSError as error:
            if not resuming:
                raise
            raise ResumeError(f"The checkpoint in {backup_dir} cannot be read ({error}); it was probably cut off "
                              f"while being written. Delete {backup_dir} to start the run over.") from None
        train_seconds = clock.elapsed()  # across resumed invocations, from the checkpoint's clock
        if nan_guard.where:
            shutil.rmtree(backup_dir, ignore_errors=True)
            rates = ", ".join(f"--{name.replace('_', '-')} {value:g}" for name, value in dataclasses.asdict(config).items()
                              if name.endswith("learning_rate"))  # phases may have rates of their own
            raise NaNLossError(f"The training loss became NaN at {nan_guard.where}; no results were written. "
                               f"Lower the learning rate (it was {rates}) or check the input data.")
        epochs_done = history.epoch[-1] + 1 if history.epoch else 0  # absolute, counting resumed epochs
        # Speeds over the epochs the clock saw: all of them, unless an older checkpoint had no clock.
        timed_epochs = epochs_done if previous_seconds is not None else len(history.epoch)

        metrics = evaluate_and_save(model, module, datasets, test, config, output_dir)
        row = {
            **run_columns(placement, config, commit, jit_compile=use_xla(config)),
            "recipe": recipe, "model": run_name, "dataset": datasets.name, "dataset_source": datasets.source,
            "train_examples": datasets.num_train, "params": model.count_params(), "epochs": epochs_done,
            "per_replica_batch_size": config.batch_size, "global_batch_size": global_batch,
            "learning_rate": config.learning_rate, "train_seconds": round(train_seconds, 2),
            "samples_per_second": round(datasets.num_train * timed_epochs / train_seconds, 1),
            **({"tokens_per_second": round(datasets.num_train * timed_epochs / train_seconds
                                           * datasets.extras["tokens_per_example"])}
               if "tokens_per_example" in datasets.extras else {}),
            **metrics, "command": command or " ".join(sys.argv),
        }
        record(recipe, module, config, row, output_dir, results_dir, log)
        if config.tracking == "mlflow" and chief:
            log_to_mlflow(recipe, config, row, output_dir)
        log(f"[{recipe}] " + ", ".join(f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}"
                                       for name, value in metrics.items())
            + f"; {train_seconds:.1f}s, {row['samples_per_second']:.0f} samples/s; "
            + (f"artifacts in {output_dir}" if chief else "artifacts with the chief"))
        return row


def save_model(model, path: str) -> None:
    """``model.save(path)`` under a name of this process's, then renamed: a reader (a resumed
    run, another worker of a cluster saving the same file) never finds half a file."""
    partial = f"{path}.{os.getpid()}.partial.keras"
    model.save(partial)
    os.replace(partial, path)


def evaluate_whole(model, test: tf.data.Dataset, num_examples: int, model_path: str) -> dict:
    """``model.evaluate`` on the whole test split, or DataError: a row must never come from part of it.

    Keras ends an evaluation early with only a warning ("Your input ran out of data") when its
    input stops before its stated size; the metrics are then those of the batches it saw.
    """
    counter = CountBatches()
    evaluation = model.evaluate(test, verbose=0, return_dict=True, callbacks=[counter])
    expected = int(test.cardinality())
    if expected >= 0 and counter.batches != expected:
        raise data_lib.DataError(
            f"The final evaluation saw {counter.batches} of the test split's {expected} batches ({num_examples} "
            f"examples): its input ended early, so no results row was written. The trained model is saved in "
            f"{model_path}; run the command again in a fresh process for a row.")
    return evaluation


def evaluate_and_save(model, module, datasets, test, config, output_dir: str) -> dict:
    """Test metrics, plus the saved model, curves, confusion matrix and the recipe's own report."""
    model_path = os.path.join(output_dir, "model.keras")
    save_model(model, model_path)  # first: an evaluation that fails keeps the trained model
    evaluation = evaluate_whole(model, test, datasets.num_test, model_path)
    metrics = {f"test_{name}": float(value) for name, value in evaluation.items()}
    history_csv = os.path.join(output_dir, "history.csv")
    if os.path.exists(history_csv):
        plot_history(history_csv, os.path.join(output_dir, "curves.png"))
    if datasets.num_classes:
        matrix = confusion_matrix(model, test, datasets.num_classes)
        if matrix.sum() != datasets.num_test:
            raise data_lib.DataError(f"The confusion matrix counted {matrix.sum()} of the test split's "
                                     f"{datasets.num_test} examples: its input ended early; no results row was "
                                     f"written (the trained model is in {model_path}).")
        files.write_text(os.path.join(output_dir, "confusion_matrix.csv"),
                         "".join(",".join(map(str, row)) + "\n" for row in matrix))
        plot_confusion(matrix, datasets.class_names, os.path.join(output_dir, "confusion_matrix.png"))
    if hasattr(module, "report"):
        metrics.update(module.report(model, datasets, config, output_dir) or {})
    return metrics


def published_name(row: dict, artifact: str) -> str:
    """File name of a run's published picture: model, data set and the row's date make it unique."""
    stamp = row["date"].replace("-", "").replace(":", "")
    return f"{row['model']}-{row['dataset']}-{stamp}-{artifact}"


def published_artifacts(module, config) -> tuple:
    """Run files a recipe shows beside its table: ``PUBLISH``, a tuple or a function of the config."""
    artifacts = getattr(module, "PUBLISH", ())
    return tuple(artifacts(config) if callable(artifacts) else artifacts)


def run_columns(placement, config: config_lib.RunConfig, commit: str, jit_compile: bool = False) -> dict:
    """The columns every results row shares: when, on what and with which software and settings it ran.
    ``placement`` is ``distribute.make_strategy``'s; recipes that train no model (``run``) use it too."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "workers": placement.workers, "replicas": placement.replicas, "strategy": placement.name, "device": placement.device,
        "backend": keras.backend.backend(), "tensorflow_version": tf.__version__, "keras_version": keras.__version__,
        "mixed_precision": config.mixed_precision, "jit_compile": jit_compile,
        "steps_per_execution": config.steps_per_execution, "commit": commit, "seed": config.seed,
    }


def record(recipe: str, module, config, row: dict, output_dir: str, results_dir: str, log) -> None:
    """Save the run's config and row beside its artifacts; on the chief, publish the row."""
    files.write_json(os.path.join(output_dir, "config.json"), {"config": dataclasses.asdict(config), "row": row},
                     indent=2, default=str)
    if distribute.is_chief():
        publish(recipe, module, config, row, output_dir, results_dir, log)


def publish(recipe: str, module, config, row: dict, output_dir: str, results_dir: str, log) -> None:
    """Append the results row and copy the pictures a recipe shows beside its table."""
    csv_path = results.append_row(results_dir, recipe, row)
    log(f"[{recipe}] wrote a results row to {csv_path}")
    for artifact in published_artifacts(module, config):
        published = os.path.join(results_dir, recipe, published_name(row, artifact))
        os.makedirs(os.path.dirname(published), exist_ok=True)
        shutil.copyfile(os.path.join(output_dir, artifact), published)


def _import_mlflow():
    try:
        import mlflow
    except ImportError:
        raise config_lib.ConfigError("--tracking mlflow needs mlflow: pip install -e '.[mlflow]'") from None
    return mlflow


def log_to_mlflow(recipe: str, config: config_lib.RunConfig, row: dict, output_dir: str) -> None:
    """Log parameters, metrics and the run folder to MLflow, at ``MLFLOW_TRACKING_URI`` (mlflow's default otherwise)."""
    mlflow = _import_mlflow()
    mlflow.set_experiment(recipe)
    with mlflow.start_run(run_name=f"{row['model']}-{row['dataset']}"):
        mlflow.log_params({key: value for key, value in dataclasses.asdict(config).items()})
        mlflow.log_metrics({key: float(value) for key, value in row.items()
                            if key.startswith("test_") or key in ("train_seconds", "samples_per_second")})
        mlflow.set_tags({key: str(row[key]) for key in ("dataset_source", "device", "commit", "command")})
        mlflow.log_artifacts(output_dir)
