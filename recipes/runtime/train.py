"""One run of a recipe: the runtime's side of the contract in ``recipes/runtime/recipe.py``.

Seed, strategy, data, build and compile in scope, fit (the recipe's or ``model.fit`` with a
resumable checkpoint), evaluate on the whole test split, the recipe's report and baseline,
save, plot, and write the results row. Recipes never call this; ``zoo run`` does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
import warnings

import keras
import tensorflow as tf

from recipes.runtime import artifacts, clocks, cluster, distribute, files, tracking
from recipes.runtime import config as config_lib
from recipes.runtime import data as data_lib
from recipes.runtime.callbacks import (
    Checkpoint,
    CountBatches,
    HistoryCSV,
    ResumeError,
    StopOnNaN,
    TrainingClock,
    read_side_file,
)
from recipes.runtime.recipe import FitResult, Plan, Recipe, Run

# fit() warns that it ignores shuffle=True for a tf.data.Dataset; the pipeline shuffles itself.
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


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


def default_dirs(recipe: str, run_name: str, config: config_lib.RunConfig) -> tuple[str, str]:
    suffix = "-quick" if config.quick else ""
    output_dir = config.output_dir or os.path.join("runs", recipe, f"{run_name}{suffix}")
    results_dir = config.results_dir or ("runs/quick-results" if config.quick else "results")
    return output_dir, results_dir


def set_precision(mixed_precision: bool) -> None:
    if not mixed_precision:
        keras.mixed_precision.set_global_policy("float32")
    elif tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    else:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")


def training_pipeline(datasets, config: config_lib.RunConfig, global_batch: int, replicas: int):
    """The training split as a run feeds it to ``fit``: shuffled, batched, the recipe's batch map and
    augmentation applied (``zoo bench`` times its recipe way on this same pipeline)."""
    return data_lib.pipeline(datasets.train, datasets.num_train, global_batch, training=True, seed=config.seed,
                             augment=datasets.augment, replicas=replicas, batch_map=datasets.train_batch_map)


def run(recipe: Recipe, config: config_lib.RunConfig, command: str = "", extra_callbacks: list | None = None,
        log=print) -> dict:
    """Train, evaluate and record one run of ``recipe``; returns the results row."""
    name = recipe.name
    if config.data and not recipe.data_forms:
        raise config_lib.ConfigError(f"--data: the {name} recipe trains on its own data sets only")
    model_name = getattr(config, "model", "")  # recipes with a zoo model name it in a field called model
    if model_name:
        import zoo
        zoo.get_builder(model_name)  # an unknown name fails now, not after loading the data
    tracking.require(config.tracking)  # a missing package stops the run before any data is read
    config.fit_verbose  # so does a --verbose out of range
    commit = artifacts.git_commit()  # the code as it is when the run starts
    placement = distribute.make_strategy(config.strategy, config.cpu_replicas, config.worker_timeout)
    if placement.replicas > 1 and config.steps_per_execution > 1:
        raise config_lib.ConfigError(
            f"steps_per_execution={config.steps_per_execution} with {placement.replicas} replicas fails inside "
            f"Keras {keras.__version__} / TensorFlow {tf.__version__} ('You must feed a value for placeholder "
            f"tensor' in multi_step_on_iterator); use --steps-per-execution 1 with MirroredStrategy.")
    keras.utils.set_random_seed(config.seed)
    set_precision(config.mixed_precision)
    run_name = recipe.run_name(config) or name

    datasets = recipe.make_datasets(config)
    if 0 < config.train_examples < datasets.num_train:
        datasets.train, datasets.num_train = datasets.train.take(config.train_examples), config.train_examples
    output_dir, results_dir = default_dirs(name, f"{run_name}-{datasets.name}", config)
    chief, run_dir = distribute.is_chief(), output_dir
    # Every worker of a cluster takes part in saving: the others write into a folder of their own.
    with cluster.worker_folder(run_dir) as output_dir, cluster.peer_failures(placement.workers, run_dir), \
            tracking.session(config.tracking if chief else "none", name) as start_tracker:
        global_batch = config.batch_size * placement.replicas
        plan = Plan(placement.replicas, placement.workers, global_batch, -(-datasets.num_train // global_batch))
        log(f"[{name}] {run_name} on {datasets.name} ({datasets.num_train} train / {datasets.num_test} test; "
            f"{datasets.source})" + (f"; preset {config.preset}" if config.preset else ""))
        log(f"[{name}] strategy={placement.name} replicas={placement.replicas} device={placement.device} "
            f"per-replica batch={config.batch_size} global batch={global_batch}")
        if placement.workers > 1:
            log(f"[{name}] {placement.workers} workers, {placement.replicas // placement.workers} replica(s) each; "
                f"this is {'the chief' if chief else 'a worker'}: {cluster.current_task().name} "
                f"(input sharded by data: each worker reads every example and keeps its part of each global batch)")
        state = Run(recipe, config, datasets, plan, output_dir, os.path.join(output_dir, "backup"), log)
        if datasets.train is not None:
            state.train = training_pipeline(datasets, config, global_batch, placement.replicas)
        if datasets.test is not None:
            state.test = data_lib.pipeline(datasets.test, datasets.num_test, global_batch, training=False,
                                           seed=config.seed, replicas=placement.replicas)

        with placement.strategy.scope():
            state.model = model = recipe.build_model(config, datasets, plan)
        os.makedirs(output_dir, exist_ok=True)  # only now: a setting the model refuses leaves no folder behind
        epochs = f"{config.epochs} epochs; " if recipe.trains and "epochs" not in config.NOT_APPLICABLE else ""
        log(f"[{name}] model {model.name}: {model.count_params():,} parameters; {epochs}artifacts in {output_dir}"
            + (f"; the row goes to {os.path.join(results_dir, name + '.csv')}" if chief else ""))

        backup_dir, history_csv = state.backup_dir, os.path.join(output_dir, "history.csv")
        resuming = prepare_resume(backup_dir, config) if recipe.trains else False
        if resuming:
            log(f"[{name}] resuming from the checkpoint in {backup_dir}")
        elif os.path.exists(history_csv):
            os.remove(history_csv)
        tracker = start_tracker(config, output_dir, f"{run_name}-{datasets.name}", resuming)
        nan_guard = StopOnNaN()
        previous_seconds = previous_training_seconds(os.path.join(backup_dir, "zoo_training_seconds.json"), resuming)
        clock = TrainingClock(os.path.join(backup_dir, "zoo_training_seconds.json"), previous_seconds or [])
        callbacks = [HistoryCSV(history_csv, append=True),
                     keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard")),
                     nan_guard, clock, *tracker.callbacks, *recipe.callbacks(state)]
        state.callbacks = [*callbacks, *(extra_callbacks or [])]

        clock.epoch_start = time.perf_counter()  # the clock counts from here, not from its creation
        try:
            if recipe.fit is not None:  # several phases, each with its own checkpoint under backup_dir
                fitted = recipe.fit(state)
            else:
                checkpoint = Checkpoint(backup_dir, history_csv, clock)  # restores first, saves after the history
                history = model.fit(state.train, epochs=config.epochs, validation_data=state.test,
                                    verbose=config.fit_verbose, validation_freq=validation_epochs(config),
                                    callbacks=[checkpoint.restorer, *callbacks, checkpoint, *(extra_callbacks or [])])
                fitted = FitResult(epochs=list(history.epoch), history=dict(history.history))
        except OSError as error:
            if not resuming:
                raise
            raise ResumeError(f"The checkpoint in {backup_dir} cannot be read ({error}); it was probably cut off "
                              f"while being written. Delete {backup_dir} to start the run over.") from None
        # Across resumed invocations, from the checkpoint's clock.
        train_seconds = clock.elapsed() if fitted.seconds is None else fitted.seconds
        if nan_guard.where:
            shutil.rmtree(backup_dir, ignore_errors=True)
            rates = ", ".join(f"--{name.replace('_', '-')} {value:g}" for name, value in dataclasses.asdict(config).items()
                              if name.endswith("learning_rate"))  # phases may have rates of their own
            raise NaNLossError(f"The training loss became NaN at {nan_guard.where}; no results were written. "
                               f"Lower the learning rate (it was {rates}) or check the input data.")
        state.fitted = fitted
        epochs_done = fitted.epochs[-1] + 1 if fitted.epochs else 0  # absolute, counting resumed epochs
        # Speeds over the epochs the clock saw: all of them, unless an older checkpoint had no clock.
        timed_epochs = epochs_done if previous_seconds is not None else len(fitted.epochs)
        examples = datasets.num_train * timed_epochs if fitted.examples is None else fitted.examples
        state.train_seconds, state.examples = train_seconds, examples

        metrics = {**evaluate_and_save(state), **fitted.metrics, **recipe.report(state)}
        target = recipe.targets.get(datasets.name)
        if target and recipe.fit is None:  # a Keras fit under the runtime's clock, one evaluation per epoch
            metrics.update(clocks.time_to_target(history_csv, clock.epoch_seconds, target))
        if recipe.baseline is not None:
            started = time.perf_counter()
            metrics.update(recipe.baseline(state))
            metrics["baseline_seconds"] = round(time.perf_counter() - started, 1)
        shutil.rmtree(backup_dir, ignore_errors=True)  # finished: nothing to resume
        row = {
            **artifacts.run_columns(placement, config, commit, jit_compile=use_xla(config)),
            "recipe": name, "model": run_name, "dataset": datasets.name, "dataset_source": datasets.source,
            "train_examples": datasets.num_train, "params": model.count_params(), "epochs": epochs_done,
            "per_replica_batch_size": config.batch_size, "global_batch_size": global_batch,
            "learning_rate": config.learning_rate, "train_seconds": round(train_seconds, 2),
            "samples_per_second": round(examples / train_seconds, 1),
            **({"tokens_per_second": round(examples / train_seconds * datasets.tokens_per_example)}
               if datasets.tokens_per_example else {}),
            **metrics, "command": command or " ".join(sys.argv),
        }
        artifacts.describe_data(datasets, output_dir)
        csv_path = artifacts.record(recipe, config, row, output_dir, results_dir)
        tracker.finish(row)
        log(f"[{name}] " + ", ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                                     for key, value in metrics.items() if not key.endswith("target"))
            + clocks.describe_target(metrics)
            + f"; {train_seconds:.1f}s, {row['samples_per_second']:.0f} samples/s; "
            + (f"artifacts in {output_dir}; row added to {csv_path}" if chief else "artifacts and row with the chief"))
        return row


def evaluate_and_save(run: Run) -> dict:
    """Test metrics, plus the saved model, curves and (classifiers) the confusion matrix."""
    model, datasets, output_dir = run.model, run.datasets, run.output_dir
    if not run.recipe.trains:  # no model to keep, no test split
        return {}
    model_path = os.path.join(output_dir, "model.keras")
    artifacts.save_model(model, model_path)  # first: an evaluation that fails keeps the trained model
    history_csv = os.path.join(output_dir, "history.csv")
    if os.path.exists(history_csv):
        artifacts.plot_history(history_csv, os.path.join(output_dir, "curves.png"))
    evaluation = evaluate_whole(model, run.test, datasets.num_test, model_path)
    metrics = {f"test_{name}": float(value) for name, value in evaluation.items()}
    if datasets.task == "classify" and datasets.num_classes:
        matrix = artifacts.confusion_matrix(model, run.test, datasets.num_classes)
        if matrix.sum() != datasets.num_test:
            raise data_lib.DataError(f"The confusion matrix counted {matrix.sum()} of the test split's "
                                     f"{datasets.num_test} examples: its input ended early; no results row was "
                                     f"written (the trained model is in {model_path}).")
        files.write_text(os.path.join(output_dir, "confusion_matrix.csv"),
                         "".join(",".join(map(str, row)) + "\n" for row in matrix))
        artifacts.plot_confusion(matrix, datasets.class_names, os.path.join(output_dir, "confusion_matrix.png"))
    return metrics


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
