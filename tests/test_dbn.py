"""Deep belief networks: contrastive divergence learns real digits, pretrained RBM weights carry
into the classifier unchanged, pretraining + fine-tuning classifies, the RBM round-trips through
.keras, an interrupted run resumes after its finished RBMs, and bad settings fail clearly."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import zoo
from recipes import dbn as recipe
from recipes.runtime import config as config_lib
from recipes.runtime import data, train
from tests.conftest import plan_for
from tests.test_recipes import Interrupt, InterruptAfterFirstEpoch, quick_row_on_two_replicas


def digits_in_unit_range():
    """scikit-learn's 1,797 8x8 digits as 64 pixel probabilities in [0, 1], and their labels."""
    digits = load_digits()
    return (digits.data / 16.0).astype("float32"), digits.target


def cd_steps(rbm, visible, steps, batch_size=32, seed=0):
    """``steps`` CD updates on random batches of ``visible`` (traced once, as the recipe does)."""
    if not rbm.built:  # variables are made here, not inside the traced function
        rbm.build(visible.shape)
    step = tf.function(rbm.contrastive_divergence, reduce_retracing=True)
    rng = np.random.default_rng(seed)
    return [float(step(visible[rng.integers(0, len(visible), batch_size)])) for _ in range(steps)]


def quick_config(tmp_path, **overrides):
    values = {**recipe.PRESETS["quick"], "strategy": "cpu", "verbose": 0, "output_dir": str(tmp_path / "run"),
              "results_dir": str(tmp_path / "results"), **overrides}
    return config_lib.make_config(recipe.Config, **values)


def test_cd1_lowers_the_reconstruction_error_of_held_out_digits():
    visible, _ = digits_in_unit_range()
    train_digits, held_out = visible[:1500], visible[1500:]
    rbm = zoo.dbn.RBM(64, cd_steps=1, seed=0)
    rbm.build(train_digits.shape)
    rbm.initialize_visible_bias(train_digits)
    before = float(rbm.reconstruction_error(held_out))
    errors = cd_steps(rbm, train_digits, 300)
    after = float(rbm.reconstruction_error(held_out))
    # The biases alone reproduce the mean digit; the weights must explain much of the rest.
    assert after < 0.4 * before, (before, after)
    assert np.mean(errors[-50:]) < 0.5 * np.mean(errors[:10]), "the CD steps' own errors did not fall"


def test_cd_k_is_seeded_and_each_k_learns():
    visible, _ = digits_in_unit_range()
    weights = []
    for seed in (3, 3, 4):
        rbm = zoo.dbn.RBM(32, cd_steps=3, seed=seed)
        errors = cd_steps(rbm, visible, 60)
        weights.append(rbm.kernel.numpy())
        assert np.mean(errors[-10:]) < 0.6 * errors[0], errors
    np.testing.assert_array_equal(weights[0], weights[1])  # same seed: same samples, same updates
    assert not np.allclose(weights[0], weights[2])


def test_pretrained_weights_give_the_classifier_identical_hidden_activations():
    visible, _ = digits_in_unit_range()
    raw = visible[:100].reshape(-1, 8, 8, 1) * 255.0  # what the classifier takes: pixels 0-255
    classifier = zoo.build("dbn_tiny", hidden_units=(48, 24))
    rbms = zoo.dbn.rbm_stack(classifier, seed=0)
    expected = np.asarray(zoo.dbn.visible_units(classifier)(raw))
    np.testing.assert_allclose(expected, visible[:100], atol=1e-6)  # the RBMs see the scaled pixels
    for rbm in rbms:
        cd_steps(rbm, expected, 20)
        expected = np.asarray(rbm.hidden_probabilities(expected))
    zoo.dbn.load_pretrained(classifier, rbms)
    top = keras.Model(classifier.input, classifier.get_layer("rbm_1").output)
    np.testing.assert_allclose(np.asarray(top(raw)), expected, rtol=1e-5, atol=1e-6)


def test_rbm_round_trips_through_a_keras_file(tmp_path):
    visible, _ = digits_in_unit_range()
    rbm = zoo.dbn.RBM(16, cd_steps=2, learning_rate=0.05, seed=1, name="rbm")
    cd_steps(rbm, visible, 5)
    model = keras.Sequential([keras.Input((64,)), rbm])
    model.save(tmp_path / "rbm.keras")
    restored = keras.models.load_model(tmp_path / "rbm.keras").get_layer("rbm")
    assert (restored.cd_steps, restored.learning_rate) == (2, 0.05)
    np.testing.assert_allclose(restored.hidden_probabilities(visible), rbm.hidden_probabilities(visible), atol=1e-6)
    for original, loaded in zip(rbm.velocities, restored.velocities):  # training can continue where it stopped
        np.testing.assert_allclose(loaded.numpy(), original.numpy())


