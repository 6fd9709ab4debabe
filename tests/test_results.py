"""Results rows: atomic appends, column order, the regenerated markdown table."""

import os

import pandas as pd
import pytest

from recipes.runtime import results


def make_row(**overrides):
    row = {column: 1 for column in results.COLUMNS}
    row.update({"date": "2026-01-01T00:00:00Z", "recipe": "cnn", "model": "m", "dataset": "d",
                "dataset_source": "tfds", "device": "CPU", "commit": "0123abc", "command": "zoo run cnn",
                "test_accuracy": 0.5})
    row.update(overrides)
    return row


def test_rows_append_and_new_metrics_extend_the_columns(tmp_path):
    results.append_row(tmp_path, "cnn", make_row())
    results.append_row(tmp_path, "cnn", make_row(test_top5=0.9, test_accuracy=0.75))
    table = results.read_csv(tmp_path / "cnn.csv")
    assert len(table) == 2
    assert list(table.columns[:len(results.COLUMNS)]) == results.COLUMNS
    assert table.columns[-1] == "command"
    assert pd.isna(table["test_top5"][0]) and table["test_top5"][1] == 0.9
    assert table["commit"][0] == "0123abc"
    readme = (tmp_path / "README.md").read_text()
    assert "## cnn" in readme and "| 0.7500 |" in readme and "`zoo run cnn` at commit 0123abc (tfds)" in readme
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp")]


def test_an_incomplete_row_is_refused_and_nothing_is_written(tmp_path):
    row = make_row()
    del row["device"]
    with pytest.raises(ValueError, match=r"lacks columns \['device'\]"):
        results.append_row(tmp_path, "cnn", row)
    assert not os.listdir(tmp_path)


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    results.append_row(tmp_path, "cnn", make_row())
    before = (tmp_path / "cnn.csv").read_text()

    def broken_replace(source, target):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        results.append_row(tmp_path, "cnn", make_row(model="second"))
    assert (tmp_path / "cnn.csv").read_text() == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp")]


APPENDER = """
import sys
from recipes.runtime import results
from tests.test_results import make_row
for index in range(50):
    results.append_row(sys.argv[1], "cnn", make_row(model=f"{sys.argv[2]}-{index}"))
"""


def test_two_processes_appending_at_once_keep_every_row(tmp_path):
    """Each process reads the table, adds its row and replaces the file; unlocked, 36 of 60 survived."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    appenders = [subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), name], cwd=PROJECT_ROOT,
                                  stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    errors = [appender.communicate(timeout=300)[1] for appender in appenders]
    assert [appender.returncode for appender in appenders] == [0, 0], errors
    table = results.read_csv(tmp_path / "cnn.csv")
    assert sorted(table["model"]) == sorted(f"{name}-{index}" for name in "ab" for index in range(50))
    assert "a-49" in (tmp_path / "README.md").read_text() and "b-49" in (tmp_path / "README.md").read_text()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]  # no temporary file left
