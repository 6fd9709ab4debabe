"""Results rows, the per-recipe CSVs and the markdown tables in ``results/README.md``, each with the
pictures its runs published (``pictures.py`` matches them to their rows).

A finished run appends exactly one row to ``results/<recipe>.csv``. The write is atomic
(a temporary file renamed over the old one), so a crash never leaves a partial row, and
locked, so runs finishing at once keep every row; ``results/README.md`` is regenerated from
all CSVs after each write.
"""

from __future__ import annotations

import glob
import os
import shutil

import pandas as pd

from recipes.runtime import files, pictures

# The columns every row has, in order; test metrics follow as test_<name>.
COLUMNS = [
    "date", "recipe", "model", "dataset", "dataset_source", "train_examples", "params", "epochs",
    "per_replica_batch_size", "global_batch_size", "learning_rate", "workers", "replicas", "strategy", "device", "backend",
    "tensorflow_version", "keras_version", "mixed_precision", "jit_compile", "steps_per_execution",
    "commit", "seed", "preset", "train_seconds", "samples_per_second",
]
TAIL_COLUMNS = ["command"]
COLUMN_MEANINGS = {
    "dataset_source": "where the data came from: tfds download, a local import (and whether its sha256 "
                      "matches tfds's registry), or the package it ships in",
    "train_examples": "training examples used (fewer than the split only with --train-examples)",
    "params": "trainable + non-trainable parameters",
    "global_batch_size": "per-replica batch x replicas (of all workers)",
    "workers, replicas": "processes in the cluster (multi_worker; 1 otherwise; empty in rows from before the "
                         "column) and replicas in sync over all of them",
    "device": "the hardware the run used",
    "commit": "git commit of the code (-dirty: with uncommitted changes)",
    "train_seconds": "wall time of model.fit, compilation included; a resumed run adds its interrupted "
                     "invocations' finished epochs (runs before this clock existed count only the last)",
    "samples_per_second": "training examples processed per second over the whole fit",
    "test_*": "metrics on the held-out test split after the last epoch",
    "tokens_per_second": "for sequence models: tokens (characters, words) processed per second in training",
    "preset": "the named presets the run used (zoo run RECIPE --help lists them), empty for none or in rows "
              "from before the column",
    "baseline_seconds": "wall seconds of a recipe's baseline stage (a comparison trained after the run)",
    "target, epochs_to_target, seconds_to_target": "the recipe's target for the data set (its test metric, e.g. "
                                                   "accuracy >= 0.992 on MNIST), the epochs trained when a per-epoch "
                                                   "evaluation first reached it and the wall seconds of those epochs "
                                                   "(their evaluations included); empty: not reached, or rows from "
                                                   "before the columns",
}
# Columns shown in the README table (the CSV holds them all).
SUMMARY_COLUMNS = ["date", "model", "dataset", "epochs", "global_batch_size", "replicas", "device",
                   "train_seconds", "samples_per_second"]


def ordered_columns(columns) -> list[str]:
    metrics = sorted(column for column in columns if column.startswith("test_"))
    other = [column for column in columns
             if column not in COLUMNS and column not in TAIL_COLUMNS and not column.startswith("test_")]
    return ([column for column in COLUMNS if column in columns] + metrics + sorted(other)
            + [column for column in TAIL_COLUMNS if column in columns])


def append_row(results_dir: str, recipe: str, row: dict, published: dict | None = None) -> str:
    """Append ``row`` to ``<results_dir>/<recipe>.csv`` atomically and copy the run's ``published`` files
    (artifact name -> path in the run folder) to ``<results_dir>/<recipe>/`` before the README is
    regenerated, so it shows them under their row; returns the CSV path."""
    missing = [column for column in COLUMNS if column not in row]
    if missing:
        raise ValueError(f"Results row lacks columns {missing}")
    path = os.path.join(results_dir, f"{recipe}.csv")
    # Locked: two runs finishing at once would each read the table, add their row and replace the
    # file, and one row would be lost.
    with files.locked(results_dir):
        table = pd.DataFrame([row])
        if os.path.exists(path):
            table = pd.concat([read_csv(path), table], ignore_index=True)
        table = table[ordered_columns(table.columns)]
        files.write_text(path, table.to_csv(index=False))
        for artifact, source in (published or {}).items():
            os.makedirs(os.path.join(results_dir, recipe), exist_ok=True)
            shutil.copyfile(source, os.path.join(results_dir, recipe, pictures.published_name(row, artifact)))
        write_readme(results_dir)
    return path


