"""Run configuration: a dataclass of hyper-parameters, overridden from the command line.

Every recipe's ``Config`` subclasses ``RunConfig``, so each recipe inherits the common
options (seed, epochs, batch size, learning rate, mixed precision, XLA, strategy, data
and output folders). ``parse_overrides`` turns ``--field value`` pairs into a config with
types checked, on top of the recipe's named presets (``Per`` for values that depend on another field); an
unknown field is rejected with the list of valid ones. This module imports no TensorFlow,
so ``zoo run cnn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from typing import Any, ClassVar, Literal

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device", "cpu")
TRACKERS = ("none", "mlflow", "wandb")


class ConfigError(ValueError):
    """A bad command-line override or configuration value."""


@dataclasses.dataclass
class RunConfig:
    """Options every recipe inherits."""

    # Inherited options a recipe does not use, -> why (shown when one is given; hidden from --help).
    NOT_APPLICABLE: ClassVar[dict[str, str]] = {}

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
    tracking: Literal["none", "mlflow", "wandb"] = "none"  # MLflow or Weights & Biases (offline unless WANDB_MODE)
    validation_freq: int = 1  # evaluate on the test split every N epochs during training (the last always)
    verbose: int = 2  # 0 silent, 1 progress bar, 2 one line per epoch, 3 also TensorFlow's C++ log lines
    train_examples: int = 0  # >0: train on the first N training examples only (smoke runs, learning curves)
    data: str = ""  # your own data instead of the recipe's set: an image or text folder, a CSV, a text file
    data_format: Literal["auto", "images", "text", "corpus", "series", "table"] = "auto"  # what --data is; auto: from the path
    test_fraction: float = 0.2  # --data without train/ and test/: the share held out (stratified, by --seed)
    label_column: str = ""  # --data CSVs: the label or target column; "": label, target, else the last
    text_column: str = ""  # --data text CSVs: the column of texts; "": text, else the first column of words
    value_column: str = ""  # --data series CSVs: the series; "": value, else the last numeric column
    skip_bad_files: bool = False  # --data folders: skip files that are not readable images (listed) instead of failing
    quick: bool = False  # the quick preset: seconds, on small data that ships inside a package
    preset: str = ""  # named settings, comma-separated, applied in order (--help lists them)

    @property
    def fit_verbose(self) -> int:
        """Keras's ``verbose`` for fit: 0, 1 or 2 (3 is 2, with TensorFlow's own log lines shown)."""
        if self.verbose not in (0, 1, 2, 3):
            raise ConfigError(f"--verbose takes 0 (silent), 1 (progress bar), 2 (a line per epoch) or 3 (also "
                              f"TensorFlow's C++ log lines), got {self.verbose}")
        return min(self.verbose, 2)


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


def make_parser(config_class, prog: str, description: str = "", presets: dict | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--field`` option per dataclass field; the presets in the epilog."""
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=describe_presets(presets) if presets else None)
    defaults = config_class()
    comments = field_comments(config_class)
    for name, annotation in field_types(config_class).items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        # argparse %-formats help strings: a comment's "88%" must reach it as "88%%"
        help_text = f"{comments.get(name, '')} (default: {default!r})".strip().replace("%", "%%")
        if name in config_class.NOT_APPLICABLE:
            help_text = argparse.SUPPRESS
        if annotation is bool:
            parser.add_argument(flag, dest=name, nargs="?", const="true", metavar="BOOL",
                                type=str, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, type=str, default=None, metavar=_describe(annotation),
                                help=help_text)
    return parser


class _Refused:
    def __repr__(self) -> str:
        return "refused"


REFUSED = _Refused()  # Per's otherwise when a value outside its table must be given on the command line


@dataclasses.dataclass(frozen=True)
class Per:
    """A preset value that depends on another field's final value (after the command line):
    ``Per("model", {"dcgan": 2e-4, "conditional_dcgan": 1e-3})``."""

    field: str
    values: dict
    otherwise: Any = REFUSED  # the value for any other value of ``field``

    def __repr__(self) -> str:
        choices = [f"{value!r} ({self.field} {key})" for key, value in self.values.items()]
        if self.otherwise is not REFUSED:
            choices.append(f"{self.otherwise!r} (any other {self.field})")
        return " | ".join(choices)


def describe_presets(presets: dict) -> str:
    """The presets for ``--help``: each one's values, those that depend on another field grouped by it."""
    lines = ["presets (--preset NAME; --quick is --preset quick; --dataset D first applies a preset named D):"]
    for name, values in presets.items():
        lines.append(f"  {name}: " + ", ".join(f"{field}={value!r}" for field, value in values.items()
                                              if not isinstance(value, Per)))
        depending: dict = {}
        for field, value in values.items():
            if isinstance(value, Per):
                choices = {**value.values, **({} if value.otherwise is REFUSED else {"any other": value.otherwise})}
                for key, choice in choices.items():
                    depending.setdefault((value.field, key), []).append(f"{field}={choice!r}")
        lines += [f"      with {field} {key}: " + ", ".join(parts) for (field, key), parts in depending.items()]
    return "\n".join(lines)


