"""Shared timing for the CPU speed benchmarks: one Keras ``fit`` variant, one plain
PyTorch training loop, each timed after a warm-up that pays for tracing and compilation."""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf


def keras_fit_speed(model: keras.Model, inputs: np.ndarray, targets: np.ndarray, batch: int, steps: int, loss,
                    use_tf_data: bool = False, jit_compile: bool = False, steps_per_execution: int = 1) -> float:
    """Examples per second of ``model.fit`` over ``steps`` batches (Adam), after a warm-up fit."""
    model.compile(optimizer="adam", loss=loss, jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    count = batch * steps
    if use_tf_data:
        data = tf.data.Dataset.from_tensor_slices((inputs[:count], targets[:count])).cache().batch(batch)
        data = data.prefetch(tf.data.AUTOTUNE)
        model.fit(data.take(max(2, steps_per_execution)), verbose=0)
        start = time.perf_counter()
        model.fit(data, verbose=0)
    else:
        model.fit(inputs[:batch * 2], targets[:batch * 2], batch_size=batch, verbose=0)
        start = time.perf_counter()
        model.fit(inputs[:count], targets[:count], batch_size=batch, verbose=0)
    return count / (time.perf_counter() - start)


def torch_train_speed(model, inputs: np.ndarray, targets: np.ndarray, batch: int, steps: int) -> float:
    """Examples per second of a plain PyTorch loop (Adam, cross-entropy over the last axis)."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x_all, y_all = torch.from_numpy(inputs.astype("int64")), torch.from_numpy(targets.astype("int64"))

    def train(count_steps):
        for step in range(count_steps):
            x, y = x_all[step * batch:(step + 1) * batch], y_all[step * batch:(step + 1) * batch]
            optimizer.zero_grad()
            logits = model(x)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
            optimizer.step()

    train(2)
    start = time.perf_counter()
    train(steps)
    return batch * steps / (time.perf_counter() - start)


# The Keras variants both sequence benchmarks compare with the plain ``fit`` baseline.
VARIANTS = [("fit on NumPy arrays (baseline)", {}),
            ("tf.data pipeline", {"use_tf_data": True}),
            ("tf.data + steps_per_execution=8", {"use_tf_data": True, "steps_per_execution": 8}),
            ("tf.data + XLA", {"use_tf_data": True, "jit_compile": True})]


def random_windows(vocab: int, count: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Random token windows and targets: what the characters say does not change the speed."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocab, (count, length)).astype("int32")
    return ids, rng.integers(0, vocab, ids.shape).astype("int32")


def print_table(variants, measure, torch_measure, unit: str = "chars/s") -> None:
    """Time each ``(name, options)`` with ``measure(**options)``, then the PyTorch reference
    (``torch_measure()``, None when PyTorch is missing); print speeds and ratios to the first."""
    baseline = None
    print(f"{'variant':40s} {unit:>10s} {'ratio':>7s}")
    for name, options in variants:
        speed = measure(**options)
        baseline = baseline or speed
        print(f"{name:40s} {speed:10.0f} {speed / baseline:6.2f}x", flush=True)
    speed = torch_measure()
    if speed:
        import torch
        print(f"{'plain PyTorch ' + torch.__version__:40s} {speed:10.0f} {speed / baseline:6.2f}x")


def interleaved_rounds(runners: dict, rounds: int) -> dict:
    """``{name: [(wall seconds, CPU seconds), ...]}`` of calling each runner once per round, the
    runners taking turns, so other work on a shared machine slows them alike."""
    results = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            results[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return results


def print_rounds(results: dict, count: int, unit: str) -> None:
    """Median ``count``-per-second speed over rounds (and range) per second of wall time and of
    this process's CPU time, with ratios to the first runner."""
    first = None
    print(f"{'variant':38s} {unit + ' (range)':>24s} {'ratio':>6s} {'per CPU-s':>10s} {'ratio':>6s}")
    for name, times in results.items():
        walls, cpus = [count / wall for wall, _ in times], [count / cpu for _, cpu in times]
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        first = first or (wall, cpu)
        print(f"{name:38s} {wall:8.0f} ({min(walls):6.0f}-{max(walls):6.0f}) {wall / first[0]:5.2f}x "
              f"{cpu:10.0f} {cpu / first[1]:5.2f}x", flush=True)


def add_round_options(parser, rounds: int = 3) -> None:
    """The options both interleaved benchmarks share: rounds, threads, no PyTorch."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--threads", type=int, default=0, help="intra- and inter-op threads; 0: the defaults")
    parser.add_argument("--no-torch", action="store_true")


def set_threads(threads: int) -> None:
    """TensorFlow's intra- and inter-op threads (PyTorch's are set where it is imported); 0 keeps the defaults."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
