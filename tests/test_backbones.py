"""Pretrained backbones: every family builds, the local ImageNet weights classify real
photos, freezing freezes, BatchNorm statistics stay put in phase two, checkpoints cut
where asked, the fine-tune recipe's cached split computes what the whole model does, and
bad weights or settings fail clearly."""

import json
import os

import numpy as np
import pytest

import keras
from recipes import finetune
from recipes.runtime import clocks
from recipes.runtime import results
from tests.conftest import assert_handled_failure, run_cli
from zoo import backbones

IMAGENET_FILE = "mobilenet_v2_imagenet.weights.h5"


def images(shape, batch=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape)).astype("uint8")


@pytest.mark.parametrize("name", backbones.list_backbones())
def test_every_backbone_builds_without_weights_and_takes_raw_pixels(name):
    model = backbones.backbone(name, weights=None, input_shape=(64, 64, 3))
    features = model.predict(images((64, 64, 3)), verbose=0)
    assert features.shape[0] == 4 and features.ndim == 2 and np.isfinite(features).all()
    groups = backbones.blocks(model)
    assert len(groups) >= 10, [group for group, _ in groups]
    assert backbones.backbone_of(model) is not model  # the application sits inside, after the preprocessing


def center_crop(photo, size=224):
    import tensorflow as tf

    height, width = photo.shape[:2]
    scale = 256 / min(height, width)
    resized = tf.image.resize(photo[None].astype("float32"), (round(height * scale), round(width * scale)),
                              antialias=True).numpy()[0]
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top:top + size, left:left + size]