def data_form(given: dict, data_forms: tuple) -> str | None:
    """The form of ``--data`` (forms.py), or None when there is none or it cannot be told yet (the run's
    data loading then says what is wrong)."""
    if not given.get("data") or not data_forms:
        return None
    from recipes.runtime import forms

    try:
        return forms.detect(given["data"], given.get("data_format", "auto"), data_forms)
    except forms.FormError:
        return None


def chosen_presets(given: dict, presets: dict, form: str | None = None) -> list[str]:
    """The presets a command line asks for, in the order they apply: the one named after the
    ``--dataset`` given (a recipe's per-task settings), or after the form of ``--data`` (corpus,
    series ...), if there is one; ``--quick`` (``quick_<form>`` with ``--data`` where the recipe has
    one); ``--preset A,B``."""
    asked = [name for name in given.get("preset", "").split(",") if name]
    implied = [name for name in (given.get("dataset"), form) if name in presets and name not in asked]
    quick = f"quick_{form}" if form and f"quick_{form}" in presets else "quick"
    names = implied[:1] + ([quick] if given.get("quick") else []) + asked
    unknown = [name for name in names if name not in presets]
    if unknown:
        close = difflib.get_close_matches(unknown[0], presets, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown preset {unknown[0]!r}.{hint} Presets: {sorted(presets)}")
    return list(dict.fromkeys(names))


def apply_presets(config_class, given: dict, presets: dict | None, data_forms: tuple = ()) -> tuple[dict, dict]:
    """(values, source of each value that is not a default): defaults < presets in order < ``given``."""
    presets = presets or {}
    form = data_form(given, data_forms)
    names = chosen_presets(given, presets, form)
    values, sources = {}, {}
    for name in names:
        for field, value in presets[name].items():
            values[field], sources[field] = value, f"preset {name}"
    for field, value in given.items():
        values[field], sources[field] = value, "command line"
    values["preset"], values["quick"] = ",".join(names), any(name.split("_")[0] == "quick" for name in names)
    if names and "preset" not in given:
        sources["preset"] = ", ".join(([f"--dataset {given['dataset']}"] if given.get("dataset") in names else [])
                                      + ([f"--data ({form})"] if form in names else [])
                                      + (["--quick"] if given.get("quick") else []))
    defaults = {field.name: field.default for field in dataclasses.fields(config_class)}
    for field, value in list(values.items()):
        if isinstance(value, Per):
            key = values.get(value.field, defaults.get(value.field))
            if key not in value.values and value.otherwise is not REFUSED:
                values[field] = value.otherwise
                continue
            if key not in value.values:
                raise ConfigError(f"{sources[field]} sets {field} by {value.field}, for {sorted(value.values)}; "
                                  f"{value.field} is {key!r}: give --{field.replace('_', '-')} yourself or choose "
                                  f"--{value.field.replace('_', '-')} from those")
            values[field] = value.values[key]
    return values, sources


def parse_overrides(config_class, argv: list[str], prog: str = "zoo run", presets: dict | None = None,
                    description: str = "", with_sources: bool = False, data_forms: tuple = ()):
    """Build a config from defaults, then the chosen presets, then argv.

    Raises ConfigError naming the bad field or value and the valid choices. ``with_sources``:
    also return where each value that is not a default came from.
    """
    parser = make_parser(config_class, prog, description, presets)
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        valid = sorted("--" + name.replace("_", "-") for name in field_types(config_class)
                       if name not in config_class.NOT_APPLICABLE)
        flags = [item for item in unknown if item.startswith("-")] or unknown
        close = difflib.get_close_matches(flags[0].split("=")[0], valid, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(f"Unknown option {flags[0]!r} for {prog}.{hint} Valid options: {', '.join(valid)}")
    types_by_name = field_types(config_class)
    given = {}
    for name, text in vars(namespace).items():
        if text is not None:
            given[name] = _converter(name.replace("_", "-"), types_by_name[name])(text)
    refuse_not_applicable(config_class, given)
    values, sources = apply_presets(config_class, given, presets, data_forms)
    config = make_config(config_class, **values)
    return (config, sources) if with_sources else config


def refuse_not_applicable(config_class, values: dict) -> None:
    for name, why in config_class.NOT_APPLICABLE.items():
        if name in values:
            raise ConfigError(f"--{name.replace('_', '-')} {why}")


def make_config(config_class, **values):
    """Construct ``config_class`` after checking every value's type."""
    types_by_name = field_types(config_class)
    refuse_not_applicable(config_class, values)
    for name, value in values.items():
        if name not in types_by_name:
            raise ConfigError(f"Unknown field {name!r} for {config_class.__name__}; "
                              f"valid fields: {sorted(types_by_name)}")
        check_type(name, value, types_by_name[name])
    return config_class(**values)


def describe(config, sources: dict) -> str:
    """The resolved config, one field a line, with where each value came from (``--dry-run``)."""
    lines = []
    for field in dataclasses.fields(config):
        if field.name in type(config).NOT_APPLICABLE:
            continue
        source = sources.get(field.name, "default")
        lines.append(f"  {field.name:24s} = {getattr(config, field.name)!r:32s} # {source}")
    return "\n".join(lines)


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
