"""Published pictures: how a run's pictures (and text samples) in ``results/<recipe>/`` are named,
matched back to their rows, and shown under each recipe's table in ``results/README.md``.

A published file is named ``<model>-<dataset>-<stamp>-<kind>``, the stamp being the row's ``date``
without ``-`` and ``:`` (2026-11-26T10:31:06Z -> 20261126T103106Z), so a file belongs to the row
whose model, data set and stamp begin its name, exactly; nothing is matched by a near date. A row
shows no picture when its run published none (a classifier, a run on --data), or when it ran before
published names carried the date (2026-11-25 12:48 UTC), if a later run on the same data set replaced
its picture. Files that match no row are listed as such, never hidden.
"""

from __future__ import annotations

import os
import urllib.parse

import pandas as pd

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg")
IMAGE_HEIGHT = 220  # pixels on the page; a height, not a width, keeps wide forecasts and square grids in one row
MATCHING_RULE = ("Pictures and text samples a run published lie in `<recipe>/` beside this file, named "
                 "`<model>-<dataset>-<date without - and :>-<kind>`, and are shown under their recipe's table, "
                 "each with its row; a row without them published none, or ran before the names carried the "
                 "date, when a later run on the same data set replaced its picture.")


def stamp(date: str) -> str:
    """The row's ``date`` as published names carry it: 2026-11-26T10:31:06Z -> 20261126T103106Z."""
    return str(date).replace("-", "").replace(":", "")


def published_name(row, artifact: str) -> str:
    """File name of a run's published picture: model, data set and the row's date make it unique."""
    return f"{row['model']}-{row['dataset']}-{stamp(row['date'])}-{artifact}"


def match(results_dir: str, recipe: str, table: pd.DataFrame) -> tuple[dict[int, list[str]], list[str]]:
    """The published files of each row (row index -> file names, sorted by kind) and the files of
    ``results_dir/recipe/`` that begin no row's name."""
    folder = os.path.join(results_dir, recipe)
    names = sorted(name for name in os.listdir(folder) if not name.startswith(".")) if os.path.isdir(folder) else []
    by_row, matched = {}, set()
    for index, row in table.iterrows():
        prefix = published_name(row, "")
        mine = [name for name in names if name.startswith(prefix)]
        if mine:
            by_row[index] = mine
            matched.update(mine)
    return by_row, [name for name in names if name not in matched]


def kind(row, name: str) -> str:
    return os.path.splitext(name[len(published_name(row, "")):])[0]


def link(recipe: str, name: str) -> str:
    """The file's address relative to the README; quoted, as a data set named after a user's folder may hold spaces."""
    return urllib.parse.quote(f"{recipe}/{name}")


def section(results_dir: str, recipe: str, table: pd.DataFrame, figures=lambda row: "") -> list[str]:
    """Markdown lines showing each row's published files under its number in the table's command list,
    with ``figures(row)`` (its headline metrics); ``[]`` when the recipe published none."""
    by_row, unmatched = match(results_dir, recipe, table)
    if not by_row and not unmatched:
        return []
    lines = ["Pictures and samples:", ""]
    for index, names in by_row.items():
        row = table.loc[index]
        caption = figures(row)
        preset = row.get("preset")  # several runs on one data set differ by it (the mlp's lessons)
        lines += [f"**Row {index + 1}**: {row['model']} on {row['dataset']}, {row['date']}"
                  + (f", preset {preset}" if isinstance(preset, str) and preset else "")
                  + (f": {caption}" if caption else ""), ""]
        images = [name for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
        if images:
            lines += [" ".join(f'<img src="{link(recipe, name)}" alt="{kind(row, name)}" title="{kind(row, name)}" '
                               f'height="{IMAGE_HEIGHT}">' for name in images), ""]
        others = [name for name in names if name not in images]
        if others:
            lines += [", ".join(f"[{kind(row, name)}]({link(recipe, name)})" for name in others), ""]
    if unmatched:
        lines += ["Files that match no row (no row has their model, data set and date): "
                  + ", ".join(f"[{name}]({link(recipe, name)})" for name in unmatched), ""]
    return lines
