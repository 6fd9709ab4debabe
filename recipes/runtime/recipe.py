"""The recipe contract, written once: what a recipe declares and what the runtime calls.

A recipe is a module that ends with ``RECIPE = Recipe(...)``. The runtime
(``recipes.runtime.train.run``) owns the flow and calls the recipe's functions in this order:

    config   = parse_overrides(recipe.config, argv, presets=recipe.presets)   # defaults < presets < options
    datasets = recipe.make_datasets(config)                 # -> data.Datasets
    model    = recipe.build_model(config, datasets, plan)   # inside strategy.scope(); compiled
    fitted   = recipe.fit(run) if recipe.fit else model.fit(...)   # -> FitResult, kept in run.fitted
    metrics  = evaluate(model) + fitted.metrics + recipe.report(run)   # test metrics, then the recipe's own
    metrics += recipe.baseline(run)                         # a timed stage of its own (baseline_seconds)
    row      = common columns + metrics                     # appended to results/<name>.csv

Only ``name``, ``config``, ``make_datasets`` and ``build_model`` are required; every other
hook has a default that does nothing, so the runtime never asks a module what it has.
Stages pass values (``FitResult``), not files. A recipe never imports another recipe: what
two share lives in ``recipes/runtime/`` or ``zoo/``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the run is laid out, for ``build_model`` (learning-rate schedules) and ``fit``."""

    replicas: int  # in sync over all workers
    workers: int
    global_batch_size: int  # per-replica batch x replicas
    steps_per_epoch: int  # optimizer steps over the training split at the global batch


@dataclasses.dataclass
class FitResult:
    """What a fit hands to the runtime and to the recipe's ``report`` and ``baseline``."""

    epochs: list[int]  # the epochs trained (0-based, counted across phases and resumed invocations)
    metrics: dict = dataclasses.field(default_factory=dict)  # row columns measured while training
    state: Any = None  # anything else the recipe's report or baseline needs from its fit
    history: dict = dataclasses.field(default_factory=dict)  # metric -> per-epoch values, as History.history
    seconds: float | None = None  # training seconds, where no Keras fit ran under the runtime's clock
    examples: int | None = None  # examples processed, where that is not train examples x epochs


@dataclasses.dataclass
class Run:
    """One run as the runtime fills it in, stage by stage; the argument of ``fit``, ``report``,
    ``baseline`` and ``callbacks``."""

    recipe: "Recipe"
    config: Any
    datasets: Any
    plan: Plan
    output_dir: str  # this run's artifacts (a worker of a cluster: a folder of its own)
    backup_dir: str  # resumable state; removed once the run finished
    log: Callable[[str], None] = print
    train: Any = None  # the training pipeline at the global batch (tf.data)
    test: Any = None
    model: Any = None
    callbacks: list = dataclasses.field(default_factory=list)  # the runtime's (clock, NaN guard, logs) and the recipe's
    fitted: FitResult | None = None
    train_seconds: float = 0.0  # of the fit (all invocations of a resumed run), once it finished
    examples: int = 0  # training examples processed in those seconds


def _no_callbacks(run: Run) -> list:
    return []


def _no_metrics(run: Run) -> dict:
    return {}


def _model_name(config) -> str:
    return getattr(config, "model", "")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A recipe, as its module declares it; see the module docstring for the order of the calls."""

    name: str  # the CLI name: zoo run NAME
    config: type  # a RunConfig dataclass: the hyper-parameters, with real defaults
    make_datasets: Callable  # (config) -> data.Datasets
    build_model: Callable  # (config, datasets, plan) -> a compiled keras.Model
    fit: Callable | None = None  # (run) -> FitResult; None: model.fit with the runtime's checkpoint
    report: Callable[[Run], dict] = _no_metrics  # after the evaluation: more metrics and pictures
    baseline: Callable[[Run], dict] | None = None  # a comparison trained after the run, timed on its own
    callbacks: Callable[[Run], list] = _no_callbacks  # extra Keras callbacks for the fit
    run_name: Callable[[Any], str] = _model_name  # names the model in the run folder and the row
    presets: Mapping[str, Mapping] = dataclasses.field(default_factory=dict)  # name -> field values; "quick" required
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the row columns it adds -> their meaning
    publish: tuple | Callable = ()  # run files shown beside the table: names, or (config) -> names
    headline: tuple = ()  # row columns named beside its pictures; (): the row's test metrics but test_loss
    # dataset -> (history.csv column, ">=" or "<=", value): the row records when a run first reached it
    targets: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    data_forms: tuple = ()  # what --data may be (recipes/runtime/forms.py); (): the recipe's own sets only
    trains: bool = True  # False: a recipe that trains nothing (deepdream): no resume, no saved model, no test split
    summary: str = ""  # one line for `zoo list`
    doc: str = ""  # the module docstring, for --help

    def __post_init__(self):
        for dataset, (column, direction, _) in self.targets.items():
            if direction not in (">=", "<=") or not column.startswith("val_"):
                raise ValueError(f"Recipe {self.name!r}: the target for {dataset!r} must be (a val_* column of "
                                 f"history.csv, '>=' or '<=', a value); got {(column, direction)}")
        if "quick" not in self.presets:
            raise ValueError(f"Recipe {self.name!r} has no 'quick' preset: every recipe needs one that trains in "
                             f"seconds on data that ships inside an installed package")

    def published(self, config) -> tuple:
        """The run files this recipe copies beside its table, for ``config``."""
        return tuple(self.publish(config) if callable(self.publish) else self.publish)
