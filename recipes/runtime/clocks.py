"""Clocks that survive interruptions: a stopwatch for a block of work, and a time budget
that stops training once a wall or CPU clock has run for a given time, both adding the time
of earlier, interrupted invocations (saved beside the run's checkpoint). The fine-tune's
from-scratch baseline trains for as long as the fine-tune took, on these clocks. And the time
a run took to reach its recipe's target, from its history and its epochs' seconds.
"""

from __future__ import annotations

import os
import shutil
import time

from recipes.runtime import cluster, files


def now() -> dict:
    """Both clocks: wall seconds, and this process's CPU seconds (every thread's)."""
    return {"seconds": time.perf_counter(), "cpu_seconds": time.process_time()}


def time_budget(seconds: float, clock: str = "seconds", backup_dir: str | None = None,
                save_seconds: float | None = None, log=None, log_seconds: float = 600):
    """A callback stopping training once ``clock`` (wall ``seconds`` or ``cpu_seconds``) has
    advanced by ``seconds`` (checked after every batch). On a CPU the fine-tune and its baseline
    are compared in CPU seconds: other work sharing the cores then slows either without
    shrinking or stretching its budget. ``steps`` counts the batches trained, also when
    ``steps_per_execution`` runs several between two callbacks.

    With ``backup_dir`` the run resumes: the model's weights with the optimizer's state, the
    time and steps used and the epoch are saved there together, at every epoch's end and (with
    ``save_seconds``) whenever that many wall seconds have passed since the last save. A new
    budget on the same directory restores the weights when training begins and goes on with the
    budget that was left; pass ``initial_epoch=budget.initial_epoch`` to ``fit``. A save in the
    middle of an epoch resumes at that epoch's first batch, with the data's order started over:
    an interrupted baseline trains on part of the data once more than an uninterrupted one
    would, within the same budget (``steps`` and the time are what was really trained). When
    training ends the directory is deleted, so a later start begins anew.

    With ``log`` (a function taking a line) it reports the share of the budget used, the
    epoch and the steps every ``log_seconds`` of wall time and at every epoch's end, with the
    training metrics (in an epoch, its running averages so far): a baseline may run for hours
    without other output (a from-scratch epoch of MobileNetV2 at 192 px takes about two hours
    of 2 CPU cores)."""
    import keras

    class TimeBudget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.saved = saved_budget(backup_dir)
            state = {"seconds": 0.0, "cpu_seconds": 0.0, "steps": 0, "epoch": 0}
            if self.saved:
                state.update(files.read_json(os.path.join(self.saved, "state.json")))
            self.steps, self.initial_epoch = state.pop("steps"), state.pop("epoch")
            self.before = self.used = state

        def on_train_begin(self, logs=None):
            if self.saved:
                if not self.model.optimizer.built:
                    self.model.optimizer.build(self.model.trainable_variables)
                self.model.load_weights(os.path.join(self.saved, "model.weights.h5"))
            self.start = self.saved_at = self.logged_at = now()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.last_batch = epoch, -1

        def on_train_batch_end(self, batch, logs=None):
            self.steps, self.last_batch = self.steps + batch - self.last_batch, batch
            current = now()
            self.used = {name: self.before[name] + value - self.start[name] for name, value in current.items()}
            # Every worker of a cluster stops at the same step: the first one out of budget decides.
            if cluster.any_worker(self.model.distribute_strategy, self.used[clock] >= seconds):
                self.model.stop_training = True
            elif save_seconds and current["seconds"] - self.saved_at["seconds"] >= save_seconds:
                self.save(self.epoch)  # resumes at this epoch's first batch
            if log and current["seconds"] - self.logged_at["seconds"] >= log_seconds:
                self.progress(f"in epoch {self.epoch + 1}", logs, at=current)  # the epoch's running metrics

        def progress(self, where, logs=None, at=None):
            """One line to ``log``; ``at``: the clocks the caller already read."""
            self.logged_at = at or now()
            metrics = "".join(f", {name} {value:.4f}" for name, value in (logs or {}).items())
            unit = "CPU seconds" if clock == "cpu_seconds" else "seconds"
            log(f"{self.used[clock]:.0f} of {seconds:.0f} {unit} ({self.used[clock] / seconds:.0%}) used, "
                f"{where}, {self.steps} steps{metrics}")

        def on_epoch_end(self, epoch, logs=None):
            self.save(epoch + 1)
            if log:
                where = "budget spent in" if self.model.stop_training else "end of"
                self.progress(f"{where} epoch {epoch + 1}", logs, at=self.saved_at)  # save() just read them

        def save(self, epoch):
            """Written to ``next``, then swapped in for ``latest``: an interruption leaves one whole state."""
            self.saved_at = now()
            if not backup_dir:
                return
            latest, new, old = (os.path.join(backup_dir, name) for name in ("latest", "next", "previous"))
            shutil.rmtree(new, ignore_errors=True)
            os.makedirs(new)
            self.model.save_weights(os.path.join(new, "model.weights.h5"))
            files.write_json(os.path.join(new, "state.json"), {**self.used, "steps": self.steps, "epoch": epoch})
            if os.path.exists(latest):
                os.replace(latest, old)
            os.replace(new, latest)
            shutil.rmtree(old, ignore_errors=True)

        def on_train_end(self, logs=None):
            if backup_dir:
                shutil.rmtree(backup_dir, ignore_errors=True)

    return TimeBudget()


