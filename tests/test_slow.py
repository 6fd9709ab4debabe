"""Full-dataset runs: tens of minutes on a CPU, so excluded from `make test`.

Run them with `make test-slow`; they need the raw MNIST files (ZOO_SHARED_DATASETS).
"""

import pytest

from recipes.runtime import data_import, results
from tests.conftest import run_cli


@pytest.mark.slow
def test_full_mnist_convnet_reaches_99_2_percent(shared_dataset, tmp_path):
    data_import.import_dataset("mnist", shared_dataset("mnist"), str(tmp_path / "tfds"), log=lambda message: None)
    result = run_cli("run", "cnn", "--data-dir", str(tmp_path / "tfds"), "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"), timeout=3 * 3600)
    assert result.returncode == 0, result.stderr[-3000:]
    row = results.read_csv(tmp_path / "results" / "cnn.csv").iloc[0]
    assert row["test_accuracy"] >= 0.992