def read_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"commit": str}, keep_default_na=False, na_values=[""])


def _cell(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: the metric does not apply to this row
            return ""
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def markdown_table(table: pd.DataFrame) -> str:
    # Test metrics, then the recipe's own figures (baselines, tokens per second ...).
    metrics = [column for column in ordered_columns(table.columns)
               if column not in COLUMNS and column not in TAIL_COLUMNS]
    columns = [column for column in SUMMARY_COLUMNS[:3] if column in table] + metrics + \
              [column for column in SUMMARY_COLUMNS[3:] if column in table]
    return markdown_rows(table, columns)


def markdown_rows(table: pd.DataFrame, columns: list) -> str:
    """``columns`` of every row of ``table`` as a markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[column]) for column in columns) + " |")
    return "\n".join(lines)


def declared(name: str):
    """The recipe ``name`` as this checkout declares it; None for a table of a recipe it does not have."""
    import recipes

    try:
        return recipes.load(name)
    except recipes.UnknownRecipeError:
        return None


def headline(row, columns: tuple) -> str:
    """``column value`` for each of ``columns`` the row has a value in; with none declared (``Recipe.headline``),
    the row's test metrics but its loss."""
    columns = columns or tuple(column for column in row.index if column.startswith("test_") and column != "test_loss")
    return ", ".join(f"{column} {_cell(row[column])}" for column in columns
                     if column in row.index and not pd.isna(row[column]))


def recipe_section(results_dir: str, recipe: str) -> list[str]:
    """The README's lines for one recipe: its table, every row's command, its own columns, its pictures."""
    table = read_csv(os.path.join(results_dir, f"{recipe}.csv"))
    lines = [f"## {recipe}", "", markdown_table(table), "", "Commands and data sources:", ""]
    for index, row in table.iterrows():
        lines.append(f"{index + 1}. `{row['command']}` at commit {row['commit']} ({row['dataset_source']})")
    lines.append("")
    declaration = declared(recipe)
    if declaration and declaration.columns:
        lines += ["Columns of this recipe:", ""] + [f"- `{name}`: {meaning}"
                                                    for name, meaning in declaration.columns.items()]
        lines.append("")
    columns = tuple(declaration.headline) if declaration else ()
    return lines + pictures.section(results_dir, recipe, table, lambda row: headline(row, columns))


def column_meanings() -> list[str]:
    return ["## Column meanings (every recipe)", ""] + [f"- `{name}`: {meaning}"
                                                         for name, meaning in COLUMN_MEANINGS.items()]


def recipes_with_rows(results_dir: str) -> list[str]:
    from recipes.runtime.bench_run import CSV_NAME  # the benchmarks' table has a section of its own

    return [os.path.splitext(os.path.basename(path))[0]
            for path in sorted(glob.glob(os.path.join(results_dir, "*.csv"))) if os.path.basename(path) != CSV_NAME]


def write_readme(results_dir: str) -> str:
    """Regenerate ``<results_dir>/README.md`` from every CSV in it and the pictures beside them."""
    sections = ["# Results", "",
                "Every row below comes from a real run of a recipe; `<recipe>.csv` beside this file "
                "holds all columns, including the exact command, the data source, the device and the "
                "commit. This file is regenerated by the runtime after each run: do not edit it by hand. "
                + pictures.MATCHING_RULE, ""]
    for recipe in recipes_with_rows(results_dir):
        sections += recipe_section(results_dir, recipe)
    from recipes.runtime import bench_run

    sections += bench_run.section(results_dir) + column_meanings()
    path = os.path.join(results_dir, "README.md")
    files.write_text(path, "\n".join(sections) + "\n")
    return path
