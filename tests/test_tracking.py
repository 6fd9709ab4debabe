"""``--tracking wandb``: a real offline run, read back from the record log W&B writes (``run-<id>.wandb``),
and the message when the package is missing. (The MLflow test is in test_recipes.py.)"""

from __future__ import annotations

import glob
import json
import math
import os
import struct
import sys

import keras
import pandas as pd
import pytest

import recipes
from recipes.__main__ import run_one
from recipes.runtime import config as config_lib
from recipes.runtime import train


def offline_runs(wandb_folder, wait: float = 30.0) -> list[dict]:
    """Every offline run under a ``wandb`` folder, in start order. W&B's writer process can still be
    flushing a run's records after ``finish`` returns on a loaded machine (seen once in a full suite:
    no run record yet), so this reads again for up to ``wait`` seconds until each run has its start and exit."""
    import time

    deadline = time.monotonic() + wait
    while True:
        runs = [read_offline_run(folder) for folder in glob.glob(os.path.join(wandb_folder, "offline-run-*"))]
        if all("start" in run and run["exit_code"] is not None for run in runs) or time.monotonic() > deadline:
            return sorted(runs, key=lambda run: run.get("start", 0))
        time.sleep(0.5)


def wandb_records(path: str):
    """The records of a ``.wandb`` file: W&B's 7-byte header, then LevelDB's log format (32 KiB
    blocks of chunks, each with a 7-byte header: checksum, length, type full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B", data[:7]
    block, position, pending = 32768, 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:  # zeros: the rest of the block is padding
            position += block - position % block
            continue
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def read_offline_run(run_folder: str) -> dict:
    """Config, per-step history, summary and logged files of one offline run folder."""
    (path,) = glob.glob(os.path.join(run_folder, "run-*.wandb"))
    run = {"config": {}, "history": [], "summary": {}, "files": set(), "exit_code": None}

    def items(updates):
        return {(update.key or ".".join(update.nested_key)): json.loads(update.value_json) for update in updates}

    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(id=record.run.run_id, project=record.run.project, name=record.run.display_name,
                       start=record.run.start_time.ToNanoseconds())
            run["config"].update(items(record.run.config.update))
        elif kind == "config":
            run["config"].update(items(record.config.update))
        elif kind == "history":
            run["history"].append(items(record.history.item))
        elif kind == "summary":
            run["summary"].update(items(record.summary.update))
        elif kind == "files":
            run["files"].update(file.path for file in record.files.files)
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B offline, its settings and caches under tmp_path, and the cwd an empty folder."""
    pytest.importorskip("wandb", reason="wandb is an optional extra: pip install -e '.[wandb]'")
    for name in ("WANDB_DIR", "WANDB_PROJECT", "WANDB_API_KEY", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def test_tracking_wandb_logs_config_epochs_summary_and_pictures(offline_wandb, monkeypatch):
    tmp_path = offline_wandb
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=3, validation_freq=2, strategy="cpu", verbose=0,
                                    tracking="wandb", output_dir=str(tmp_path / "run"),
                                    results_dir=str(tmp_path / "results"))
    row = train.run(module, config, log=lambda message: None)

    (run,) = offline_runs(tmp_path / "wandb-dir" / "wandb")
    assert run["project"] == "zoo-mlp" and run["name"] == "playground-circle" and run["exit_code"] == 0
    assert run["config"]["hidden_units"] == [4, 2] and run["config"]["dataset"] == "circle"
    assert run["config"]["tracking"] == "wandb" and run["config"]["epochs"] == 3

    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert [step["_step"] for step in run["history"]] == history["epoch"].tolist() == [0, 1, 2]
    for step, (_, epoch) in zip(run["history"], history.iterrows()):
        assert step["loss"] == pytest.approx(epoch["loss"], rel=1e-5)
        # Epochs without validation (--validation-freq 2) log no val_ placeholder.
        assert ("val_loss" in step) == (not math.isnan(epoch["val_loss"]))
        if "val_loss" in step:
            assert step["val_accuracy"] == pytest.approx(epoch["val_accuracy"], rel=1e-5)

    assert run["summary"]["test_accuracy"] == pytest.approx(row["test_accuracy"])
    assert run["summary"]["params"] == row["params"] and run["summary"]["commit"] == row["commit"]
    # The mlp adds network.png and loss.png; the latter is logged as loss_picture, beside the loss metric.
    pictures = {"curves", "confusion_matrix", "decision_boundary", "network", "loss_picture"}
    assert {key.split(".")[0] for key in run["history"][-1] if key.endswith("._type")} == pictures
    logged = {os.path.basename(path).split("_2_")[0] for path in run["files"] if path.startswith("media/images/")}
    assert logged == pictures  # W&B names each copy <key>_<step>_<hash>.png
    assert not os.listdir(tmp_path / "cwd")
    assert not glob.glob(str(tmp_path / "run" / "wandb"))  # WANDB_DIR was set: nothing W&B's in the run folder


class Interrupt(Exception):
    pass


class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise Interrupt()


def test_a_resumed_run_continues_its_wandb_run_under_the_run_folder(offline_wandb):
    tmp_path = offline_wandb
    module = recipes.load("mlp")
    settings = dict(epochs=3, strategy="cpu", verbose=0, tracking="wandb", output_dir=str(tmp_path / "run"),
                    results_dir=str(tmp_path / "results"))
    with pytest.raises(Interrupt):
        train.run(module, config_lib.make_config(module.config, **settings),
                  extra_callbacks=[InterruptAfterFirstEpoch()], log=lambda message: None)
    train.run(module, config_lib.make_config(module.config, **settings), log=lambda message: None)

    # No WANDB_DIR: the files are in the run folder, one offline folder per invocation, in start order.
    first, second = offline_runs(tmp_path / "run" / "wandb")
    assert first["id"] == second["id"] and (first["exit_code"], second["exit_code"]) == (1, 0)
    assert [step["_step"] for step in first["history"]] == [0]
    assert [step["_step"] for step in second["history"]] == [1, 2]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert [step["loss"] for step in first["history"] + second["history"]] == pytest.approx(history["loss"].tolist(), rel=1e-5)
    assert not os.listdir(tmp_path / "cwd")
    assert not os.path.exists(tmp_path / "run" / "backup")  # the id went with the finished run's checkpoint

    # A fresh run in the same folder is a new W&B run.
    train.run(module, config_lib.make_config(module.config, **settings), log=lambda message: None)
    third = offline_runs(tmp_path / "run" / "wandb")[-1]
    assert third["id"] != first["id"] and [step["_step"] for step in third["history"]] == [0, 1, 2]


def test_tracking_wandb_without_the_package_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    module = recipes.load("mlp")
    config = config_lib.make_config(module.config, epochs=1, strategy="cpu", verbose=0, tracking="wandb",
                                    output_dir=str(tmp_path / "run"), results_dir=str(tmp_path / "results"))
    assert run_one(module, config, "zoo run mlp --tracking wandb") == 2
    error = capsys.readouterr().err
    assert "--tracking wandb needs wandb: pip install -e '.[wandb]'" in error and "Traceback" not in error
    assert not os.path.exists(tmp_path / "run")  # stopped before any training
