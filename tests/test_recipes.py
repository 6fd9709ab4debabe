"""Recipes end to end: quick modes on 2 logical CPU replicas, the tfds path under
mock_data, resume after an interruption, and NaN loss."""

import json
import os
import re
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds

import recipes
from recipes.runtime import config as config_lib, console, pictures
from recipes.runtime import data, results, train
from tests.conftest import assert_handled_failure, run_cli

# Chance is 1/num_classes; a quick run must beat it by a clear margin.
QUICK_FLOORS = {"mlp": 0.70, "cnn": 0.60, "rnn": 0.60, "transformer": 0.60, "finetune": 0.60, "dbn": 0.80}


def check_quick_quality(recipe: str, row) -> None:
    """A quick run learnt: classifiers beat chance; a GAN's samples sit closer to the real
    digits (in its classifier's feature space) than the untrained generator's; an autoencoder's
    reconstructions beat the training set's mean image and a VAE's -ELBO beats independent
    pixels; DeepDream's ascent raised the activations it amplifies."""
    if recipe == "gan":
        assert row["real_fid"] < row["test_fid"] < 0.9 * row["untrained_fid"], \
            (row["real_fid"], row["test_fid"], row["untrained_fid"])
        assert row["classifier_accuracy"] > 0.9
    elif recipe == "autoencoder":
        assert row["test_mse"] < 0.8 * row["mean_image_mse"], (row["test_mse"], row["mean_image_mse"])
        assert -row["test_elbo"] < row["mean_image_cross_entropy"] - 1.0, \
            (row["test_elbo"], row["mean_image_cross_entropy"])
    elif recipe == "deepdream":
        assert row["dream_objective"] > 1.3 * row["start_objective"], (row["start_objective"], row["dream_objective"])
    else:
        assert row["test_accuracy"] > QUICK_FLOORS[recipe], f"quick {recipe} did not learn: {row['test_accuracy']}"


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """``zoo run all --quick --cpu-replicas 2`` once, from a scratch folder (its runs/ is there):
    every recipe in a process of its own, so one's collectives and CPU split cannot reach the next."""
    folder = tmp_path_factory.mktemp("run-all")
    result = run_cli("run", "all", "--quick", "--cpu-replicas", "2", "--results-dir", str(folder / "results"),
                     cwd=str(folder), timeout=3000)
    return folder, result


def test_run_all_quick_on_two_cpu_replicas_runs_every_recipe(quick_runs):
    folder, result = quick_runs
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"All {len(recipes.RECIPES)} recipes finished" in result.stdout
    for recipe in recipes.RECIPES:
        assert f"=== {recipe}: ok in " in result.stdout
    # A quiet console: no TensorFlow C++ log line anywhere, no NaN placeholder for an epoch that
    # skipped validation (the mlp's quick run validates every 10th of its 60 epochs).
    native = [line for line in (result.stdout + result.stderr).splitlines() if not console.keep(line.encode())]
    assert not native, native[:5]
    mlp = result.stdout.split("=== zoo run mlp ", 1)[1].split("=== mlp: ", 1)[0]
    assert mlp.count("val_loss: ") == 6 and not re.search(r"\bnan\b", mlp), mlp[-3000:]
    for recipe in recipes.RECIPES:  # the first lines say what will happen, the last where the row went
        output = result.stdout.split(f"=== zoo run {recipe} ", 1)[1].split(f"=== {recipe}: ", 1)[0]
        assert f"the row goes to {folder / 'results' / recipe}.csv" in output, output[:2000]
        assert f"row added to {folder / 'results' / recipe}.csv" in output.strip().splitlines()[-1], output[-2000:]


