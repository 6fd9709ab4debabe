"""The command line: bad input gets a clear message, a nonzero exit, and no results."""

import os

from tests.conftest import run_cli


def assert_fails(result, status, *fragments):
    assert result.returncode == status, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr[-2000:]}"


def test_unknown_recipe(tmp_path):
    assert_fails(run_cli("run", "cnm", "--results-dir", str(tmp_path)), 2, "Unknown recipe 'cnm'. Did you mean 'cnn'?")
    assert not os.listdir(tmp_path)


def test_unknown_model_fails_before_loading_data(tmp_path):
    result = run_cli("run", "cnn", "--model", "resnet21", "--results-dir", str(tmp_path), "--data-dir",
                     str(tmp_path / "empty"))
    assert_fails(result, 2, "Unknown model 'resnet21'", "'resnet20'")
    assert not os.listdir(tmp_path)


def test_unknown_field_and_wrong_type():
    assert_fails(run_cli("run", "cnn", "--epoch", "3"), 2, "Unknown option '--epoch'", "--epochs")
    assert_fails(run_cli("run", "mlp", "--epochs", "ten"), 2, "--epochs takes int, got 'ten'")
    assert_fails(run_cli("run", "mlp", "--dataset", "moons"), 2, "expected one of ['circle', 'xor'")
    assert_fails(run_cli("run", "mlp", "--features", "x1,x3"), 2, "Unknown or no features ['x3']")
    assert_fails(run_cli("run", "mlp", "--noise", "0.9"), 2, "noise must be in [0, 0.5]")
    assert_fails(run_cli("run", "mlp", "--dataset", "xor", "--loss", "arctan"), 2, "loss='arctan' does not fit")
    assert_fails(run_cli("run", "cnn", "--quick", "--model", "resnet20", "--dropout", "0.1,0.2", "--strategy", "cpu"),
                 2, "--dropout applies to the convnets", "resnet20")


def test_missing_data_offline_names_the_dataset_and_the_import_command(tmp_path):
    result = run_cli("run", "cnn", "--data-dir", str(tmp_path / "tfds"), "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert_fails(result, 1, "Dataset 'mnist' is not prepared", "zoo data import mnist --from DIR")
    assert not (tmp_path / "results").exists()


def test_data_import_errors_exit_nonzero(tmp_path):
    assert_fails(run_cli("data", "import", "mnist", "--from", str(tmp_path / "nowhere"),
                         "--data-dir", str(tmp_path)), 1, "is not a directory")


def test_list_shows_recipes_and_models():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    assert "cnn" in result.stdout and "resnet56" in result.stdout and "playground" in result.stdout


def test_results_command_prints_the_table(tmp_path):
    assert_fails(run_cli("results", "--results-dir", str(tmp_path / "none")), 1, "No results directory")
    from recipes.runtime import results
    from tests.test_results import make_row

    results.append_row(tmp_path / "results", "cnn", make_row(model="resnet20", test_accuracy=0.8752))
    shown = run_cli("results", "--results-dir", str(tmp_path / "results"))
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "## cnn" in shown.stdout and "| resnet20 |" in shown.stdout and "| 0.8752 |" in shown.stdout


NATIVE = "I0000 00:00:1796136644.047631   11566 port.cc:153] oneDNN custom operations are on."


def test_native_log_lines_are_hidden_and_everything_else_reaches_stderr_in_order():
    """The console filter (recipes/runtime/console.py) drops absl-format lines, written from C
    (fd 2) by this process or a child, and keeps Python's warnings, partial lines and the last
    message before exit."""
    import subprocess
    import sys

    code = (f"import os, subprocess, sys, warnings\n"
            f"from recipes.runtime import console\n"
            f"console.hide_native_logs()\n"
            f"os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
            f"os.write(2, b'{NATIVE}\\nE0000 00:00:1796136648.264227   11566 cuda_platform.cc:52] failed call to "
            f"cuInit\\n')\n"
            f"warnings.warn('a Python warning')\n"
            f"subprocess.run([sys.executable, '-c', \"import os; os.write(2, b'{NATIVE}\\\\nfrom the child\\\\n')\"])\n"
            f"os.write(2, b'Epoch 3 without a newline; ')\n"
            f"print('error: the last line', file=sys.stderr)\n"
            f"sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert not [line for line in lines if "port.cc" in line or "cuInit" in line or "absl::InitializeLog" in line], lines
    assert "a Python warning" in result.stderr and "from the child" in result.stderr, lines
    assert lines[-1] == "Epoch 3 without a newline; error: the last line", lines


def test_bad_verbosity_is_refused():
    assert_fails(run_cli("run", "mlp", "--quick", "--verbose", "4"), 2, "--verbose takes 0 (silent)", "got 4")


def test_a_reader_that_leaves_early_gets_no_traceback():
    """``zoo run cnn --dry-run | true``: the reader is gone before zoo writes its first line."""
    import subprocess
    import sys

    shell = f"{sys.executable} -m recipes run cnn --dry-run | true"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {shell}"], capture_output=True, text=True,
                            timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode == 1
