"""Clocks across interruptions: the time budget (the fine-tune baseline's) resumes with its
weights, optimizer state and used time, counts every batch, and the stopwatch adds up
interrupted invocations."""

import os

import numpy as np
import pytest

import keras
from recipes.runtime import clocks


def images(shape, batch=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape)).astype("uint8")


@pytest.mark.parametrize("save_seconds, stop_at, saved_steps, resumed_epochs", [
    (None, (2, 0), 8, [2, 3]),  # saved at epoch ends only: goes on at the next epoch
    (1e-9, (1, 2), 6, [1, 2, 3]),  # saved after every batch: the interrupted epoch starts over
])
def test_an_interrupted_baseline_resumes_with_its_weights_and_the_budget_it_had_used(
        tmp_path, save_seconds, stop_at, saved_steps, resumed_epochs):
    """The scratch baseline's clock, weights, optimizer state and epoch are saved together: a
    restart in a new process (a new model) continues all of them."""
    x, y = images((8, 8, 1), batch=64).astype("float32") / 255, np.arange(64) % 10

    def model():
        network = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        network.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return network

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if (self.epoch, batch) == stop_at:
                self.weights = [np.array(weight) for weight in self.model.weights]
                raise KeyboardInterrupt

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    class Restored(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = [np.array(weight) for weight in self.model.weights]
            self.iterations = int(self.model.optimizer.iterations)

    backup = str(tmp_path / "scratch")
    budget, interrupt = clocks.time_budget(1e6, "cpu_seconds", backup, save_seconds), Interrupt()
    with pytest.raises(KeyboardInterrupt):
        model().fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[budget, interrupt])
    resumed, restored = clocks.time_budget(1e6, "cpu_seconds", backup, save_seconds), Restored()
    assert resumed.steps == saved_steps and resumed.initial_epoch == resumed_epochs[0]
    assert resumed.used["cpu_seconds"] > 0 and resumed.used["seconds"] > 0
    history = model().fit(x, y, batch_size=16, epochs=4, initial_epoch=resumed.initial_epoch, verbose=0,
                          callbacks=[resumed, restored])
    for saved, loaded in zip(interrupt.weights, restored.weights):
        np.testing.assert_array_equal(saved, loaded)  # the weights where it stopped, not a new start
    assert restored.iterations == saved_steps  # Adam's state came back too
    assert history.epoch == resumed_epochs and resumed.steps == saved_steps + 4 * len(resumed_epochs)
    assert not os.path.exists(backup)  # finished: a new start begins anew


def test_the_budget_counts_every_batch_with_steps_per_execution():
    x, y = images((8, 8, 1), batch=64).astype("float32") / 255, np.arange(64) % 10
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=2)
    lines = []
    budget = clocks.time_budget(1e6, "cpu_seconds", log=lines.append, log_seconds=1e6)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[budget])
    assert budget.steps == 8 == int(model.optimizer.iterations)
    assert len(lines) == 2 and "end of epoch 2, 8 steps, loss " in lines[1], lines  # each epoch's end, with metrics
    assert "of 1000000 CPU seconds (0%) used" in lines[1], lines
    lines.clear()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0,
              callbacks=[clocks.time_budget(1e6, "cpu_seconds", log=lines.append, log_seconds=0)])
    # and in between, at each callback: every second batch with steps_per_execution=2
    assert [line.split(", ")[1:3] for line in lines] == [["in epoch 1", "2 steps"], ["in epoch 1", "4 steps"],
                                                         ["end of epoch 1", "4 steps"]], lines
    assert all(", loss " in line for line in lines), lines  # in an epoch too: its running loss
    lines.clear()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[clocks.time_budget(1e-9, log=lines.append)])
    assert len(lines) == 1 and ", budget spent in epoch 1, 2 steps, loss " in lines[0], lines  # stopped at once


def test_stopwatch_adds_an_interrupted_invocation_s_time(tmp_path):
    path = str(tmp_path / "phase_time.json")
    with clocks.stopwatch(path):
        sum(range(2_000_000))  # CPU time to measure
    first = clocks.read_time(path)
    assert first["seconds"] > 0 and first["cpu_seconds"] > 0
    with pytest.raises(KeyboardInterrupt), clocks.stopwatch(path):
        raise KeyboardInterrupt  # an interruption saves nothing: its epoch is redone
    assert clocks.read_time(path) == first
    with clocks.stopwatch(path):
        sum(range(2_000_000))
    second = clocks.read_time(path)
    assert second["seconds"] > first["seconds"] and second["cpu_seconds"] > first["cpu_seconds"]
