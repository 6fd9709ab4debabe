"""Strategy choice: errors for bad settings, the chief worker, and a one-worker cluster."""

import json
import socket

import pytest

from recipes.runtime import distribute, results
from recipes.runtime.config import ConfigError
from tests.conftest import assert_handled_failure, run_cli


def test_multi_worker_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the cluster: the TF_CONFIG environment variable"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        distribute.make_strategy("multi_worker")
    with pytest.raises(ConfigError, match=r"Unknown strategy 'tpu'; expected one of \['auto'"):
        distribute.make_strategy("tpu")


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_only_the_chief_writes_results(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief() is chief


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def test_a_one_worker_cluster_trains_under_multi_worker_mirrored_strategy(tmp_path):
    tf_config = {"cluster": {"worker": [f"localhost:{free_port()}"]}, "task": {"type": "worker", "index": 0}}
    result = run_cli("run", "mlp", "--quick", "--epochs", "3", "--strategy", "multi_worker",
                     "--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "run"),
                     env={"TF_CONFIG": json.dumps(tf_config)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    row = results.read_csv(tmp_path / "results" / "mlp.csv").iloc[0]
    assert (row["strategy"], row["replicas"]) == ("multi_worker", 1)


def test_steps_per_execution_with_several_replicas_is_refused_clearly(tmp_path):
    result = run_cli("run", "mlp", "--quick", "--cpu-replicas", "2", "--steps-per-execution", "4",
                     "--results-dir", str(tmp_path / "results"))
    assert_handled_failure(result, 2, "mlp", "use --steps-per-execution 1 with MirroredStrategy")
    assert not (tmp_path / "results").exists()


SMALL_TEST_SET = """
import keras, numpy as np
from recipes.runtime import data, distribute
placement = distribute.make_strategy("cpu", cpu_replicas=2)
with placement.strategy.scope():
    inputs = keras.Input((8,), dtype="int32")
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Embedding(10, 4)(inputs)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
tokens, targets = rng.integers(0, 10, (33, 8)).astype("int32"), rng.integers(0, 10, (33, 8))
examples = data.from_arrays(tokens, targets)
loss = model.evaluate(data.pipeline(examples, 33, 128, training=False, seed=0, replicas=2), verbose=0)
logits = model.predict(tokens, verbose=0).astype("float64")
log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
expected = -np.take_along_axis(log_probabilities, targets[..., None], -1).mean()  # every token of the 33
print("loss", loss, expected)
"""


def test_a_test_set_smaller_than_one_batch_evaluates_on_two_replicas():
    """33 sequences, a global batch of 128, 2 replicas: the first batch must split evenly
    (Keras 3.15 averages it across replicas to build the model). A fresh process, because
    the CPU can only be split before TensorFlow starts."""
    import subprocess
    import sys

    from recipes.runtime import data
    from tests.conftest import PROJECT_ROOT

    assert data.first_batch_size(128, 33, 2) == 32
    assert data.first_batch_size(128, 300, 2) == 128 and data.first_batch_size(128, 33, 1) == 128
    result = subprocess.run([sys.executable, "-c", SMALL_TEST_SET], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loss, expected = map(float, result.stdout.split("loss")[-1].split())
    assert loss == pytest.approx(expected, rel=1e-5)
