"""Results rows: atomic appends, column order, the regenerated markdown table, the published pictures
under their rows, and `zoo results [RECIPE]`."""

import glob
import os
import re
import shlex
import shutil
import urllib.parse

import pandas as pd
import pytest

from recipes.runtime import pictures, results
from tests.conftest import run_cli


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


RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
LINK = re.compile(r'<img src="([^"]+)"|\]\(([^)]+)\)')


def readme_sections(readme: str) -> dict[str, str]:
    """``## recipe`` -> the text of its section."""
    return {part.split("\n", 1)[0]: part for part in readme.split("\n## ")[1:]}


def linked_files(text: str) -> list[str]:
    return [urllib.parse.unquote(image or link) for image, link in LINK.findall(text)
            if not (image or link).startswith("http")]


def published_files() -> list[str]:
    return sorted(os.path.relpath(path, RESULTS) for path in glob.glob(os.path.join(RESULTS, "*", "*")))


def test_the_committed_readme_is_what_its_csvs_and_pictures_regenerate(tmp_path):
    shutil.copytree(RESULTS, tmp_path / "results")
    results.write_readme(tmp_path / "results")
    assert (tmp_path / "results" / "README.md").read_text() == open(os.path.join(RESULTS, "README.md")).read(), \
        "results/README.md differs from what `zoo results` writes: regenerate it with `zoo results`"


def test_every_published_picture_is_linked_under_its_own_row_and_every_link_exists():
    sections = readme_sections(open(os.path.join(RESULTS, "README.md")).read())
    links = [link for section in sections.values() for link in linked_files(section)]
    assert sorted(links) == published_files()  # each file once, each link a file under results/
    assert "match no row" not in "".join(sections.values())
    for recipe, section in sections.items():
        if recipe.startswith(("Column meanings", "Benchmarks")):
            continue
        table = results.read_csv(os.path.join(RESULTS, f"{recipe}.csv"))
        captions = section.split("\n**Row ")[1:]
        for caption in captions:
            row = table.iloc[int(caption.split("**", 1)[0]) - 1]
            shown = linked_files(caption)
            assert shown and all(link.startswith(f"{recipe}/{pictures.published_name(row, '')}") for link in shown)
            assert f"{row['model']} on {row['dataset']}, {row['date']}" in caption.split("\n", 1)[0]


# Rows that published a picture which a later run on the same data set overwrote, before published
# names carried the row's date (commit 420744a): the circle and spiral runs of 2026-11-25.
BEFORE_DATED_NAMES = "2026-11-25T12:48:11Z"
# The mlp recipe's Playground pictures (training.gif, network.png, loss.png) came on 2026-12-01; runs before
# published decision_boundary.png only.
PLAYGROUND_PICTURES = ("training.gif", "network.png", "loss.png")
BEFORE_PLAYGROUND_PICTURES = "2026-12-01T15:00:00Z"


def test_every_committed_row_whose_run_published_files_has_them():
    import recipes
    from recipes.runtime.config import parse_overrides

    missing = []
    for name in results.recipes_with_rows(RESULTS):  # the recipes' tables; benchmarks.csv has no run files
        table = results.read_csv(os.path.join(RESULTS, f"{name}.csv"))
        for _, row in table.iterrows():
            recipe = recipes.load(row["recipe"])
            config = parse_overrides(recipe.config, shlex.split(row["command"])[3:], presets=recipe.presets,
                                     data_forms=recipe.data_forms)
            for artifact in recipe.published(config):
                if row["recipe"] == "mlp" and artifact in PLAYGROUND_PICTURES and row["date"] < BEFORE_PLAYGROUND_PICTURES:
                    continue
                if not os.path.exists(os.path.join(RESULTS, row["recipe"], pictures.published_name(row, artifact))):
                    missing.append((row["recipe"], row["date"], artifact))
    assert all(date < BEFORE_DATED_NAMES for _, date, _ in missing), missing
    assert [(recipe, date) for recipe, date, _ in missing] == [("mlp", "2026-11-25T12:19:28Z"),
                                                              ("mlp", "2026-11-25T12:23:53Z")]


def test_pictures_are_matched_to_their_row_by_model_data_set_and_date(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for artifact in ("samples.png", "sample.txt"):
        (run / artifact).write_text(artifact)
    first = make_row(model="gen-v2", dataset="digits", date="2026-01-01T10:00:00Z", test_fid=12.5)
    second = make_row(model="gen-v2", dataset="digits", date="2026-01-01T10:00:01Z")
    results.append_row(tmp_path / "results", "gan", first,
                       published={artifact: run / artifact for artifact in ("samples.png", "sample.txt")})
    # The README the row's own append writes already shows the files it copied.
    readme = (tmp_path / "results" / "README.md").read_text()
    assert f'<img src="gan/{pictures.published_name(first, "samples.png")}"' in readme
    results.append_row(tmp_path / "results", "gan", second, published={"samples.png": run / "samples.png"})
    results.append_row(tmp_path / "results", "gan", make_row(model="plain"))
    folder_named = make_row(model="plain", dataset="my digits", date="2026-01-02T00:00:00Z")  # --data my\ digits
    results.append_row(tmp_path / "results", "gan", folder_named, published={"samples.png": run / "samples.png"})
    (tmp_path / "results" / "gan" / "gen-v2-digits-samples.png").write_text("a file of no row")
    results.write_readme(tmp_path / "results")
    readme = readme_sections((tmp_path / "results" / "README.md").read_text())["gan"]
    row_one, row_two = readme.split("\n**Row ")[1:3]
    # The gan recipe's headline: test_fid, and test_class_accuracy where the row has one.
    assert row_one.startswith("1**: gen-v2 on digits, 2026-01-01T10:00:00Z: test_fid 12.5000\n")
    assert linked_files(row_one) == ["gan/gen-v2-digits-20260101T100000Z-samples.png",
                                     "gan/gen-v2-digits-20260101T100000Z-sample.txt"]
    assert "[sample](gan/gen-v2-digits-20260101T100000Z-sample.txt)" in row_one
    second_files = linked_files(row_two.split("Files that match no row")[0])
    assert second_files == ["gan/gen-v2-digits-20260101T100001Z-samples.png"]
    assert "**Row 3**" not in readme  # no pictures, no caption
    assert ('**Row 4**: plain on my digits, 2026-01-02T00:00:00Z\n\n'
            '<img src="gan/plain-my%20digits-20260102T000000Z-samples.png"') in readme  # no test_fid: no figures
    assert "match no row (no row has their model, data set and date): [gen-v2-digits-samples.png]" in readme


def test_zoo_results_recipe_prints_its_section_and_writes_nothing(tmp_path):
    result = run_cli("results", "cnn")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("## cnn\n") and "\n## gan" not in result.stdout
    table = results.read_csv(os.path.join(RESULTS, "cnn.csv"))
    assert all(f"| {date} |" in result.stdout for date in table["date"])
    assert "`zoo run cnn --dataset fashion_mnist`" in result.stdout and "## Column meanings" in result.stdout
    result = run_cli("results", "gan")
    assert '<img src="gan/dcgan-mnist-' in result.stdout and "**Row 2**: conditional_dcgan" in result.stdout
    result = run_cli("results", "cnnn")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "error: Unknown recipe 'cnnn'. Did you mean 'cnn'" in result.stderr
    result = run_cli("results", "gan", "--results-dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "No rows for 'gan' in" in result.stderr and "Recipes with rows there: none" in result.stderr
    assert os.listdir(tmp_path) == []
