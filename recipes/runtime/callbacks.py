"""The callbacks of a training run: its clock, its checkpoint, its NaN guard, and the
bookkeeping that keeps a resumed run's history and time whole (``train.run`` puts them in
order: the checkpoint restores first and saves after the epoch's history row and clock).
"""

from __future__ import annotations

import math
import os
import shutil
import time

import keras

from recipes.runtime import files


class ResumeError(RuntimeError):
    """An interrupted run's checkpoint cannot be resumed with these settings."""


def read_side_file(path: str, backup_dir: str):
    """A checkpoint's JSON side file; ResumeError naming it and the fix when it is cut off."""
    try:
        return files.read_json(path)
    except files.SideFileError:
        raise ResumeError(f"{path} is truncated or not JSON: it was probably cut off while being written. "
                          f"Delete {backup_dir} to start the run over.") from None


class HistoryCSV(keras.callbacks.CSVLogger):
    """``history.csv``: Keras's CSVLogger, with empty (NaN) ``val_*`` entries on epochs that
    skip validation (``--validation-freq``), since CSVLogger fixes its columns at the first
    epoch and would drop the later ones. The placeholders go into the file only: the logs that
    the progress line, History and the trackers read keep what the epoch measured."""

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        for key in [key for key in logs if not key.startswith("val_") and key != "learning_rate"]:
            logs.setdefault(f"val_{key}", float("nan"))
        super().on_epoch_end(epoch, logs)


class TrainingClock(keras.callbacks.Callback):
    """Keep the training seconds of every finished epoch beside the checkpoint, so a
    resumed run's row counts the time of the interrupted invocations too.

    ``previous``: the seconds of each epoch the interrupted invocations finished (a checkpoint
    from before the per-epoch list holds one total); ``restore_to(epoch)`` drops the epochs a
    checkpoint fallen back to an earlier epoch does not have."""

    def __init__(self, path: str, previous: list[float]):
        super().__init__()
        self.path, self.epoch_seconds = path, list(previous)
        self.epoch_start = time.perf_counter()

    def elapsed(self) -> float:
        return sum(self.epoch_seconds) + time.perf_counter() - self.epoch_start

    def restore_to(self, epoch: int) -> None:
        if len(self.epoch_seconds) > epoch:
            self.epoch_seconds = self.epoch_seconds[:epoch]

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.epoch_seconds.append(now - self.epoch_start)
        self.epoch_start = now
        if os.path.isdir(os.path.dirname(self.path)):
            files.write_json(self.path, {"seconds": sum(self.epoch_seconds), "epochs": epoch + 1,
                                         "epoch_seconds": self.epoch_seconds})


class Checkpoint(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore (with the previous epoch's copy, for a run killed mid-save),
    kept consistent with the run's history and clock.

    It saves after the callbacks that write an epoch's history row and clock, so a kill between
    them leaves those ahead of the checkpoint, never behind. It restores before them, through
    ``restorer`` (first in the callback list): Keras falls back to the previous copy when the
    latest is unreadable (and so does this one when the latest epoch file is), and ``history.csv``
    and the clock are then cut back to the epoch it restored, so no epoch is counted twice."""

    def __init__(self, backup_dir: str, history_csv: str, clock: TrainingClock):
        super().__init__(backup_dir, double_checkpoint=True)
        self.history_csv, self.clock = history_csv, clock
        self.restorer = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: self.restore())

    def on_train_begin(self, logs=None):
        pass  # done by ``restorer``, before the history's and the clock's callbacks begin

    def restore(self) -> None:
        metadata = self._training_metadata_path
        if os.path.exists(metadata):
            try:
                files.read_json(metadata)
            except files.SideFileError:
                # Keras writes the epoch file after the weights, in place: a kill there leaves it cut off,
                # and Keras falls back to the previous copy only for unreadable weights. Do the same here.
                if not (os.path.exists(self._prev_weights_path) and os.path.exists(self._prev_training_metadata_path)):
                    raise ResumeError(f"{metadata} is truncated or not JSON and there is no previous copy: "
                                      f"delete {self.backup_dir} to start the run over.") from None
                shutil.copyfile(self._prev_weights_path, self._weights_path)
                shutil.copyfile(self._prev_training_metadata_path, metadata)
        super().on_train_begin()
        epoch = int(read_side_file(metadata, self.backup_dir)["epoch"]) if os.path.exists(metadata) else 0
        self.clock.restore_to(epoch)
        if os.path.exists(self.history_csv) and os.path.getsize(self.history_csv):
            import pandas as pd

            history = pd.read_csv(self.history_csv)
            if len(history) and history["epoch"].max() >= epoch:
                files.write_text(self.history_csv, history[history["epoch"] < epoch].to_csv(index=False, na_rep="nan"))


class StopOnNaN(keras.callbacks.Callback):
    """Stop at the first non-finite training loss (``loss``, or any ``*_loss`` a custom
    ``train_step`` logs, such as a GAN's ``d_loss``) and remember where it happened."""

    def __init__(self):
        super().__init__()
        self.where = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        losses = [value for name, value in (logs or {}).items() if name == "loss" or name.endswith("_loss")]
        if any(not math.isfinite(float(loss)) for loss in losses):
            self.where = f"epoch {self.epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True


class CountBatches(keras.callbacks.Callback):
    """The batches an ``evaluate`` went through (steps, also with ``steps_per_execution``)."""

    def on_test_begin(self, logs=None):
        self.batches = 0

    def on_test_batch_end(self, batch, logs=None):
        self.batches = batch + 1
