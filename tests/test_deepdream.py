"""DeepDream: the ascent raises the chosen layers' activations on real photos, the dream keeps
the input's size, the quick mode runs on 2 logical CPU replicas, and bad input fails clearly."""

import numpy as np
import pytest
from PIL import Image

from recipes import deepdream
from recipes.runtime import config as config_lib, pictures
from recipes.runtime import results, train
from recipes.runtime.data import DataError
from tests.conftest import assert_handled_failure, run_cli



def make_config(tmp_path, **values):
    return config_lib.make_config(deepdream.Config, **{**deepdream.PRESETS["quick"], "quick": True, "strategy": "cpu",
                                                       "output_dir": str(tmp_path / "run"),
                                                       "results_dir": str(tmp_path / "results"), **values})


def test_quick_mode_on_two_replicas_amplifies_the_layers_and_publishes(tmp_path):
    result = run_cli("run", "deepdream", "--quick", "--cpu-replicas", "2", "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "strategy=mirrored replicas=2" in result.stdout and "octave 2/2 at 64x96: objective" in result.stdout
    table = results.read_csv(tmp_path / "results" / "deepdream.csv")
    assert len(table) == 1 and set(results.COLUMNS) <= set(table.columns)
    row = table.iloc[0]
    assert (row["replicas"], row["strategy"], row["global_batch_size"]) == (2, "mirrored", 2)
    assert (row["model"], row["dataset"], row["weights"], row["epochs"]) == ("mobilenet_v2", "chelsea", "none", 2)
    # scikit-image's cat, random weights: the mean squared activation of the chosen layers must grow.
    assert row["dream_objective"] > 1.3 * row["start_objective"] > 0, (row["start_objective"], row["dream_objective"])
    assert row["objective_gain"] == pytest.approx(row["dream_objective"] / row["start_objective"])
    assert 0 < row["ascent_cpu_seconds"] and 0 < row["train_seconds"]
    # --quick shrinks the 300x451 photo to 64x96; the dream has that size, the comparison both side by side.
    assert Image.open(tmp_path / "run" / "dream.png").size == (96, 64)
    assert Image.open(tmp_path / "run" / "comparison.png").size == (2 * 96 + 8, 64)
    for artifact in deepdream.RECIPE.published(None):
        assert (tmp_path / "results" / "deepdream" / pictures.published_name(row, artifact)).exists()
    assert (tmp_path / "run" / "config.json").exists()


def test_an_image_file_of_any_size_and_mode_dreams_at_its_own_size(tmp_path):
    import skimage

    path = tmp_path / "camera crop.png"
    Image.fromarray(skimage.data.camera()[100:177, 150:253]).save(path)  # grey, 77x103: odd sizes
    config = make_config(tmp_path, image=str(path), max_side=0, steps=5)
    row = train.run(deepdream.RECIPE, config, command="test", log=lambda message: None)
    dreamt = Image.open(tmp_path / "run" / "dream.png")
    assert (dreamt.size, dreamt.mode) == ((103, 77), "RGB")
    assert row["dataset"] == "camera crop" and "sha256" in row["dataset_source"]
    assert (row["replicas"], row["image_shape"]) == (1, "77x103")
    assert row["dream_objective"] > 1.2 * row["start_objective"], (row["start_objective"], row["dream_objective"])
    assert np.abs(np.asarray(dreamt.convert("L"), "float32") - np.asarray(Image.open(path), "float32")).mean() > 2


def test_octaves_shrink_by_the_scale_and_end_at_the_image_size():
    config = config_lib.make_config(deepdream.Config)
    sizes = deepdream.octave_sizes(300, 451, config)
    assert sizes == [(109, 164), (153, 230), (214, 322), (300, 451)]
    with pytest.raises(config_lib.ConfigError, match=r"shrinks the 64x96 image to 23x35, below 32 pixels"):
        deepdream.octave_sizes(64, 96, config)


def test_settings_that_do_not_apply_or_are_out_of_range_are_refused():
    with pytest.raises(config_lib.ConfigError, match="--batch-size does not apply to deepdream"):
        config_lib.make_config(deepdream.Config, batch_size=8)
    with pytest.raises(config_lib.ConfigError, match="--epochs is set by --octaves"):
        config_lib.make_config(deepdream.Config, epochs=10)
    with pytest.raises(config_lib.ConfigError, match="--octave-scale > 1"):
        config_lib.make_config(deepdream.Config, octave_scale=1.0)


def test_an_unreadable_image_file_is_a_data_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(DataError, match="is not an image Pillow can read"):
        deepdream.load_image(make_config(tmp_path, image=str(path)))


def test_missing_image_and_unknown_layer_exit_nonzero_with_the_fix(tmp_path):
    options = ["--quick", "--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "run")]
    missing = run_cli("run", "deepdream", *options, "--image", str(tmp_path / "nowhere.jpg"))
    assert_handled_failure(missing, 1, "deepdream", "nowhere.jpg", "no such file", "'chelsea'")
    unknown = run_cli("run", "deepdream", *options, "--layers", "block_5_add,block_99_add")
    assert_handled_failure(unknown, 2, "deepdream", "--layers ['block_99_add'] not in", "'block_16_project_BN'")
    assert not (tmp_path / "results").exists()
