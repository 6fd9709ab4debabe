"""``zoo bench``: each family's headline model trained three ways on the same batches, as ratios.

    zoo bench all                 # every family below (make bench); rows go to results/benchmarks.csv
    zoo bench char_lstm --steps 10 --repeats 5
    zoo bench dcgan --tiny        # the smoke test's shapes: bundled data, seconds

The three ways train the same network on the same batches for the same number of steps:

- ``recipe``: as ``zoo run`` trains it: the recipe's ``make_datasets``, its tf.data pipeline
  (cache, shuffle, batch maps, augmentation, prefetch), its ``build_model`` (the zoo's layers,
  its optimizer and schedule, precision, XLA and ``steps_per_execution`` as the run resolves them);
- ``keras``: the keras-io way: the same architecture rebuilt from its config with the zoo's speed
  layers swapped for Keras' stock ones (``stock_config``), ``compile(optimizer="adam")`` with the
  recipe's loss and no metrics, ``fit`` on NumPy arrays of those batches;
- ``torch``: the same network in plain PyTorch (``recipes/runtime/bench_torch.py``; the ``bench``
  extra), ``torch.optim.Adam`` and a plain Python loop over the same batches as tensors.

The recipe's way runs in the ``zoo bench`` process, plain Keras and plain PyTorch each in a process
of its own right after it (``recipes/runtime/bench_way.py``: TensorFlow's runtime in the same
process slowed PyTorch 1.6-6x). Each way runs one warm-up epoch of ``steps`` steps (tracing, compilation, the input pipeline's
first fill), then ``repeats`` timed epochs of ``steps`` steps with the same iterator. A row gives
each way's median examples (or tokens) per second with the spread of the repeats, the median and
90th-percentile step time, the process's RSS growth while it built and trained, and the ratios
``recipe / keras`` and ``recipe / torch`` (above 1: the recipe is faster). A ratio holds on the
processor the row names (``cpu``, ``cpu_flags``); the same model's speed moves 5x between these
machines, so never compare figures across rows of different processors.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import threading
import time

FAMILIES_DOC = "mnist_convnet, resnet20, char_lstm, imdb_bilstm, char_gpt_small, char_gpt_small_12x64, " \
               "imdb_transformer, dcgan, finetune_phase2"


@dataclasses.dataclass(frozen=True)
class Family:
    """One benchmarked model: the recipe command that trains it and how many steps a repeat times."""

    recipe: str
    options: tuple  # `zoo run RECIPE ...` options of the headline run
    steps: int  # timed steps per repeat
    tiny: tuple | None = None  # the smoke test's options (bundled data, small shapes); None: no tiny form
    tokens: bool = False  # count tokens (sequence positions), not examples
    twin: str = ""  # the PyTorch twin's family in bench_torch, where not the same name


FAMILIES = {
    "mnist_convnet": Family("cnn", ("--model", "mnist_convnet", "--preset", "mnist_3_epochs"), 40,
                            ("--quick", "--model", "mnist_convnet", "--batch-size", "16")),
    "resnet20": Family("cnn", ("--model", "resnet20", "--dataset", "cifar10"), 8,
                       ("--quick", "--model", "resnet20", "--batch-size", "16")),
    "char_lstm": Family("rnn", ("--dataset", "tiny_shakespeare"), 16,
                        ("--quick", "--dataset", "sklearn_docs", "--batch-size", "8", "--sequence-length", "16"),
                        tokens=True),
    "imdb_bilstm": Family("rnn", ("--dataset", "imdb_reviews"), 16),
    "char_gpt_small": Family("transformer", ("--dataset", "tiny_shakespeare"), 16,
                             ("--quick", "--dataset", "sklearn_docs", "--batch-size", "8"), tokens=True),
    # nanoGPT's small CPU shape (4 x 128 wide, 4 heads, 64 characters of context, batch 12): per-step costs decide
    "char_gpt_small_12x64": Family("transformer", ("--dataset", "tiny_shakespeare", "--sequence-length", "64",
                                                   "--batch-size", "12", "--random-windows", "true"), 40, tokens=True,
                                   twin="char_gpt_small"),
    "imdb_transformer": Family("transformer", ("--dataset", "imdb_reviews"), 16),
    "dcgan": Family("gan", (), 6, ("--quick", "--batch-size", "16")),
    "finetune_phase2": Family("finetune", ("--weights", "none", "--scratch", "false"), 6),
}


class BenchError(RuntimeError):
    """A benchmark that cannot run here (missing PyTorch, data or family); the message says what to do."""


def check_families(names: list[str], tiny: bool) -> list[str]:
    import difflib

    chosen = list(FAMILIES) if names in ([], ["all"]) else names
    for name in chosen:
        if name not in FAMILIES:
            close = difflib.get_close_matches(name, FAMILIES, n=1)
            raise ValueError(f"Unknown benchmark family {name!r}.{f' Did you mean {close[0]!r}?' if close else ''} "
                             f"Families: {FAMILIES_DOC}, or all")
    if tiny:
        chosen = [name for name in chosen if FAMILIES[name].tiny is not None] or chosen
        missing = [name for name in chosen if FAMILIES[name].tiny is None]
        if missing:
            raise ValueError(f"--tiny: {', '.join(missing)} has no tiny form; tiny forms: "
                             f"{', '.join(name for name, family in FAMILIES.items() if family.tiny)}")
    return chosen


# --- the machine a row holds on ----------------------------------------------------------------

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def processor() -> tuple[str, str]:
    """(model name and core count, the SIMD/matrix flags that move these speeds)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name in ("", platform.machine(), platform.processor()):
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores", " ".join(flag for flag in FLAGS if flag in flags) or "unknown"


