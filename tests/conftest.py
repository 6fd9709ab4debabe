"""Shared fixtures. Tests that need the real dataset copies skip, with the reason, when
they are absent; point ZOO_SHARED_DATASETS at a folder laid out like ../shared/datasets
(and ZOO_SHARED_WEIGHTS at one like ../shared/weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["ZOO_OFFLINE"] = "1"  # never wait on a download in tests

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_dir(kind: str) -> str:
    """The shared copy's ``kind`` folder (datasets, weights): $ZOO_SHARED_<KIND>, else ../shared/<kind>."""
    return os.environ.get(f"ZOO_SHARED_{kind.upper()}", os.path.join(os.path.dirname(PROJECT_ROOT), "shared", kind))


def shared_path(kind: str, name: str, description: str, exists) -> str:
    """Path of ``name`` in the shared ``kind`` folder, or skip saying what is missing and where."""
    path = os.path.join(shared_dir(kind), name)
    if not exists(path):
        pytest.skip(f"{description} not found at {path} (set ZOO_SHARED_{kind.upper()})")
    return path


@pytest.fixture
def shared_weights():
    """Path of a pretrained weights file in the shared copy, or skip saying why."""
    return lambda name: shared_path("weights", name, f"weights file {name}", os.path.isfile)


@pytest.fixture
def shared_dataset():
    """Path of one dataset's raw files in the shared copy, or skip saying why."""
    return lambda name: shared_path("datasets", name, f"raw files for {name}", os.path.isdir)


TWO_LOGICAL_CPUS = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def json_from_two_logical_cpus(script: str, timeout: int = 300):
    """Run ``script`` in a fresh Python process whose CPU is split into 2 logical devices (a
    split possible only before TensorFlow starts) and return the JSON it prints last."""
    result = subprocess.run([sys.executable, "-c", TWO_LOGICAL_CPUS + script], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(*args: str, cwd: str = PROJECT_ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python -m recipes ARGS`` in a fresh process (so --cpu-replicas can split the CPU)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "recipes", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
