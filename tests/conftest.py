"""Shared fixtures. Tests that need the real dataset copies skip, with the reason, when
they are absent (and fail instead with ZOO_REQUIRE_SHARED=1, which .ci/run sets where
../shared/datasets exists); point ZOO_SHARED_DATASETS at a folder laid out like
../shared/datasets (and ZOO_SHARED_WEIGHTS at one like ../shared/weights)."""

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
        if os.environ.get("ZOO_REQUIRE_SHARED") == "1":  # .ci/run sets it where ../shared exists
            pytest.fail(f"{description} not found at {path}, and ZOO_REQUIRE_SHARED=1 forbids skipping")
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


GUARDED = ("runs", "results")  # the checkout's folders no test may write into


def checkout_state() -> dict:
    """Every file (size, mtime) and folder under the guarded folders of the checkout."""
    state = {}
    for folder in GUARDED:
        for root, folders, names in os.walk(os.path.join(PROJECT_ROOT, folder)):
            for name in folders:
                state[os.path.relpath(os.path.join(root, name), PROJECT_ROOT) + "/"] = "folder"
            for name in names:
                path = os.path.join(root, name)
                try:
                    stat = os.stat(path)
                except FileNotFoundError:  # removed while walking
                    continue
                state[os.path.relpath(path, PROJECT_ROOT)] = (stat.st_size, stat.st_mtime_ns)
    return state


@pytest.fixture(autouse=True)
def checkout_untouched():
    """Fails a test that creates, changes or removes anything under the checkout's runs/ or
    results/: tests write under tmp_path (--output-dir, --results-dir, or cwd=tmp_path)."""
    before = checkout_state()
    yield
    after = checkout_state()
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    if changed:
        pytest.fail(f"this test wrote into the checkout: {changed[:8]}{' ...' if len(changed) > 8 else ''}; "
                    f"give it --output-dir and --results-dir under tmp_path, or run it with cwd=tmp_path")


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


def assert_handled_failure(result, status: int, recipe: str | None, *fragments: str) -> None:
    """A failure the CLI handled: exit ``status``, ``error: [recipe] ...`` (``error: ...`` for a
    setting refused while parsing, ``recipe=None``) and each fragment on stderr, and no traceback
    (an uncaught exception also exits 1)."""
    output = f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == status, output
    assert "Traceback" not in result.stderr and "error: " in result.stderr, output
    if recipe:
        assert f"error: [{recipe}] " in result.stderr, output
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{output}"


def run_cli(*args: str, cwd: str = PROJECT_ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python -m recipes ARGS`` in a fresh process (so --cpu-replicas can split the CPU)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "recipes", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def plan_for(config, datasets, replicas: int = 1):
    """The ``Plan`` the runtime gives ``build_model`` for ``config`` on ``datasets`` (one worker)."""
    from recipes.runtime.recipe import Plan

    global_batch = config.batch_size * replicas
    return Plan(replicas, 1, global_batch, -(-datasets.num_train // global_batch))


@pytest.fixture(scope="session")
def digit_checkpoint(tmp_path_factory):
    """A small_convnet trained briefly on scikit-learn's digits, saved as the cnn recipe saves."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.images[..., None].astype("float32") * (255.0 / 16.0), digits.target  # 0-255, as recipes give them
    from zoo import cnn

    model = cnn.small_convnet()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("checkpoint") / "small_convnet.keras"
    model.save(path)
    return str(path), x, y
