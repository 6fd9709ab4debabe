"""Shared fixtures. Tests that need the real dataset copies skip, with the reason, when
they are absent; point ZOO_SHARED_DATASETS at a folder laid out like ../shared/datasets
(and ZOO_SHARED_WEIGHTS at one like ../shared/weights)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["ZOO_OFFLINE"] = "1"  # never wait on a download in tests

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_datasets_dir() -> str:
    return os.environ.get("ZOO_SHARED_DATASETS",
                          os.path.join(os.path.dirname(PROJECT_ROOT), "shared", "datasets"))


def shared_weights_dir() -> str:
    return os.environ.get("ZOO_SHARED_WEIGHTS",
                          os.path.join(os.path.dirname(PROJECT_ROOT), "shared", "weights"))


@pytest.fixture
def shared_weights():
    """Path of a pretrained weights file in the shared copy, or skip saying why."""
    def locate(name: str) -> str:
        path = os.path.join(shared_weights_dir(), name)
        if not os.path.isfile(path):
            pytest.skip(f"weights file {name} not found at {path} (set ZOO_SHARED_WEIGHTS)")
        return path
    return locate


@pytest.fixture
def shared_dataset():
    """Path of one dataset's raw files in the shared copy, or skip saying why."""
    def locate(name: str) -> str:
        path = os.path.join(shared_datasets_dir(), name)
        if not os.path.isdir(path):
            pytest.skip(f"raw files for {name} not found at {path} (set ZOO_SHARED_DATASETS)")
        return path
    return locate


def run_cli(*args: str, cwd: str = PROJECT_ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python -m recipes ARGS`` in a fresh process (so --cpu-replicas can split the CPU)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "recipes", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