class PeakRSS:
    """Samples the process's resident memory every 5 ms; ``growth_mib`` since ``start``."""

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            return 0

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return round((self.peak - self.start) / 2**20, 1)


# --- the three ways ------------------------------------------------------------------------------

@dataclasses.dataclass
class Timing:
    epochs: list  # seconds of each timed epoch
    steps: list  # seconds of each timed step
    memory_mib: float = 0.0

    def summary(self, per_epoch: float) -> dict:
        """``per_epoch``: the units (examples or tokens) one timed epoch trains on."""
        speeds = sorted(per_epoch / seconds for seconds in self.epochs)
        ordered = sorted(self.steps)
        return {"per_s": round(statistics.median(speeds), 1), "spread": f"{speeds[0]:.0f}-{speeds[-1]:.0f}",
                "step_ms": round(1000 * statistics.median(ordered), 2),
                "step_ms_p90": round(1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
                "mib": self.memory_mib}


def keras_timing(model, data, steps: int, repeats: int, **fit_options) -> Timing:
    """One warm-up epoch, then ``repeats`` timed epochs of ``steps`` steps, in one ``fit``."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.steps = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = self.step_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.steps.append(now - self.step_start)
            self.step_start = now

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(time.perf_counter() - self.epoch_start)

    clock = Clock()
    model.fit(data, epochs=1 + repeats, verbose=0, callbacks=[clock], **fit_options)
    per_epoch = len(clock.steps) // (1 + repeats)  # callbacks run once per execution of steps_per_execution
    return Timing(clock.epochs[1:], clock.steps[per_epoch:])


def loop_timing(work, items, repeats: int) -> Timing:
    """``work(item)`` for each of ``items``: one warm-up pass, then ``repeats`` timed passes."""
    epochs, steps = [], []
    for epoch in range(1 + repeats):
        started = previous = time.perf_counter()
        for item in items:
            work(item)
            now = time.perf_counter()
            if epoch:
                steps.append(now - previous)
            previous = now
        if epoch:
            epochs.append(time.perf_counter() - started)
    return Timing(epochs, steps)


def pipeline_timing(dataset, steps: int, repeats: int) -> Timing:
    """The input pipeline alone, batches drawn as a fit draws them: is it ever the bottleneck?"""
    iterator = iter(dataset)
    return loop_timing(lambda _: next(iterator), range(steps), repeats)


def torch_timing(step, batches: list, repeats: int) -> Timing:
    """A plain PyTorch loop over ``batches``; ``step(batch)`` returns the loss."""
    def work(batch):
        loss = step(batch)
        if loss != loss:
            raise BenchError("The PyTorch twin's loss became NaN")

    return loop_timing(work, batches, repeats)


# The zoo's speed layers -> how the stock Keras computation of the same function is configured.
STOCK = {"FusedLSTM": {"module": "keras.layers", "class_name": "LSTM"},
         "TransformerBlock": {"config": {"packed_attention": False}}}


def stock_config(config):
    """A model config with the zoo's speed layers replaced by the stock Keras layers they equal."""
    if isinstance(config, dict):
        config = {key: stock_config(value) for key, value in config.items()}
        swap = STOCK.get(config.get("class_name"))
        if swap:
            if "class_name" in swap:
                config.pop("registered_name", None)
            config.update({key: value for key, value in swap.items() if key != "config"})
            config["config"] = {**config.get("config", {}), **swap.get("config", {})}
        return config
    if isinstance(config, list):
        return [stock_config(value) for value in config]
    return config


def plain_config(model) -> dict:
    """``model``'s architecture, the zoo's speed layers swapped for Keras' own, without its compile settings."""
    import keras

    config = stock_config(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)
    return config


def trainable_count(model) -> int:
    import numpy as np

    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))