@pytest.mark.parametrize("recipe", sorted(recipes.RECIPES))
def test_quick_mode_on_two_cpu_replicas_writes_a_valid_row(recipe, quick_runs):
    folder, result = quick_runs
    output = result.stdout.split(f"=== zoo run {recipe} ", 1)[-1].split(f"=== {recipe}: ", 1)[0]
    assert "strategy=mirrored replicas=2" in output, output[-3000:]
    run_dirs = list((folder / "runs" / recipe).glob("*-quick"))
    assert len(run_dirs) == 1, run_dirs
    table = results.read_csv(folder / "results" / f"{recipe}.csv")
    assert len(table) == 1
    row = table.iloc[0]
    assert set(results.COLUMNS) <= set(table.columns)
    assert (row["replicas"], row["strategy"], row["backend"]) == (2, "mirrored", "tensorflow")
    assert row["global_batch_size"] == 2 * row["per_replica_batch_size"]
    assert row["command"].startswith(f"zoo run {recipe} --quick")
    assert row["samples_per_second"] > 0 and row["train_seconds"] > 0
    check_quick_quality(recipe, row)
    module = recipes.load(recipe)
    trains = module.trains  # a recipe that trains nothing (deepdream) has no model or test split
    expected = ["model.keras", "history.csv", "curves.png", "config.json"] if trains else ["config.json"]
    if trains and recipe not in ("gan", "autoencoder"):  # these predict no classes
        expected.append("confusion_matrix.png")
    for artifact in expected:
        assert (run_dirs[0] / artifact).exists(), artifact
    if trains:
        assert os.listdir(run_dirs[0] / "tensorboard")
    assert not (run_dirs[0] / "backup").exists()  # removed once training finished
    config = config_lib.parse_overrides(module.config, ["--quick"], presets=module.presets)
    readme = (folder / "results" / "README.md").read_text()
    for artifact in module.published(config):
        assert (folder / "results" / recipe / pictures.published_name(row, artifact)).exists()
        assert f"{recipe}/{pictures.published_name(row, artifact)}" in readme  # shown under the row
    assert "## " + recipe in readme
    check_time_to_target(module, row, run_dirs[0] / "history.csv")


def check_time_to_target(module, row, history_csv) -> None:
    """The row's target columns agree with the run's own history: the first evaluated epoch at
    the target, and no more seconds than the whole fit."""
    target = module.targets.get(row["dataset"])
    assert bool(target) == (module.name == "cnn"), module.targets  # of the quick runs, cnn's digits has one
    if not target:
        return
    column, direction, value = target
    history = pd.read_csv(history_csv)
    reached = history[history[column] >= value - 1e-6] if direction == ">=" else \
        history[history[column] <= value + 1e-6]
    assert row["target"] == f"{column.removeprefix('val_')} {direction} {value:g}"
    if len(reached):
        assert row["epochs_to_target"] == reached["epoch"].iloc[0] + 1, (row["epochs_to_target"], history)
        assert 0 < row["seconds_to_target"] <= row["train_seconds"] + 0.05
    else:
        assert np.isnan(row["epochs_to_target"]) and np.isnan(row["seconds_to_target"])