def test_pretraining_then_fine_tuning_classifies_digits(tmp_path):
    config = quick_config(tmp_path)
    datasets = recipe.make_datasets(config)
    keras.utils.set_random_seed(0)
    model = recipe.build_model(config, datasets, plan_for(config, datasets))
    messages = []
    rbms = recipe.pretrain(model, datasets, config, str(tmp_path), log=messages.append)
    errors = [np.load(tmp_path / f"rbm_{index}.npz")["errors"] for index in range(len(rbms))]
    assert all(layer[-1] < 0.7 * layer[0] for layer in errors), errors
    zoo.dbn.load_pretrained(model, rbms)
    model.fit(data.pipeline(datasets.train, datasets.num_train, 32, True, 0), epochs=5, verbose=0)
    test = data.pipeline(datasets.test, datasets.num_test, 64, False, 0)
    assert model.evaluate(test, verbose=0, return_dict=True)["accuracy"] > 0.85  # chance is 0.10
    # Pretraining again in the same folder (a resumed run) reuses the finished RBMs.
    again = recipe.pretrain(model, datasets, config, str(tmp_path), log=messages.append)
    assert sum("reused" in message for message in messages) == len(rbms)
    for rbm, reused in zip(rbms, again):
        np.testing.assert_array_equal(reused.kernel.numpy(), rbm.kernel.numpy())


def test_an_interrupted_run_resumes_after_its_finished_rbms(tmp_path):
    config = quick_config(tmp_path, epochs=2, pretrain_epochs=2, scratch=False)
    with pytest.raises(Interrupt):
        train.run(recipe.RECIPE, config, extra_callbacks=[InterruptAfterFirstEpoch()], log=lambda message: None)
    assert (tmp_path / "run" / "backup" / "rbm_1.npz").exists()
    messages = []
    row = train.run(recipe.RECIPE, config, log=messages.append)
    assert sum("reused from" in message for message in messages) == 2
    assert row["epochs"] == 2 and row["test_accuracy"] > 0.3
    assert row["pretrain_seconds"] > 0 and row["reconstruction_error_2"] > 0
    assert not (tmp_path / "run" / "backup").exists()
    assert (tmp_path / "run" / "filters.png").exists()


def test_bad_sizes_and_settings_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="units must be a positive"):
        zoo.dbn.RBM(0)
    with pytest.raises(ValueError, match="cd_steps"):
        zoo.dbn.RBM(8, cd_steps=0)
    with pytest.raises(ValueError, match="momentum=1"):
        zoo.dbn.RBM(8, momentum=1.0)
    with pytest.raises(ValueError, match="hidden_units needs one positive width"):
        zoo.dbn.dbn(hidden_units=())
    with pytest.raises(ValueError, match="hidden_units needs one positive width"):
        zoo.build("mnist_dbn", hidden_units=(500, 0))
    classifier = zoo.build("dbn_tiny")
    with pytest.raises(ValueError, match="2 hidden layers but 1 RBMs"):
        zoo.dbn.load_pretrained(classifier, zoo.dbn.rbm_stack(classifier)[:1])
    with pytest.raises(ValueError, match=r"\(64, 64\) kernel but"):
        zoo.dbn.load_pretrained(classifier, zoo.dbn.rbm_stack(zoo.build("dbn_tiny", hidden_units=(32, 64))))
    with pytest.raises(ValueError, match="no sigmoid Dense layers named rbm_<i>"):
        zoo.dbn.visible_units(zoo.build("mlp_small"))
    for field, value, message in (("cd_k", 0, "--cd-k"), ("pretrain_epochs", 0, "--pretrain-epochs"),
                                  ("pretrain_momentum", 1.0, "--pretrain-momentum"),
                                  ("hidden_units", (64, 0), r"--hidden-units takes positive widths")):
        with pytest.raises(config_lib.ConfigError, match=message):
            quick_config(tmp_path, **{field: value})
    config = quick_config(tmp_path, model="mlp_small")
    with pytest.raises(config_lib.ConfigError, match="not a DBN"):
        recipe.build_model(config, recipe.make_datasets(config), None)
    # Pixels beyond the dataset's stated maximum would give the RBMs values above 1.
    config = quick_config(tmp_path)
    datasets = recipe.make_datasets(config)
    datasets.train = datasets.train.map(lambda image, label: (image * 16.0, label))
    with pytest.raises(config_lib.ConfigError, match=r"inputs in \[0, 1\]"):
        recipe.pretrain(recipe.build_model(config, datasets, plan_for(config, datasets)), datasets, config, str(tmp_path))


@pytest.mark.slow  # about two minutes; tests/test_recipes.py runs the same quick mode for its row checks
def test_quick_run_on_two_replicas_reports_pretraining_and_the_baseline(tmp_path):
    row = quick_row_on_two_replicas(tmp_path, "dbn", "digits")
    assert row["hidden_units"] == "64-64" and row["cd_k"] == 1
    # The baseline learns too (chance is 0.1), but less than the pretrained network in the same epochs.
    assert row["test_accuracy"] > 0.85 and 0.2 < row["scratch_accuracy"] < row["test_accuracy"]
    history = pd.read_csv(tmp_path / "run" / "pretrain_history.csv")
    for _, layer in history.groupby("rbm"):
        assert layer["reconstruction_error"].iloc[-1] < layer["reconstruction_error"].iloc[0]
    assert row["reconstruction_error_1"] == pytest.approx(history[history["rbm"] == 1]["reconstruction_error"].iloc[-1],
                                                          abs=1e-4)