def test_local_imagenet_weights_name_scikit_image_photos(shared_weights):
    """The torchvision-converted file, loaded the way torchvision computes, recognises the
    cat and the espresso that ship with scikit-image; Keras's own layout gets them wrong or unsure."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the photos")
    path = shared_weights(IMAGENET_FILE)
    with open(os.path.join(os.path.dirname(path), "imagenet_class_names.json")) as handle:
        names = json.load(handle)
    photos = np.stack([center_crop(skimage_data.chelsea()), center_crop(skimage_data.coffee())])
    model = backbones.backbone("mobilenet_v2", weights=path, weights_format="torchvision", include_top=True)
    probabilities = model.predict(photos, verbose=0)
    top = [names[str(index)] for index in probabilities.argmax(axis=1)]
    assert top[0].startswith("Egyptian cat") and probabilities[0].max() > 0.5, (top, probabilities.max(axis=1))
    assert top[1].startswith("espresso") and probabilities[1].max() > 0.9, (top, probabilities.max(axis=1))
    # Keras's padding, epsilon and [-1, 1] scaling with the same numbers: a different network.
    wrong = backbones.backbone("mobilenet_v2", weights=path, weights_format="keras", include_top=True)
    assert not np.allclose(wrong.predict(photos, verbose=0), probabilities, atol=0.05)


def test_bad_weights_fail_clearly(tmp_path):
    with pytest.raises(backbones.WeightsError, match="no such file"):
        backbones.backbone("mobilenet_v2", weights=str(tmp_path / "missing.weights.h5"), input_shape=(32, 32, 3))
    other = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3))
    other.save_weights(tmp_path / "v3.weights.h5")
    with pytest.raises(backbones.WeightsError, match="does not fit backbone 'mobilenet_v2'"):
        backbones.backbone("mobilenet_v2", weights=str(tmp_path / "v3.weights.h5"), input_shape=(32, 32, 3))
    with pytest.raises(backbones.WeightsError, match=".weights.h5"):
        backbones.backbone("mobilenet_v2", weights=str(tmp_path / "v3.weights.h5.bak"), input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="Unknown backbone 'mobilenet_v9'.*mobilenet_v2"):
        backbones.backbone("mobilenet_v9")
    with pytest.raises(ValueError, match="torchvision.*needs the path"):
        backbones.backbone("mobilenet_v2", weights=None, weights_format="torchvision")
    with pytest.raises(ValueError, match="RGB"):
        backbones.backbone("mobilenet_v2", input_shape=(32, 32, 1))


def test_a_zoo_checkpoint_is_cut_below_its_classifier_or_at_a_named_layer(digit_checkpoint):
    path, x, _ = digit_checkpoint
    saved = keras.models.load_model(path)
    features = backbones.from_checkpoint(path)
    assert features.output_shape == (None, 64)  # the dense layer's 64 units, the classifier cut off
    dense = keras.Model(saved.input, saved.get_layer("dense").output)
    np.testing.assert_allclose(features.predict(x[:8], verbose=0), dense.predict(x[:8], verbose=0), rtol=1e-5)
    assert backbones.from_checkpoint(path, layer="pool").output_shape[1:] == saved.get_layer("pool").output.shape[1:]
    with pytest.raises(ValueError, match="layer='conv_9' is not in model.*conv_0"):
        backbones.from_checkpoint(path, layer="conv_9")
    with pytest.raises(backbones.WeightsError, match=".keras"):
        backbones.from_checkpoint(path + ".missing")


def weights_of(layers):
    return [weight.numpy().copy() for layer in layers for weight in layer.weights]


def test_freezing_freezes_the_backbone_and_trains_the_head(digit_checkpoint):
    path, x, y = digit_checkpoint
    model = backbones.classifier(backbones.from_checkpoint(path), num_classes=10, input_shape=(8, 8, 1))
    backbones.freeze(model)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    network = backbones.backbone_of(model)
    backbone_before, head_before = weights_of(network.layers), weights_of([model.get_layer("classifier")])
    model.train_on_batch(x[:32], y[:32])
    for before, after in zip(backbone_before, weights_of(network.layers)):
        np.testing.assert_array_equal(before, after)
    assert any(not np.allclose(a, b) for a, b in zip(head_before, weights_of([model.get_layer("classifier")])))


def test_phase_two_trains_the_top_blocks_and_leaves_batchnorm_statistics_alone():
    model = backbones.classifier(backbones.backbone("mobilenet_v2", input_shape=(32, 32, 3)), num_classes=3)
    unfrozen = backbones.unfreeze_top(model, 2)
    assert unfrozen == ["block_16", "Conv_1"]
    groups = dict(backbones.blocks(model))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    norms = [layer for layer in backbones.backbone_of(model).layers if isinstance(layer, keras.layers.BatchNormalization)]
    statistics, bottom = weights_of(norms), weights_of(groups["block_15"])
    # What the optimizer may move: the top two blocks' convolutions and the new head, no BatchNorm.
    expected = {id(weight) for name in unfrozen for layer in groups[name] for weight in layer.trainable_weights
                if not isinstance(layer, keras.layers.BatchNormalization)}
    expected |= {id(weight) for weight in model.get_layer("classifier").weights}
    assert {id(weight) for weight in model.trainable_weights} == expected
    head_before = weights_of([model.get_layer("classifier")])
    model.train_on_batch(images((32, 32, 3), batch=8), np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    for before, after in zip(statistics, weights_of(norms)):  # moving mean/variance and scale/offset
        np.testing.assert_array_equal(before, after)
    for before, after in zip(bottom, weights_of(groups["block_15"])):
        np.testing.assert_array_equal(before, after)
    assert any(not np.allclose(a, b) for a, b in zip(head_before, weights_of([model.get_layer("classifier")])))
    with pytest.raises(ValueError, match=r"num_blocks must be an integer in \[0, 19\]"):
        backbones.unfreeze_top(model, 20)


def test_the_scratch_baseline_trains_every_layer_of_the_fine_tuned_network():
    # The fine-tuned network's flags at the baseline: backbone frozen but its top blocks, BatchNorm frozen.
    model = backbones.classifier(backbones.backbone("mobilenet_v2", input_shape=(32, 32, 3)), num_classes=3)
    backbones.freeze(model)
    backbones.unfreeze_top(model, 2)
    frozen_before = [layer.trainable for layer in model._flatten_layers()]
    scratch = finetune.scratch_network(model)
    assert all(layer.trainable for layer in scratch._flatten_layers())
    statistics = [weight for weight in scratch.weights if weight.path.endswith(("moving_mean", "moving_variance"))]
    assert len(scratch.trainable_weights) == len(scratch.weights) - len(statistics) > len(model.trainable_weights)
    assert [layer.trainable for layer in model._flatten_layers()] == frozen_before  # the fine-tuned one untouched
    # One step moves the stem (frozen in the fine-tune) and BatchNorm's statistics (training mode).
    scratch.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    network = backbones.backbone_of(scratch)
    stem_before, norm_before = weights_of([network.get_layer("Conv1")]), weights_of([network.get_layer("bn_Conv1")])
    scratch.train_on_batch(images((32, 32, 3), batch=8), np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    assert not np.allclose(stem_before[0], weights_of([network.get_layer("Conv1")])[0])
    moving_mean = [weight.path.endswith("moving_mean") for weight in network.get_layer("bn_Conv1").weights]
    assert not np.allclose(norm_before[moving_mean.index(True)],
                           weights_of([network.get_layer("bn_Conv1")])[moving_mean.index(True)])


def test_set_trainable_reaches_layers_frozen_one_by_one_inside_a_trainable_model():
    model = backbones.classifier(backbones.backbone("mobilenet_v2", input_shape=(32, 32, 3)), num_classes=3)
    network = backbones.backbone_of(model)
    for layer in network.layers[:10]:
        layer.trainable = False
    assert model.trainable and network.trainable
    assert backbones.set_trainable(model, True) is model
    assert all(layer.trainable for layer in model._flatten_layers())
    backbones.set_trainable(model, False)
    assert not any(layer.trainable for layer in model._flatten_layers()) and not model.trainable_weights


def test_finetune_from_a_zoo_checkpoint_on_two_replicas(digit_checkpoint, tmp_path):
    path, _, _ = digit_checkpoint
    # Two blocks, so phase 2 starts from feature maps and can shift them.
    options = ("--quick", "--backbone", path, "--unfreeze-blocks", "2", "--mirror",
               "--features-cache", str(tmp_path / "features"), "--results-dir", str(tmp_path / "results"))
    result = run_cli("run", "finetune", *options, "--cpu-replicas", "2", "--feature-shift", "0.25",
                     "--finetune-schedule", "cosine", "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    import pandas as pd

    row = pd.read_csv(tmp_path / "results" / "finetune.csv").iloc[0]
    # The features stay in the cache; a run differing in phase 2 only (one replica, no shifts)
    # takes them from there and counts the time they took in its own.
    kept = list((tmp_path / "features").iterdir())
    assert len(kept) == 1 and json.loads((kept[0] / "key.json").read_text())["mirror"] is True
    made = sum(clocks.read_time(str(kept[0] / f"features_{split}.time.json"))["cpu_seconds"]
               for split in ("train", "test"))
    stamps = {str(file.relative_to(kept[0])): file.stat().st_mtime_ns for file in kept[0].glob("*/*.npy")}
    assert sorted(stamps) == ["features_test/features.npy", "features_test/labels.npy", "features_train/features.npy",
                              "features_train/labels.npy", "features_train/mirrored.npy"]
    again = run_cli("run", "finetune", *options, "--scratch", "false", "--output-dir", str(tmp_path / "again"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"kept in {kept[0]}" in again.stdout
    assert {str(file.relative_to(kept[0])): file.stat().st_mtime_ns
            for file in kept[0].glob("*/*.npy")} == stamps  # not made again
    second = pd.read_csv(tmp_path / "results" / "finetune.csv").iloc[1]
    assert second["finetune_cpu_seconds"] > made > 0 and 0.3 < second["test_accuracy"] <= 1.0
    assert row["model"] == "small_convnet-checkpoint" and row["weights"] == "checkpoint small_convnet.keras"
    assert row["epochs"] == 4 and row["replicas"] == 2
    for column in ("test_accuracy", "phase1_accuracy", "scratch_accuracy"):
        assert 0.3 < row[column] <= 1.0, (column, row[column])
    # On a CPU the baseline's budget is the fine-tune's CPU time.
    assert row["budget_clock"] == "cpu_seconds"
    assert row["scratch_cpu_seconds"] >= 0.9 * row["finetune_cpu_seconds"] > 0
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3]  # both phases, numbered on


@pytest.mark.parametrize("arguments, message", [
    (["--epochs", "7"], "--epochs is set by the phases"),
    (["--unfreeze-blocks", "9"], "--unfreeze-blocks: num_blocks must be an integer in"),
    (["--backbone", "missing.keras"], "expected an existing '.keras' file"),
    (["--feature-shift", "0.5"], "--feature-shift must be in [0, 0.5)"),
    (["--feature-shift", "0.2"], "--feature-shift moves feature maps"),  # the quick cut gives flat features
])
def test_finetune_bad_settings_exit_with_a_clear_message_and_no_row(arguments, message, tmp_path):
    result = run_cli("run", "finetune", "--quick", *arguments, "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert_handled_failure(result, 2, None, message)  # some are refused while parsing, before the run
    assert not (tmp_path / "results" / "finetune.csv").exists()


def test_a_model_file_that_carries_code_is_refused_unless_trusted(tmp_path):
    """A Lambda layer's function is Python code from whoever made the file: safe mode refuses it,
    with the flag that loads it anyway."""
    inputs = keras.Input((8, 8, 1))
    doubled = keras.layers.Lambda(lambda images: images * 2.0, name="doubled")(inputs)
    hidden = keras.layers.Dense(16, name="hidden")(keras.layers.Flatten()(doubled))
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden)).save(path)
    with pytest.raises(backbones.WeightsError, match="carries Python code .* --trust-model-code"):
        backbones.from_checkpoint(path)
    assert backbones.from_checkpoint(path, trust_code=True).output_shape == (None, 16)

    options = ["--quick", "--backbone", path, "--scratch", "false", "--results-dir", str(tmp_path / "results"),
               "--output-dir", str(tmp_path / "run")]
    refused = run_cli("run", "finetune", *options)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "error: [finetune]" in refused.stderr and "carries Python code" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "results").exists()
    trusted = run_cli("run", "finetune", *options, "--trust-model-code")
    assert trusted.returncode == 0, trusted.stdout[-2000:] + trusted.stderr[-2000:]
    assert results.read_csv(tmp_path / "results" / "finetune.csv").iloc[0]["test_accuracy"] > 0.3