def saved_budget(backup_dir: str | None) -> str | None:
    """The directory holding the state a ``time_budget`` saved in ``backup_dir`` (None when none):
    ``latest``, or ``previous`` when an interruption came between the two renames of a save."""
    for name in ("latest", "previous"):
        if backup_dir and os.path.exists(os.path.join(backup_dir, name, "state.json")):
            return os.path.join(backup_dir, name)
    return None


def read_time(path: str) -> dict:
    """The seconds a ``stopwatch`` saved at ``path``; zero when none was saved."""
    if os.path.exists(path):
        return files.read_json(path)
    return {"seconds": 0.0, "cpu_seconds": 0.0}


def stopwatch(path: str):
    """Wall and CPU seconds spent inside ``with`` (saved at every epoch end when it is also a
    fit callback), added to what ``path`` holds from earlier, interrupted invocations."""
    import keras

    class Stopwatch(keras.callbacks.Callback):
        def __enter__(self):
            self.before, self.start = read_time(path), now()
            return self

        @property
        def total(self) -> dict:
            return {name: self.before[name] + value - self.start[name] for name, value in now().items()}

        def save(self):
            files.write_json(path, self.total)

        def on_epoch_end(self, epoch, logs=None):
            self.save()

        def __exit__(self, error_type, error, traceback):
            if error_type is None:
                self.save()

    return Stopwatch()


def time_to_target(history_csv: str, epoch_seconds: list[float], target: tuple) -> dict:
    """The row's ``target``, ``epochs_to_target`` and ``seconds_to_target`` columns: the first
    epoch whose evaluation (``history.csv``; epochs that skipped it do not count) reached
    ``target`` = (column, ">=" or "<=", value), and the wall seconds of the epochs up to it
    (``epoch_seconds``: the run's clock, resumed invocations included; an epoch's seconds
    include its evaluation). Not reached: NaN in both. Compared within 1e-6 (float32 logs)."""
    import math

    import pandas as pd

    column, direction, value = target
    found = {"target": f"{column.removeprefix('val_')} {direction} {value:g}",
             "epochs_to_target": math.nan, "seconds_to_target": math.nan}
    history = pd.read_csv(history_csv) if os.path.exists(history_csv) else pd.DataFrame()
    if column not in history:
        return found
    # Within float32's rounding: Keras logs 9920 right of 10000 as 0.99199998, which is 0.992.
    reached = history[column] >= value - 1e-6 if direction == ">=" else history[column] <= value + 1e-6
    if reached.any():
        epoch = int(history.loc[reached.idxmax(), "epoch"]) + 1  # 1-based: epochs trained when it was reached
        if len(epoch_seconds) >= epoch:
            found.update(epochs_to_target=epoch, seconds_to_target=round(sum(epoch_seconds[:epoch]), 2))
    return found


def describe_target(metrics: dict) -> str:
    """``time_to_target``'s columns for the run's last line ("" without a target)."""
    if "target" not in metrics:
        return ""
    if metrics["epochs_to_target"] != metrics["epochs_to_target"]:  # NaN
        return f"; {metrics['target']} not reached"
    return f"; {metrics['target']} after {metrics['epochs_to_target']} epoch(s), {metrics['seconds_to_target']:.1f}s"

