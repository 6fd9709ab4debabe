"""``zoo bench``: the harness runs end to end on tiny shapes in seconds (a smoke test of its
arithmetic and its table, not a timing assertion), and refuses bad input with a message."""

import math
import os
import sys

import pandas as pd
import pytest

from recipes.runtime import bench, bench_run
from tests.conftest import run_cli
from tests.test_cli import assert_fails

TINY = ("mnist_convnet", "char_lstm", "char_gpt_small", "dcgan")


def test_bad_input_is_refused_with_a_message(tmp_path):
    assert_fails(run_cli("bench", "char_lstn", "--results-dir", str(tmp_path)), 2,
                 "Unknown benchmark family 'char_lstn'. Did you mean 'char_lstm'?")
    assert_fails(run_cli("bench", "dcgan", "--repeats", "0", "--results-dir", str(tmp_path)), 2, "--repeats >= 1")
    assert_fails(run_cli("bench", "finetune_phase2", "--tiny", "--results-dir", str(tmp_path)), 2,
                 "finetune_phase2 has no tiny form")
    assert not os.listdir(tmp_path)


def test_missing_data_names_the_import_command(tmp_path):
    result = run_cli("bench", "mnist_convnet", "--steps", "2", "--repeats", "1", "--results-dir",
                     str(tmp_path / "results"), "--data-dir", str(tmp_path / "tfds"))
    assert_fails(result, 1, "Dataset 'mnist' is not prepared", "zoo data import mnist --from DIR")
    assert not (tmp_path / "results").exists()


def test_without_pytorch_the_message_says_what_to_install(monkeypatch):
    import keras  # noqa: F401  (loaded first: scikit-learn, which Keras imports, probes sys.modules["torch"])

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(bench.BenchError, match=r"pip install -e '\.\[bench\]'"):
        bench_run.measure("dcgan", tiny=True)


def test_timing_summary_is_the_median_of_the_repeats_with_their_spread():
    timing = bench.Timing(epochs=[1.0, 4.0, 2.0], steps=[0.01 * step for step in range(1, 11)], memory_mib=3.5)
    summary = timing.summary(per_epoch=200)
    assert summary == {"per_s": 100.0, "spread": "50-200", "step_ms": 55.0, "step_ms_p90": 100.0, "mib": 3.5}


def test_stock_config_swaps_only_the_zoo_speed_layers():
    config = {"class_name": "Functional", "config": {"layers": [
        {"module": "zoo.layers", "class_name": "FusedLSTM", "registered_name": "zoo>FusedLSTM", "config": {"units": 4}},
        {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}},
        {"module": "zoo.layers", "class_name": "TransformerBlock", "config": {"embed_dim": 8}}]}}
    layers = bench.stock_config(config)["config"]["layers"]
    assert layers[0] == {"module": "keras.layers", "class_name": "LSTM", "config": {"units": 4}}
    assert layers[1] == config["config"]["layers"][1]
    assert layers[2]["config"] == {"embed_dim": 8, "packed_attention": False}
    assert config["config"]["layers"][0]["class_name"] == "FusedLSTM"  # the input is left as it was


def test_processor_names_the_flags_that_move_the_speeds():
    name, flags = bench.processor()
    assert f"{os.cpu_count()} cores" in name
    with open("/proc/cpuinfo") as cpuinfo:
        present = set(next(line for line in cpuinfo if line.startswith("flags")).split(":")[1].split())
    assert flags.split() == [flag for flag in bench.FLAGS if flag in present]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    pytest.importorskip("torch", reason="the bench's third way needs PyTorch: pip install -e '.[bench]'")
    results_dir = tmp_path_factory.mktemp("bench") / "results"
    result = run_cli("bench", *TINY, "--tiny", "--steps", "3", "--repeats", "2", "--results-dir", str(results_dir),
                     timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, results_dir


def test_tiny_bench_writes_a_row_per_family_with_both_ratios(tiny_bench):
    result, results_dir = tiny_bench
    table = pd.read_csv(results_dir / "benchmarks.csv")
    assert list(table["family"]) == list(TINY)
    for _, row in table.iterrows():
        for way in bench_run.WAYS:
            assert row[f"{way}_per_s"] > 0 and row[f"{way}_step_ms"] > 0
            low, high = (float(part) for part in row[f"{way}_spread"].split("-"))
            assert low <= row[f"{way}_per_s"] + 1 and row[f"{way}_per_s"] <= high + 1
            assert row[f"{way}_step_ms"] <= row[f"{way}_step_ms_p90"]
        assert math.isclose(row["ratio_vs_keras"], row["recipe_per_s"] / row["keras_per_s"], rel_tol=2e-3)
        assert math.isclose(row["ratio_vs_torch"], row["recipe_per_s"] / row["torch_per_s"], rel_tol=2e-3)
        assert row["pipeline_per_s"] > 0
        assert row["recipe_params"] == row["keras_params"]  # the same network, rebuilt from its config
        assert row["steps"] == 3 and row["repeats"] == 2 and row["dataset_source"]
        assert row["cpu"] == bench.processor()[0] and row["cpu_flags"] == bench.processor()[1]
        assert row["command"].startswith(f"zoo bench {row['family']} --tiny")
    units = dict(zip(table["family"], table["unit"]))
    assert units == {"mnist_convnet": "examples", "char_lstm": "tokens", "char_gpt_small": "tokens",
                     "dcgan": "examples"}
    settings = table.set_index("family")["recipe_settings"]
    assert "speed layers FusedLSTM" in settings["char_lstm"] and "speed layers TransformerBlock" in \
        settings["char_gpt_small"]


def test_tiny_bench_section_in_the_results_readme(tiny_bench):
    result, results_dir = tiny_bench
    readme = (results_dir / "README.md").read_text()
    section = readme.split("## Benchmarks")[1]
    for family in TINY:
        assert f"| {family} |" in section
    assert "## benchmarks" not in readme  # the CSV is not taken for a recipe's table
    for family in TINY:
        assert f"{family}: recipe " in result.stdout  # each family's result line


def test_loop_timing_times_each_pass_and_a_nan_loss_stops_the_baseline():
    calls = []
    timing = bench.loop_timing(calls.append, [1, 2, 3], repeats=2)
    assert calls == [1, 2, 3] * 3  # a warm-up pass, then two timed ones
    assert len(timing.epochs) == 2 and len(timing.steps) == 6
    assert all(epoch >= step for epoch, step in zip(timing.epochs, timing.steps[::3]))
    with pytest.raises(bench.BenchError, match="loss became NaN"):
        bench.torch_timing(lambda batch: float("nan"), [0], repeats=1)
