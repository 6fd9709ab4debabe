"""The model registry: names, patterns, errors, and the import boundary of ``zoo``."""

import subprocess
import sys

import pytest

import zoo

pytestmark = pytest.mark.backends  # also run on JAX and PyTorch by make test


def test_list_models_is_sorted_and_filters_by_pattern():
    names = zoo.list_models()
    assert names == sorted(names)
    assert {"playground", "mnist_convnet", "resnet20", "resnet56"} <= set(names)
    assert zoo.list_models("resnet*") == ["resnet110", "resnet20", "resnet32", "resnet44", "resnet56"]
    assert zoo.list_models("no_such_*") == []


def test_build_returns_an_uncompiled_model_named_after_its_key():
    model = zoo.build("resnet20", num_classes=7)
    assert model.name == "resnet20"
    assert model.output_shape == (None, 7)
    assert not model.compiled


def test_unknown_model_suggests_close_matches():
    with pytest.raises(zoo.UnknownModelError, match=r"Unknown model 'resnet21'.*'resnet20'"):
        zoo.build("resnet21")
    with pytest.raises(TypeError, match="must be a string"):
        zoo.build(20)


def test_registering_a_second_builder_under_a_taken_name_fails():
    def resnet20():
        return None
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model(resnet20)


def test_bad_builder_arguments_name_the_allowed_values():
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2"):
        zoo.cnn.resnet(depth=21)
    with pytest.raises(ValueError, match=r"Unknown activation='swish'; expected one of"):
        zoo.build("playground", activation="swish")
    with pytest.raises(ValueError, match=r"Unknown shortcut='bogus'"):
        zoo.build("resnet20", shortcut="bogus")


def test_import_zoo_does_not_import_tfds_or_recipes():
    code = ("import sys, zoo; bad = [m for m in ('tensorflow_datasets', 'recipes') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
