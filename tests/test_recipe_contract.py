"""The recipe contract (recipes/runtime/recipe.py): a recipe written by filling it runs through the
runtime; presets resolve before the command line; every committed row's command still resolves;
recipes stay independent of each other and modules stay small."""

import ast
import contextlib
import glob
import io
import os
import re
import shlex

import pandas as pd
import pytest

import recipes
from recipes.__main__ import main
from recipes.runtime import results
from recipes.runtime.config import ConfigError, parse_overrides
from tests.conftest import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_recipe() -> str:
    """The Python block of the README's "Add a recipe" section."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Add a recipe", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def call(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_the_readme_recipe_registers_and_runs_through_the_runtime(tmp_path):
    exec(compile(readme_recipe(), "README.md", "exec"), {"__name__": "readme_recipe"})
    assert "digits_mlp" in recipes.names()
    status, out, _ = call("run", "digits_mlp", "--quick", "--dry-run")
    assert status == 0 and "epochs                   = 3" in out and "# preset quick" in out
    status, out, err = call("run", "digits_mlp", "--quick", "--strategy", "cpu", "--verbose", "0",
                            "--output-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"))
    assert status == 0, err[-2000:]
    row = results.read_csv(tmp_path / "results" / "digits_mlp.csv").iloc[0]
    assert (row["recipe"], row["model"], row["dataset"], row["epochs"], row["preset"]) == (
        "digits_mlp", "mlp_small", "digits", 3, "quick")
    assert row["test_accuracy"] > 0.5, row["test_accuracy"]  # chance is 0.1
    for artifact in ("model.keras", "history.csv", "config.json", "confusion_matrix.png"):
        assert (tmp_path / "run" / artifact).exists(), artifact
    with pytest.raises(ValueError, match="built-in recipe is called 'cnn'"):
        recipes.register(recipes.load("cnn"))


def committed_commands() -> list[str]:
    from recipes.runtime.results import recipes_with_rows  # the recipes' tables, not benchmarks.csv

    return [command for recipe in recipes_with_rows(os.path.join(ROOT, "results"))
            for command in pd.read_csv(os.path.join(ROOT, "results", f"{recipe}.csv"))["command"]]


def test_every_committed_benchmark_command_still_names_its_families():
    from recipes.runtime import bench

    commands = list(pd.read_csv(os.path.join(ROOT, "results", "benchmarks.csv"))["command"])
    assert len(commands) >= 9  # every family's row
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["zoo", "bench"], command  # each row's command names its one family first
        assert bench.check_families(words[2:3], tiny="--tiny" in words) == words[2:3], command


def test_every_committed_command_still_resolves_with_dry_run():
    commands = committed_commands()
    assert len(commands) >= 30  # every recipe's rows
    for command in commands:
        status, out, err = call(*shlex.split(command)[1:], "--dry-run")
        assert status == 0, f"{command}: {err}"
        assert out.startswith(f"zoo run {shlex.split(command)[2]}: ")


def test_dry_run_touches_no_data_and_names_where_each_value_came_from(tmp_path):
    result = run_cli("run", "rnn", "--dataset", "co2", "--epochs", "7", "--dry-run",
                     "--data-dir", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"model += 'lstm_forecaster' +# preset co2", result.stdout)
    assert re.search(r"epochs += 7 +# command line", result.stdout)
    assert re.search(r"preset += 'co2' +# --dataset co2", result.stdout)
    assert os.listdir(tmp_path) == []  # no run folder, no results


def test_presets_resolve_in_order_and_bad_names_are_refused():
    finetune = recipes.load("finetune")
    config = parse_overrides(finetune.config, ["--preset", "cifar10_90", "--finetune-epochs", "3"],
                             presets=finetune.presets)
    assert (config.preset, config.image_size, config.mirror, config.finetune_epochs) == ("cifar10_90", 192, True, 3)
    with pytest.raises(ConfigError, match=r"Unknown preset 'cifar10_9'. Did you mean 'cifar10_90'\?"):
        parse_overrides(finetune.config, ["--preset", "cifar10_9"], presets=finetune.presets)
    with pytest.raises(ConfigError, match="--epochs is set by the phases for finetune"):
        parse_overrides(finetune.config, ["--epochs", "3"], presets=finetune.presets)
    rnn = recipes.load("rnn")
    quick_lm = parse_overrides(rnn.config, ["--quick", "--dataset", "sklearn_docs"], presets=rnn.presets)
    assert (quick_lm.model, quick_lm.epochs, quick_lm.units, quick_lm.quick) == ("char_lstm", 3, (128,), True)
    with pytest.raises(ConfigError, match="preset quick sets model by dataset"):
        parse_overrides(rnn.config, ["--quick", "--dataset", "tiny_shakespeare"], presets=rnn.presets)
    # The data set's preset applies first, then --quick, then the options: each task keeps its settings.
    digits = parse_overrides(rnn.config, ["--dataset", "digits"], presets=rnn.presets)
    assert (digits.model, digits.epochs, digits.batch_size, digits.preset) == ("sequence_lstm", 8, 32, "digits")
    mlp = recipes.load("mlp")
    plane = parse_overrides(mlp.config, ["--quick", "--dataset", "reg_plane"], presets=mlp.presets)
    assert (plane.num_samples, plane.loss, plane.epochs, plane.preset) == (1200, "mse", 60, "reg_plane,quick")
    transformer = recipes.load("transformer")
    gpt = parse_overrides(transformer.config, ["--quick", "--dataset", "sklearn_docs", "--model", "char_gpt_small"],
                          presets=transformer.presets)
    assert (gpt.sequence_length, gpt.epochs, gpt.dropout) == (128, 4, 0.0)  # the model's own context
    help_text = run_cli("run", "finetune", "--help").stdout
    assert "cifar10_90: image_size=192" in help_text and "(default: -1" not in help_text
    assert not re.search(r"^ +--epochs ", help_text, re.M)  # set by the phases: not an option of finetune
    help_text = run_cli("run", "rnn", "--help").stdout
    assert "with dataset co2: model='lstm_forecaster', epochs=5" in help_text


def test_every_recipe_has_real_defaults_and_a_quick_preset():
    for name in recipes.RECIPES:
        recipe = recipes.load(name)
        assert recipe.name == name and "quick" in recipe.presets
        config = recipe.config()
        for field, value in vars(config).items():
            assert not (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0), (name, field)


def test_no_recipe_imports_another_and_modules_stay_small():
    for path in sorted(glob.glob(os.path.join(ROOT, "recipes", "*.py"))):
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                others = [name for name in names if name.split(".")[:2] != ["recipes", "runtime"]
                          and name.startswith("recipes.") and name.split(".")[1] in recipes.RECIPES]
                allowed = os.path.basename(path) == "__main__.py"
                assert allowed or not others, f"{path} imports {others}"
                assert allowed or node.module != "recipes" or os.path.basename(path) == "__init__.py", path
    sizes = {path: sum(1 for _ in open(path, encoding="utf-8"))
             for path in glob.glob(os.path.join(ROOT, "recipes", "**", "*.py"), recursive=True)
             + glob.glob(os.path.join(ROOT, "zoo", "**", "*.py"), recursive=True)}
    assert max(sizes.values()) <= 360, {path: size for path, size in sizes.items() if size > 360}