def test_predict_answers_for_the_quick_runs_of_the_benchmark_sets(quick_runs, tmp_path):
    """zoo predict on runs of the recipes' own sets: the Playground's points from a CSV, digit images from files;
    its classes are model.predict's."""
    import keras
    from PIL import Image
    from sklearn.datasets import load_digits

    import zoo  # noqa: F401  (registers the zoo's layers for loading)

    folder, _ = quick_runs
    points = pd.DataFrame({"x1": [-4.0, 0.0, 3.0], "x2": [1.0, 0.0, -2.5]})
    points.to_csv(tmp_path / "points.csv", index=False)
    (run,) = (folder / "runs" / "mlp").glob("*-quick")
    result = run_cli("predict", str(run), str(tmp_path / "points.csv"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout)
    expected = np.argmax(keras.models.load_model(run / "model.keras").predict(points.to_numpy("float32"), verbose=0), -1)
    assert [answer["top"][0]["class"] for answer in answers] == [["negative", "positive"][index] for index in expected]
    digits = load_digits()
    paths = []
    for index in (0, 1, 2):
        paths.append(tmp_path / f"digit{index}.png")
        Image.fromarray(np.round(digits.images[index] * (255 / 16)).astype("uint8")).save(paths[-1])
    (run,) = (folder / "runs" / "cnn").glob("*-quick")
    result = run_cli("predict", str(run), *map(str, paths), "--top-k", "1", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    arrays = np.stack([np.asarray(Image.open(path), "float32")[..., None] for path in paths])
    expected = np.argmax(keras.models.load_model(run / "model.keras").predict(arrays, verbose=0), -1)
    assert [answer["top"][0]["class"] for answer in json.loads(result.stdout)] == [str(index) for index in expected]


def test_cnn_recipe_through_tfds_under_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "network_reachable", lambda: True)  # mock_data stands in for the download
    module = recipes.load("cnn")
    config = config_lib.make_config(module.config, epochs=1, batch_size=16, strategy="cpu", verbose=0,
                                    data_dir=str(tmp_path / "tfds"), output_dir=str(tmp_path / "run"),
                                    results_dir=str(tmp_path / "results"))
    with tfds.testing.mock_data(num_examples=64):
        row = train.run(module, config, command="test", log=lambda message: None)
    assert (row["dataset"], row["model"], row["epochs"]) == ("mnist", "mnist_convnet", 1)
    assert row["dataset_source"].startswith("tfds mnist")
    assert len(results.read_csv(tmp_path / "results" / "cnn.csv")) == 1


class Interrupt(Exception):
    pass


class InterruptAfterFirstEpoch(__import__("keras").callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise Interrupt()


class RecordEpochs(__import__("keras").callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=4, strategy="cpu", verbose=0, dataset="xor",
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    started = time.perf_counter()
    with pytest.raises(Interrupt):
        train.run(module, config, extra_callbacks=[InterruptAfterFirstEpoch()], log=lambda message: None)
    first_invocation = time.perf_counter() - started
    assert (tmp_path / "run" / "backup").is_dir()
    first_epoch = json.loads((tmp_path / "run" / "backup" / "zoo_training_seconds.json").read_text())
    assert first_epoch["epochs"] == 1 and 0 < first_epoch["seconds"] < first_invocation
    assert not (tmp_path / "results" / "mlp.csv").exists()
    recorder = RecordEpochs()
    messages = []
    row = train.run(module, config, extra_callbacks=[recorder], log=messages.append)
    assert recorder.epochs == [1, 2, 3]
    assert any("resuming from the checkpoint" in message for message in messages)
    assert row["epochs"] == 4
    # The row's time includes the interrupted invocation's epoch, and its speed all 4 epochs.
    assert row["train_seconds"] > first_epoch["seconds"]
    assert row["samples_per_second"] == pytest.approx(row["train_examples"] * 4 / row["train_seconds"], rel=0.01)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]


class InterruptAt(__import__("keras").callbacks.Callback):
    """Raise at the end of epoch ``epoch`` (1-based, after its checkpoint) or, with
    ``validating``, when that epoch's evaluation begins (before its history row and checkpoint)."""

    def __init__(self, epoch: int, validating: bool = False):
        super().__init__()
        self.epoch, self.validating, self.current = epoch, validating, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_test_begin(self, logs=None):
        if self.validating and self.current == self.epoch:
            raise Interrupt()

    def on_epoch_end(self, epoch, logs=None):
        if not self.validating and epoch + 1 == self.epoch:
            raise Interrupt()


def saved_model_score(tmp_path, module, config) -> float:
    """Test accuracy of the run's saved model on the whole held-out split."""
    import keras

    datasets = module.make_datasets(config)
    test = data.pipeline(datasets.test, datasets.num_test, 256, training=False, seed=config.seed)
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    return model.evaluate(test, verbose=0, return_dict=True)["accuracy"]


@pytest.mark.parametrize("interruption", ["during validation", "mid-save", "mid-save, epoch file"])
def test_a_run_interrupted_in_epoch_two_resumes_into_a_complete_history(interruption, tmp_path):
    """During validation: epoch 2 has neither its history row nor its checkpoint. Mid-save: a
    kill while Keras rewrites the latest checkpoint leaves it unreadable (here: cut off) and
    its previous copy whole; Keras falls back to that copy (epoch 1), and the history row and
    clock of epoch 2, written before the checkpoint, are cut back to match."""
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=3, strategy="cpu", verbose=0, dataset="xor",
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    interrupt = InterruptAt(2, validating=interruption == "during validation")
    with pytest.raises(Interrupt):
        train.run(module, config, extra_callbacks=[interrupt], log=lambda message: None)
    backup = tmp_path / "run" / "backup"
    if interruption.startswith("mid-save"):  # the weights cut off, or the epoch file Keras writes after them
        assert pd.read_csv(tmp_path / "run" / "history.csv")["epoch"].tolist() == [0, 1]
        latest = backup / ("latest.weights.h5" if interruption == "mid-save" else "training_metadata.json")
        latest.write_bytes(latest.read_bytes()[:7])
    recorder = RecordEpochs()
    row = train.run(module, config, extra_callbacks=[recorder], log=lambda message: None)
    assert recorder.epochs == [1, 2]  # epoch 2 again, from epoch 1's checkpoint
    assert row["epochs"] == 3
    assert pd.read_csv(tmp_path / "run" / "history.csv")["epoch"].tolist() == [0, 1, 2]
    assert row["test_accuracy"] == pytest.approx(saved_model_score(tmp_path, module, config), abs=1e-6)
    assert len(results.read_csv(tmp_path / "results" / "mlp.csv")) == 1


def test_a_run_killed_mid_epoch_resumes_to_the_saved_models_score(tmp_path):
    """SIGKILL in epoch 2 of 3 (batches of 2 make an epoch last seconds), then the same command."""
    import signal
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    command = [sys.executable, "-u", "-m", "recipes", "run", "cnn", "--quick", "--epochs", "3", "--batch-size", "2",
               "--output-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results")]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = first.stdout.readline()
            if not line or "Epoch 2/3" in line:
                break
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert pd.read_csv(tmp_path / "run" / "history.csv")["epoch"].tolist() == [0]
    second = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "resuming from the checkpoint" in second.stdout
    row = results.read_csv(tmp_path / "results" / "cnn.csv").iloc[0]
    assert row["epochs"] == 3 and pd.read_csv(tmp_path / "run" / "history.csv")["epoch"].tolist() == [0, 1, 2]
    module = recipes.load("cnn")
    config = config_lib.parse_overrides(module.config, ["--quick"], presets=module.presets)
    assert row["test_accuracy"] == pytest.approx(saved_model_score(tmp_path, module, config), abs=1e-6)
    assert row["test_accuracy"] * 450 == pytest.approx(round(row["test_accuracy"] * 450), abs=1e-3)  # whole split


def test_nan_loss_stops_with_a_clear_message_and_no_row(tmp_path):
    result = run_cli("run", "mlp", "--dataset", "reg_plane", "--activation", "linear", "--learning-rate", "1e6",
                     "--features", "x1,x2,x1_sq,x2_sq", "--epochs", "3", "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert_handled_failure(result, 1, "mlp", "loss became NaN at epoch 1", "Lower the learning rate (it was "
                                                                          "--learning-rate 1e+06)")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("recipe", ["mlp", "cnn"])
def test_quick_runs_with_mixed_precision_write_rows(recipe, tmp_path):
    result = run_cli("run", recipe, "--quick", "--mixed-precision", "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    row = results.read_csv(tmp_path / "results" / f"{recipe}.csv").iloc[0]
    assert row["mixed_precision"]
    check_quick_quality(recipe, row)


@pytest.mark.parametrize("recipe, options, where", [
    ("gan", ["--learning-rate", "1e30"], "epoch 1"),
    ("autoencoder", ["--learning-rate", "1e30"], "epoch 1"),  # the VAE's own train step
    ("finetune", ["--finetune-learning-rate", "1e30"], "epoch 3"),  # phase 2 (phase 1 ends at epoch 2)
])
def test_nan_loss_in_custom_train_steps_and_phases_on_two_replicas(recipe, options, where, tmp_path):
    result = run_cli("run", recipe, "--quick", *options, "--cpu-replicas", "2", "--results-dir",
                     str(tmp_path / "results"), "--output-dir", str(tmp_path / "run"))
    assert_handled_failure(result, 1, recipe, f"loss became NaN at {where}", f"{options[0]} 1e+30")
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "run" / "model.keras").exists() and not (tmp_path / "run" / "backup").exists()


def test_config_json_records_the_resolved_configuration(tmp_path):
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=1, strategy="cpu", verbose=0,
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    row = train.run(module, config, log=lambda message: None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["hidden_units"] == [4, 2] and saved["row"]["date"] == row["date"]


def test_validation_freq_evaluates_every_nth_and_the_last_epoch(tmp_path):
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=5, validation_freq=2, strategy="cpu", verbose=0,
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    assert train.validation_epochs(config) == [2, 4, 5]
    train.run(module, config, log=lambda message: None)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["val_loss"].notna().tolist() == [False, True, False, True, True]
    config.validation_freq = 0
    with pytest.raises(config_lib.ConfigError, match="--validation-freq must be at least 1, got 0"):
        train.validation_epochs(config)


def test_tracking_mlflow_logs_params_metrics_and_artifacts(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is an optional extra: pip install -e '.[mlflow]'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a plain folder store, no database needed
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=1, strategy="cpu", verbose=0, tracking="mlflow",
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    row = train.run(module, config, log=lambda message: None)
    runs = mlflow.search_runs(experiment_names=["mlp"], output_format="list")
    assert len(runs) == 1
    logged = runs[0].data
    assert logged.params["hidden_units"] == "(4, 2)" and logged.params["dataset"] == "circle"
    assert logged.metrics["test_accuracy"] == pytest.approx(row["test_accuracy"])
    logged_files = {item.path for item in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)}
    assert {"model.keras", "decision_boundary.png"} <= logged_files


def test_resuming_with_other_settings_is_refused(tmp_path):
    module = recipes.load("mlp")
    settings = dict(epochs=3, strategy="cpu", verbose=0, dataset="reg_plane", loss="mse",
                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    with pytest.raises(Interrupt):
        train.run(module, config_lib.make_config(module.config, **settings),
                  extra_callbacks=[InterruptAfterFirstEpoch()], log=lambda message: None)
    other = config_lib.make_config(module.config, **{**settings, "loss": "arctan"})
    with pytest.raises(train.ResumeError, match=r"other settings \(loss: 'mse' -> 'arctan'\)"):
        train.run(module, other, log=lambda message: None)
    # A checkpoint from before a config field existed resumes when the field is at its default.
    settings_path = tmp_path / "run" / "backup" / "zoo_settings.json"
    saved = json.loads(settings_path.read_text())
    del saved["learning_rate"]
    settings_path.write_text(json.dumps(saved))
    longer = config_lib.make_config(module.config, **{**settings, "epochs": 4})  # more epochs may resume
    assert train.run(module, longer, log=lambda message: None)["epochs"] == 4


def test_an_evaluation_whose_input_ends_early_writes_no_row(tmp_path):
    """Keras stops an evaluation whose input ends before its stated size with only a warning
    ("Your input ran out of data"); the metrics would be those of the batches it saw."""
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    examples = data.from_arrays(np.ones((80, 4), "float32"), np.zeros(80, "int64"))
    whole = data.pipeline(examples, 80, 10, training=False, seed=0)
    assert set(train.evaluate_whole(model, whole, 80, "model.keras")) == {"loss"}
    short = data.pipeline(examples.take(50), 50, 10, training=False, seed=0)
    short.cardinality = lambda: tf.constant(8, tf.int64)  # says 8 batches, holds 5
    with pytest.raises(data.DataError, match="saw 5 of the test split's 8 batches .* no results row was written"):
        train.evaluate_whole(model, short, 80, "model.keras")


@pytest.mark.parametrize("side_file", ["zoo_training_seconds.json", "zoo_settings.json"])
def test_a_side_file_cut_off_mid_write_gets_a_clear_message(side_file, tmp_path):
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=3, strategy="cpu", verbose=0,
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    with pytest.raises(Interrupt):
        train.run(module, config, extra_callbacks=[InterruptAfterFirstEpoch()], log=lambda message: None)
    path = tmp_path / "run" / "backup" / side_file
    path.write_text(path.read_text()[:7])
    with pytest.raises(train.ResumeError, match=f"{side_file} is truncated or not JSON.* Delete .*backup to start"):
        train.run(module, config, log=lambda message: None)
    assert not (tmp_path / "results").exists()


def test_a_checkpoint_cut_off_mid_write_gets_a_clear_message(tmp_path):
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=3, strategy="cpu", verbose=0,
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    with pytest.raises(Interrupt):
        train.run(module, config, extra_callbacks=[InterruptAfterFirstEpoch()], log=lambda message: None)
    backup = tmp_path / "run" / "backup"
    for weights in backup.glob("*.weights.h5*"):
        weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(train.ResumeError, match="cannot be read .* Delete .*backup to start the run over"):
        train.run(module, config, log=lambda message: None)
    assert not (tmp_path / "results").exists()


def quick_row_on_two_replicas(tmp_path, recipe: str, dataset: str, *options: str):
    """Run ``recipe --quick --dataset DATASET [OPTIONS]`` on 2 logical CPU replicas; return its results row."""
    result = run_cli("run", recipe, "--quick", "--dataset", dataset, *options, "--cpu-replicas", "2",
                     "--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "strategy=mirrored replicas=2" in result.stdout
    return results.read_csv(tmp_path / "results" / f"{recipe}.csv").iloc[0]


def check_language_model_run(tmp_path, recipe: str, row) -> None:
    """A quick language model beat chance, sampled in its vocabulary and published the excerpt."""
    vocabulary = json.loads((tmp_path / "run" / "vocabulary.json").read_text())["chars"]
    # Chance is ln(vocabulary size) nats per character; a quick run must be clearly below it.
    assert row["test_loss"] < np.log(len(vocabulary)) - 0.8, row["test_loss"]
    assert row["tokens_per_second"] > 0
    sample = (tmp_path / "run" / "samples.txt").read_text().split("\n", 1)[1]
    assert set(sample) <= set(vocabulary) | {"\n"}
    assert (tmp_path / "results" / recipe / pictures.published_name(row, "sample.txt")).exists()


@pytest.mark.parametrize("dataset", ["sklearn_docs", "co2"])
def test_rnn_quick_language_model_and_forecast_on_two_replicas(dataset, tmp_path):
    row = quick_row_on_two_replicas(tmp_path, "rnn", dataset)
    assert row["dataset"] == dataset
    if dataset == "sklearn_docs":
        check_language_model_run(tmp_path, "rnn", row)
    else:
        # The forecaster must beat the last-value forecast on the same held-out windows.
        assert row["test_mae"] < 0.8 * row["naive_mae"], (row["test_mae"], row["naive_mae"])
        assert row["test_rmse"] < row["naive_rmse"]
        assert (tmp_path / "results" / "rnn" / pictures.published_name(row, "forecast.png")).exists()


def test_rnn_sentiment_through_tfds_under_mock_data(tmp_path, monkeypatch):
    import keras

    monkeypatch.setattr(data, "network_reachable", lambda: True)  # mock_data stands in for the download
    module = recipes.load("rnn")
    config = config_lib.make_config(module.config, dataset="imdb_reviews", epochs=1, units=(8,), vocab_size=200,
                                    sequence_length=16, strategy="cpu", verbose=0, data_dir=str(tmp_path / "tfds"),
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    with tfds.testing.mock_data(num_examples=64):
        row = train.run(module, config, command="test", log=lambda message: None)
    assert (row["dataset"], row["model"], row["epochs"]) == ("imdb_reviews", "imdb_bilstm-8", 1)
    text_model = keras.models.load_model(tmp_path / "run" / "text_model.keras")
    assert text_model.predict(np.array(["a review in words"], dtype=object), verbose=0).shape == (1, 2)


def test_rnn_bad_sequence_settings_exit_with_a_clear_message(tmp_path):
    result = run_cli("run", "rnn", "--dataset", "sunspots", "--sequence-length", "400", "--output-dir",
                     str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"))
    assert_handled_failure(result, 1, "rnn", "sunspots has 309 values: too few for windows of 400 + 12")
    assert not (tmp_path / "results").exists()
    result = run_cli("run", "rnn", "--dataset", "co2", "--model", "resnet20", "--output-dir", str(tmp_path / "run"))
    assert_handled_failure(result, 2, "rnn", "--model resnet20 does not fit the forecast task")


@pytest.mark.parametrize("dataset", ["sklearn_docs", "digits"])
def test_transformer_quick_gpt_and_vit_on_two_replicas(dataset, tmp_path):
    row = quick_row_on_two_replicas(tmp_path, "transformer", dataset)
    assert row["dataset"] == dataset and row["depth"] == 2 and row["flops_per_example"] > 0
    assert row["tokens_per_second"] > 0
    if dataset == "sklearn_docs":
        check_language_model_run(tmp_path, "transformer", row)
    else:
        assert row["patch_size"] == 2 and row["test_accuracy"] > 0.6, row["test_accuracy"]


def test_transformer_sentiment_through_tfds_under_mock_data(tmp_path, monkeypatch):
    import keras

    monkeypatch.setattr(data, "network_reachable", lambda: True)  # mock_data stands in for the download
    module = recipes.load("transformer")
    config = config_lib.make_config(module.config, dataset="imdb_reviews", epochs=1, model="transformer_classifier_tiny",
                                    vocab_size=200, sequence_length=16, strategy="cpu", verbose=0,
                                    data_dir=str(tmp_path / "tfds"), output_dir=str(tmp_path / "run"),
                                    results_dir=str(tmp_path / "results"))
    with tfds.testing.mock_data(num_examples=64):
        row = train.run(module, config, command="test", log=lambda message: None)
    assert (row["dataset"], row["model"], row["epochs"]) == ("imdb_reviews", "transformer_classifier_tiny", 1)
    assert row["flops_per_example"] > 0 and row["tokens_per_second"] > 0
    text_model = keras.models.load_model(tmp_path / "run" / "text_model.keras")
    assert text_model.predict(np.array(["a review in words"], dtype=object), verbose=0).shape == (1, 2)


def test_transformer_bad_settings_exit_with_a_clear_message(tmp_path):
    module = recipes.load("transformer")
    with pytest.raises(config_lib.ConfigError, match=r"--dropout must be in \[0, 1\); got 1.5"):
        config_lib.make_config(module.config, quick=True, dropout=1.5)
    assert config_lib.make_config(module.config, dropout=0.0).dropout == 0.0  # 0 is kept, not the default
    assert config_lib.make_config(module.config).dropout == 0.1
    config = config_lib.make_config(module.config, quick=True, dataset="sklearn_docs", patch_size=4)
    with pytest.raises(config_lib.ConfigError, match="--patch-size applies to the Vision Transformer"):
        module.build_model(config, module.make_datasets(config), None)
    # End to end: a model made for another task exits 2 with the reason and writes no row.
    result = run_cli("run", "transformer", "--quick", "--dataset", "digits", "--model", "char_gpt_tiny",
                     "--output-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"))
    assert_handled_failure(result, 2, "transformer", "--model char_gpt_tiny does not fit the image task")
    assert not (tmp_path / "results").exists()
