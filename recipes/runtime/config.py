"""Run configuration: a dataclass of hyper-parameters, overridden from the command line.

Every recipe's ``Config`` subclasses ``RunConfig``, so each recipe inherits the common
options (seed, epochs, batch size, learning rate, mixed precision, XLA, strategy, data
and output folders). ``parse_overrides`` turns ``--field value`` pairs into a config with
types checked; an unknown field is rejected with the list of valid ones. This module
imports no TensorFlow, so ``zoo run cnn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device", "cpu")
TRACKERS = ("none", "mlflow")


class ConfigError(ValueError):
    """A bad command-line override or configuration value."""


@dataclasses.dataclass
class RunConfig:
    """Options every recipe inherits."""

    seed: int = 42
    epochs: int = 10
    batch_size: int = 128  # per replica; the global batch is this times the replicas
    learning_rate: float = 1e-3
    mixed_precision: bool = False  # float16 on GPU, bfloat16 on CPU; outputs stay float32
    jit_compile: Literal["auto", "true", "false"] = "auto"  # XLA; auto: on with GPUs, off on CPU (5x slower there, make bench)
    steps_per_execution: int = 1  # >1 runs several train steps per call into the graph
    strategy: Literal["auto", "mirrored", "multi_worker", "one_device", "cpu"] = "auto"
    cpu_replicas: int = 1  # split the CPU into N logical devices (tests distribution without GPUs)
    worker_timeout: float = 60.0  # multi_worker: seconds to wait for every worker to join, then fail naming them
    data_dir: str = ""  # tfds data dir; default $ZOO_DATA_DIR, then ~/tensorflow_datasets
    output_dir: str = ""  # run artifacts; default runs/<recipe>/<model>-<dataset>[-quick]
    results_dir: str = ""  # default results/ (quick runs: runs/quick-results/)
    tracking: Literal["none", "mlflow"] = "none"
    validation_freq: int = 1  # evaluate on the test split every N epochs during training (the last always)
    verbose: int = 2  # Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch
    train_examples: int = 0  # >0: train on the first N training examples only (smoke runs, learning curves)
    quick: bool = False  # train for seconds on small data that ships inside a package


def field_types(config_class) -> dict[str, Any]:
    """Resolved type of each field (annotations are strings under ``from __future__``)."""
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def _converter(name: str, annotation):
    """A function from the command-line string to a value of ``annotation``."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        def to_bool(text: str) -> bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"--{name} takes true or false, got {text!r}")
        return to_bool
    if origin is Literal:
        choices = typing.get_args(annotation)
        def to_choice(text: str):
            if text not in choices:
                raise ConfigError(f"--{name} got {text!r}; expected one of {list(choices)}")
            return text
        return to_choice
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        item = _converter(name, item_type)
        def to_tuple(text: str):
            parts = [part for part in text.replace(" ", "").split(",") if part]
            return tuple(item(part) for part in parts)
        return to_tuple
    if origin in (typing.Union, types.UnionType):
        non_none = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _converter(name, non_none[0])
    if annotation in (int, float, str):
        def to_scalar(text: str):
            try:
                return annotation(text)
            except ValueError:
                raise ConfigError(f"--{name} takes {annotation.__name__}, got {text!r}") from None
        return to_scalar
    raise TypeError(f"Config field {name} has an unsupported type {annotation!r}")


def _describe(annotation) -> str:
    if typing.get_origin(annotation) is Literal:
        return "{" + ",".join(map(str, typing.get_args(annotation))) + "}"
    if typing.get_origin(annotation) is tuple:
        return "INT,INT,..." if typing.get_args(annotation)[0] is int else "A,B,..."
    return getattr(annotation, "__name__", str(annotation)).upper()


def field_comments(config_class) -> dict[str, str]:
    """The trailing ``# comment`` of each field in the class source, used as CLI help."""
    import inspect
    comments = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            code, _, comment = line.partition("  # ")
            if ":" in code and "=" in code and comment:
                comments[code.split(":")[0].strip()] = comment.strip()
    return comments


def make_parser(config_class, prog: str, description: str = "") -> argparse.ArgumentParser:
    """An argparse parser with one ``--field`` option per dataclass field."""
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = config_class()
    comments = field_comments(config_class)
    for name, annotation in field_types(config_class).items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        help_text = f"{comments.get(name, '')} (default: {default!r})".strip()
        if annotation is bool:
            parser.add_argument(flag, dest=name, nargs="?", const="true", metavar="BOOL",
                                type=str, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, type=str, default=None, metavar=_describe(annotation),
                                help=help_text)
    return parser


def parse_overrides(config_class, argv: list[str], prog: str = "zoo run",
                    quick_overrides: dict | None = None, description: str = ""):
    """Build a config from defaults, then ``quick_overrides`` (with ``--quick``), then argv.

    Raises ConfigError naming the bad field or value and the valid choices.
    """
    parser = make_parser(config_class, prog, description)
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        valid = sorted("--" + name.replace("_", "-") for name in field_types(config_class))
        flags = [item for item in unknown if item.startswith("-")] or unknown
        close = difflib.get_close_matches(flags[0].split("=")[0], valid, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(f"Unknown option {flags[0]!r} for {prog}.{hint} Valid options: {', '.join(valid)}")
    types_by_name = field_types(config_class)
    given = {}
    for name, text in vars(namespace).items():
        if text is not None:
            given[name] = _converter(name.replace("_", "-"), types_by_name[name])(text)
    values = {}
    if given.get("quick") and quick_overrides:
        values.update(quick_overrides)
    values.update(given)
    return make_config(config_class, **values)


def make_config(config_class, **values):
    """Construct ``config_class`` after checking every value's type."""
    types_by_name = field_types(config_class)
    for name, value in values.items():
        if name not in types_by_name:
            raise ConfigError(f"Unknown field {name!r} for {config_class.__name__}; "
                              f"valid fields: {sorted(types_by_name)}")
        check_type(name, value, types_by_name[name])
    return config_class(**values)


def check_type(name: str, value, annotation) -> None:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{name}={value!r}; expected one of {list(typing.get_args(annotation))}")
        return
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"{name} takes a tuple, got {type(value).__name__} {value!r}")
        return
    expected = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}.get(annotation)
    if expected and (not isinstance(value, expected) or (annotation is int and isinstance(value, bool))):
        raise ConfigError(f"{name} takes {annotation.__name__}, got {type(value).__name__} {value!r}")
