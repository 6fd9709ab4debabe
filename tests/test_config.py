"""Command-line overrides of a recipe's Config: types checked, unknown fields rejected."""

import dataclasses
import subprocess
import sys
from typing import Literal

import pytest

from recipes.runtime.config import ConfigError, RunConfig, make_config, parse_overrides


@dataclasses.dataclass
class ExampleConfig(RunConfig):
    model: str = "resnet20"
    hidden_units: tuple[int, ...] = (4, 2)
    activation: Literal["tanh", "relu"] = "tanh"  # hidden activation


QUICK = {"epochs": 2, "model": "small"}


def test_defaults_then_quick_then_command_line():
    assert parse_overrides(ExampleConfig, []).epochs == 10
    config = parse_overrides(ExampleConfig, ["--quick", "--model", "big"], presets={"quick": QUICK})
    assert (config.quick, config.epochs, config.model) == (True, 2, "big")


def test_values_are_converted_to_the_field_types():
    config = parse_overrides(ExampleConfig, ["--epochs", "3", "--learning-rate", "0.5", "--hidden-units", "8,8,6",
                                             "--mixed-precision", "--activation", "relu", "--cpu-replicas=2"])
    assert (config.epochs, config.learning_rate, config.hidden_units) == (3, 0.5, (8, 8, 6))
    assert config.mixed_precision is True and config.activation == "relu" and config.cpu_replicas == 2
    assert parse_overrides(ExampleConfig, ["--mixed-precision", "false"]).mixed_precision is False


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "three"], "--epochs takes int, got 'three'"),
    (["--activation", "swish"], "--activation got 'swish'; expected one of ['tanh', 'relu']"),
    (["--strategy", "tpu"], "expected one of ['auto', 'mirrored', 'multi_worker', 'one_device', 'cpu']"),
    (["--hidden-units", "4,x"], "--hidden-units takes int, got 'x'"),
    (["--mixed-precision", "maybe"], "takes true or false"),
    (["--epoch", "3"], "Unknown option '--epoch' for zoo run. Did you mean --epochs?"),
    (["--no-such-thing", "1"], "Valid options: --activation, --batch-size"),
])
def test_bad_overrides_name_the_problem(argv, message):
    with pytest.raises(ConfigError) as error:
        parse_overrides(ExampleConfig, argv)
    assert message in str(error.value)


def test_make_config_checks_types_in_code_too():
    with pytest.raises(ConfigError, match="epochs takes int, got str"):
        make_config(ExampleConfig, epochs="3")
    with pytest.raises(ConfigError, match="Unknown field 'epoch'"):
        make_config(ExampleConfig, epoch=3)
    with pytest.raises(ConfigError, match="epochs takes int, got bool"):
        make_config(ExampleConfig, epochs=True)


def test_recipe_help_lists_fields_without_importing_tensorflow():
    code = ("import sys; from recipes.__main__ import main; status = main(['run', 'cnn', '--help']);"
            "assert status == 0; assert 'tensorflow' not in sys.modules, 'help imported TensorFlow'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--learning-rate" in result.stdout and "--cpu-replicas" in result.stdout
    assert "(default: 'mnist_convnet')" in result.stdout
    assert "per replica; the global batch" in result.stdout


@dataclasses.dataclass
class PercentConfig(RunConfig):
    epochs: int = 1  # one epoch reached 88% here


def test_a_comment_with_a_percent_sign_shows_in_the_help():
    from recipes.runtime.config import make_parser

    help_text = make_parser(PercentConfig, "zoo run percent").format_help()  # argparse %-formats: 88% alone fails
    assert "one epoch reached 88% here (default: 1)" in " ".join(help_text.split())
