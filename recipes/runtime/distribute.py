"""Choosing a tf.distribute strategy for the devices that exist.

    auto          MirroredStrategy over all GPUs when there are several; with one GPU or
                  none, that one device (or MirroredStrategy over --cpu-replicas logical CPUs)
    mirrored      MirroredStrategy over all GPUs, else over the logical CPUs
    multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG or Slurm (cluster.py),
                  Keras patched for it (keras_multi_worker.py)
    one_device    the first GPU, else the CPU
    cpu           the CPU alone, even where GPUs exist

``--cpu-replicas N`` splits the CPU into N logical devices before TensorFlow starts, so
MirroredStrategy and its loss scaling are testable on a laptop or in CI.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import tensorflow as tf

from recipes.runtime import cluster
from recipes.runtime.config import STRATEGIES, ConfigError


@dataclass
class Placement:
    strategy: tf.distribute.Strategy
    name: str  # the strategy the user asked for, resolved ("mirrored", "one_device", ...)
    replicas: int
    device: str  # human-readable description of the hardware
    workers: int = 1  # processes in the cluster (multi_worker), each with replicas / workers replicas


def multi_worker_placement(worker_timeout: float) -> Placement:
    """MultiWorkerMirroredStrategy over the cluster in TF_CONFIG or Slurm, with Keras patched for it."""
    from recipes.runtime import keras_multi_worker

    task = cluster.current_task()
    if task is None:
        raise ConfigError("strategy=multi_worker needs the cluster: the TF_CONFIG environment variable, e.g. "
                          "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                          "\"task\": {\"type\": \"worker\", \"index\": 0}}', or a Slurm job step (srun); "
                          "`zoo launch --workers N RECIPE` starts N workers on this host")
    strategy = cluster.start_strategy(task, worker_timeout)
    keras_multi_worker.patch_keras()
    gpus = tf.config.list_physical_devices("GPU")
    return Placement(strategy, "multi_worker", strategy.num_replicas_in_sync, describe_hardware(gpus), task.workers)


def split_cpu(replicas: int) -> None:
    """Expose ``replicas`` logical CPU devices; must run before TensorFlow initialises."""
    if replicas < 1:
        raise ConfigError(f"cpu_replicas must be at least 1, got {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != replicas:
            raise ConfigError(
                f"Cannot split the CPU into {replicas} devices: TensorFlow already started with "
                f"{have}. Set cpu_replicas in a fresh process.") from None


def describe_hardware(gpus: list) -> str:
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return f"{len(gpus)}x GPU ({', '.join(sorted(set(names)))})"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU ({model}, {os.cpu_count()} cores)"


def make_strategy(name: str = "auto", cpu_replicas: int = 1, worker_timeout: float = 60) -> Placement:
    """The strategy ``name`` resolved against the visible devices (``worker_timeout``: seconds a
    multi-worker run waits for its cluster)."""
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}; expected one of {list(STRATEGIES)}")
    if name == "multi_worker":
        if cpu_replicas > 1:
            raise ConfigError(f"--cpu-replicas {cpu_replicas} splits one process's CPU for MirroredStrategy; under "
                              f"multi_worker each worker has one CPU replica (or its GPUs): start more workers")
        return multi_worker_placement(worker_timeout)
    if cpu_replicas > 1:
        split_cpu(cpu_replicas)
    gpus = [] if name == "cpu" else tf.config.list_physical_devices("GPU")
    device = describe_hardware(gpus)
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    if name == "cpu":
        if cpu_replicas > 1:
            return Placement(tf.distribute.MirroredStrategy(cpus), "mirrored", len(cpus), device)
        return Placement(tf.distribute.OneDeviceStrategy("/cpu:0"), "one_device", 1, device)
    if name == "one_device":
        target = "/gpu:0" if gpus else "/cpu:0"
        return Placement(tf.distribute.OneDeviceStrategy(target), name, 1, device)
    if name == "mirrored" or len(gpus) > 1 or (not gpus and cpu_replicas > 1):
        devices = [gpu.name for gpu in tf.config.list_logical_devices("GPU")] or cpus
        return Placement(tf.distribute.MirroredStrategy(devices), "mirrored", len(devices), device)
    target = "/gpu:0" if gpus else "/cpu:0"
    return Placement(tf.distribute.OneDeviceStrategy(target), "one_device", 1, device)


def is_chief() -> bool:
    """True on the worker that writes results (always, outside multi-worker training)."""
    return cluster.is_chief()
