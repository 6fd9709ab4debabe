"""Your own data (--data): an image folder written from scikit-learn's digits as PNGs and CSV tables
of scikit-learn's bundled sets train the recipes through the same runtime, `zoo predict` uses the
trained models, and bad data stops a run with a message naming the file, no row and no run folder."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recipes.runtime import results
from tests.conftest import assert_handled_failure, run_cli


def write_digit_folder(root, classes=range(10), per_class=None, skip=0) -> str:
    """scikit-learn's 8x8 digits as grey PNGs (0-255), one folder per class: of each class, the
    ``per_class`` images after its first ``skip``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts = {}
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        counts[label] = counts.get(label, 0) + 1
        if label not in classes or counts[label] <= skip or (per_class and counts[label] > skip + per_class):
            continue
        folder = os.path.join(root, str(label))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(np.round(image * (255.0 / 16.0)).astype("uint8")).save(os.path.join(folder, f"{index}.png"))
    return str(root)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    return write_digit_folder(tmp_path_factory.mktemp("data") / "digit_pngs")


def write_table(path, loader) -> str:
    loader(as_frame=True).frame.to_csv(path, index=False)
    return str(path)


def run_on(tmp_path, recipe, data, *options):
    result = run_cli("run", recipe, "--quick", "--data", str(data), *options, "--results-dir",
                     str(tmp_path / "results"), "--output-dir", str(tmp_path / "run"), "--verbose", "0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return results.read_csv(tmp_path / "results" / f"{recipe}.csv").iloc[0]


def predict_json(run_dir, *inputs):
    result = run_cli("predict", str(run_dir), *map(str, inputs), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_an_image_folder_trains_the_convnet_on_two_replicas_and_predict_agrees_with_the_model(digit_folder,
                                                                                              tmp_path):
    row = run_on(tmp_path, "cnn", digit_folder, "--cpu-replicas", "2")
    assert (row["dataset"], row["replicas"], row["train_examples"]) == ("digit_pngs", 2, 1437)
    assert "image folder" in row["dataset_source"] and "1797 files, sha256 " in row["dataset_source"]
    assert "test split 0.2 stratified by seed 42" in row["dataset_source"]
    assert row["test_accuracy"] > 0.6, row["test_accuracy"]  # chance is 0.1
    pictures = sorted(os.path.join(digit_folder, "4", name) for name in os.listdir(os.path.join(digit_folder, "4")))[:6]
    answers = predict_json(tmp_path / "run", *pictures)
    assert [answer["input"] for answer in answers] == pictures
    assert all(len(answer["top"]) == 3 and answer["top"][0]["probability"] >= answer["top"][1]["probability"]
               for answer in answers)
    import keras

    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    arrays = np.stack([np.asarray(Image.open(path), "float32")[..., None] for path in pictures])
    expected = np.argmax(model.predict(arrays, verbose=0), axis=-1)
    assert [int(answer["top"][0]["class"]) for answer in answers] == expected.tolist()
    shown = run_cli("predict", str(tmp_path / "run"), pictures[0])
    assert shown.returncode == 0 and shown.stdout.startswith(f"{pictures[0]}: ")


def test_an_image_folder_fine_tunes_a_zoo_checkpoint_on_two_replicas(digit_folder, tmp_path):
    row = run_on(tmp_path, "finetune", digit_folder, "--cpu-replicas", "2")
    assert row["dataset"] == "digit_pngs" and row["test_accuracy"] > 0.6, row["test_accuracy"]
    assert row["scratch_accuracy"] > 0.1


def test_train_and_test_folders_are_used_as_they_are(tmp_path):
    write_digit_folder(tmp_path / "split" / "train", classes=(0, 1), per_class=60)
    write_digit_folder(tmp_path / "split" / "test", classes=(0, 1), per_class=20, skip=60)  # other images
    row = run_on(tmp_path, "cnn", tmp_path / "split")
    assert (row["dataset"], row["train_examples"]) == ("split", 120)
    assert "its train/ and test/ folders" in row["dataset_source"] and row["test_accuracy"] > 0.8


def test_a_classification_table_trains_the_mlp_and_predict_gives_one_answer_per_row(tmp_path):
    from sklearn.datasets import load_breast_cancer

    table = write_table(tmp_path / "breast_cancer.csv", load_breast_cancer)
    row = run_on(tmp_path, "mlp", table)
    assert row["dataset"] == "breast_cancer" and "label column 'target', 30 features" in row["dataset_source"]
    assert row["test_accuracy"] > 0.85, row["test_accuracy"]  # the majority class is 0.63
    few = tmp_path / "few.csv"
    pd.read_csv(table).head(5).drop(columns=["target"]).to_csv(few, index=False)
    answers = predict_json(tmp_path / "run", few)
    assert len(answers) == 5 and {choice["class"] for answer in answers for choice in answer["top"]} <= {"0", "1"}


def test_a_regression_table_beats_predicting_the_mean(tmp_path):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    table = write_table(tmp_path / "diabetes.csv", load_diabetes)
    row = run_on(tmp_path, "mlp", table, "--loss", "mse", "--hidden-units", "16,16", "--learning-rate", "0.01")
    train, test = train_test_split(pd.read_csv(table), test_size=0.2, random_state=42)  # the recipe's split
    mean_rmse = float(np.sqrt(np.mean((test["target"] - train["target"].mean()) ** 2)))
    assert row["test_rmse"] < 0.85 * mean_rmse, (row["test_rmse"], mean_rmse)
    answers = predict_json(tmp_path / "run", table)
    assert len(answers) == 442 and all(np.isfinite(answer["prediction"]) for answer in answers)


def test_bad_image_folders_fail_naming_the_problem_and_leave_nothing(tmp_path):
    options = ["--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "run")]
    one = write_digit_folder(tmp_path / "one", classes=(3,), per_class=10)
    assert_handled_failure(run_cli("run", "cnn", "--quick", "--data", one, *options), 1, "cnn",
                           "has one class only (['3'])")
    empty = write_digit_folder(tmp_path / "empty", classes=(3, 5), per_class=10)
    os.makedirs(os.path.join(empty, "7"))
    assert_handled_failure(run_cli("run", "cnn", "--quick", "--data", empty, *options), 1, "cnn",
                           os.path.join(empty, "7"), "are empty")
    broken = write_digit_folder(tmp_path / "broken", classes=(3, 5), per_class=20)
    bad = os.path.join(broken, "5", "notes.png")
    with open(bad, "w") as handle:
        handle.write("not a picture")
    assert_handled_failure(run_cli("run", "cnn", "--quick", "--data", broken, *options), 1, "cnn",
                           "1 of 41 files are not images", bad, "--skip-bad-files true")
    assert_handled_failure(run_cli("run", "cnn", "--quick", "--data", str(tmp_path / "nowhere"), *options), 1, "cnn",
                           "no such file or folder")
    assert not (tmp_path / "results").exists() and not (tmp_path / "run").exists()
    row = run_on(tmp_path, "cnn", broken, "--skip-bad-files", "true", "--epochs", "1")
    assert "1 unreadable files skipped" in row["dataset_source"] and row["train_examples"] == 32


def test_bad_tables_fail_naming_the_column_or_rows(tmp_path):
    options = ["--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "run")]
    frame = pd.DataFrame({"x1": np.arange(20.0), "x2": np.arange(20.0) ** 2, "label": [0, 1] * 10})
    frame.loc[[3, 7], "label"] = np.nan
    holes = tmp_path / "holes.csv"
    frame.to_csv(holes, index=False)
    assert_handled_failure(run_cli("run", "mlp", "--data", str(holes), *options), 1, "mlp",
                           "2 rows have no 'label' (data rows [4, 8])")
    frame = pd.DataFrame({"colour": ["red", "blue"] * 10, "x": np.arange(20.0), "label": [0, 1] * 10})
    words = tmp_path / "words.csv"
    frame.to_csv(words, index=False)
    assert_handled_failure(run_cli("run", "mlp", "--data", str(words), *options), 1, "mlp",
                           "feature columns ['colour'] are not numbers")
    assert_handled_failure(run_cli("run", "mlp", "--data", str(words), "--label-column", "size", *options), 1,
                           "mlp", "has no column 'size' (--label-column)")
    assert_handled_failure(run_cli("run", "mlp", "--data", str(words), "--data-format", "corpus", *options), 1,
                           "mlp", "is corpus data; this recipe trains on table")
    numbers = tmp_path / "numbers.csv"
    pd.DataFrame({"day": np.arange(30), "value": np.sin(np.arange(30.0))}).to_csv(numbers, index=False)
    assert_handled_failure(run_cli("run", "transformer", "--data", str(numbers), *options), 1, "transformer",
                           "is series data; this recipe trains on text or corpus or images")
    assert not (tmp_path / "results").exists() and not (tmp_path / "run").exists()


def test_predict_on_a_folder_that_is_not_a_run_says_so(tmp_path):
    result = run_cli("predict", str(tmp_path), "x.png")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "lacks ['model.keras', 'data.json']" in result.stderr


def package_texts() -> dict[str, list[str]]:
    """Two kinds of real English that ship with installed packages, in chunks of about 300 characters:
    scikit-learn's descriptions of its bundled data sets, and statsmodels' notes on its own."""
    import glob
    import pkgutil

    import sklearn.datasets
    import statsmodels.datasets

    sklearn_text = "".join(open(path, encoding="utf-8").read() for path in sorted(glob.glob(
        os.path.join(os.path.dirname(sklearn.datasets.__file__), "descr", "*.rst"))))
    statsmodels_text = ""
    for module in pkgutil.iter_modules(statsmodels.datasets.__path__):
        if not module.name.startswith("_") and module.name not in ("utils", "tests"):
            loaded = __import__(f"statsmodels.datasets.{module.name}", fromlist=["NOTE"])
            statsmodels_text += f"{getattr(loaded, 'DESCRLONG', '') or ''} {getattr(loaded, 'NOTE', '') or ''} "

    def chunks(text, size=300):
        out, words = [], []
        for word in text.split():
            words.append(word)
            if sum(len(item) + 1 for item in words) > size:
                out.append(" ".join(words))
                words = []
        return out

    return {"sklearn": chunks(sklearn_text), "statsmodels": chunks(statsmodels_text)}


def test_a_text_folder_and_a_text_csv_train_the_sequence_classifiers_and_predict_labels_texts(tmp_path):
    documents = package_texts()
    assert min(len(texts) for texts in documents.values()) > 50
    for label, texts in documents.items():
        os.makedirs(tmp_path / "texts" / label)
        for index, text in enumerate(texts):
            (tmp_path / "texts" / label / f"{index}.txt").write_text(text, encoding="utf-8")
    row = run_on(tmp_path / "rnn", "rnn", tmp_path / "texts", "--cpu-replicas", "2")
    assert row["dataset"] == "texts" and "text folder" in row["dataset_source"] and row["replicas"] == 2
    assert row["test_accuracy"] > 0.75, row["test_accuracy"]  # the larger class is 0.65
    table = tmp_path / "texts.csv"
    pd.DataFrame({"text": sum(documents.values(), []),
                  "label": sum(([label] * len(texts) for label, texts in documents.items()), [])}).to_csv(table, index=False)
    row = run_on(tmp_path / "transformer", "transformer", table)
    assert row["dataset"] == "texts" and "text table" in row["dataset_source"]
    assert row["test_accuracy"] > 0.75, row["test_accuracy"]
    samples = [documents["sklearn"][0], documents["statsmodels"][0]]
    answers = predict_json(tmp_path / "transformer" / "run", *samples)
    import keras

    import zoo  # noqa: F401  (registers the zoo's layers, which the saved text model uses)

    text_model = keras.models.load_model(tmp_path / "transformer" / "run" / "text_model.keras")
    expected = np.argmax(text_model.predict(np.array(samples, dtype=object), verbose=0), axis=-1)
    names = ["sklearn", "statsmodels"]
    assert [answer["top"][0]["class"] for answer in answers] == [names[index] for index in expected]


def test_a_corpus_file_trains_the_char_lstm_and_a_series_csv_the_forecaster(tmp_path):
    import glob

    import sklearn.datasets
    import statsmodels.api as sm

    corpus = tmp_path / "descriptions.txt"
    corpus.write_text("".join(open(path, encoding="utf-8").read() for path in sorted(glob.glob(
        os.path.join(os.path.dirname(sklearn.datasets.__file__), "descr", "*.rst")))), encoding="utf-8")
    row = run_on(tmp_path / "lm", "rnn", corpus)
    vocabulary = json.loads((tmp_path / "lm" / "run" / "vocabulary.json").read_text())["chars"]
    assert row["model"].startswith("char_lstm") and row["preset"] == "corpus,quick_corpus"
    assert row["test_loss"] < np.log(len(vocabulary)) - 0.8, row["test_loss"]
    prompt = predict_json(tmp_path / "lm" / "run", "The data", "--length", "30", "--seed", "3")[0]
    assert len(prompt["continuation"]) == 30 and set(prompt["continuation"]) <= set(vocabulary)
    assert predict_json(tmp_path / "lm" / "run", "The data", "--length", "30", "--seed", "3")[0] == prompt  # seeded
    assert_handled_failure(run_cli("predict", str(tmp_path / "lm" / "run"), "naïve ☃"), 1, None,
                           "characters the model never saw")

    weekly = sm.datasets.co2.load_pandas().data.reset_index().rename(columns={"index": "date"})
    weekly.sample(frac=1.0, random_state=0).to_csv(tmp_path / "co2.csv", index=False)  # shuffled: date orders it
    row = run_on(tmp_path / "forecast", "rnn", tmp_path / "co2.csv")
    assert "column 'co2' ordered by 'date', 59 gaps interpolated" in row["dataset_source"]
    assert row["test_mae"] < 0.8 * row["naive_mae"], (row["test_mae"], row["naive_mae"])
    weekly.tail(60).to_csv(tmp_path / "recent.csv", index=False)
    answer = predict_json(tmp_path / "forecast" / "run", tmp_path / "recent.csv", "--plot", tmp_path / "next.png")[0]
    assert len(answer["forecast"]) == 12 and abs(np.mean(answer["forecast"]) - weekly["co2"].tail(12).mean()) < 5
    assert Image.open(tmp_path / "next.png").size[0] > 0
    too_short = tmp_path / "short.csv"
    weekly.head(30).to_csv(too_short, index=False)
    result = run_cli("run", "rnn", "--data", str(too_short), "--results-dir", str(tmp_path / "r"), "--output-dir",
                     str(tmp_path / "none"))
    assert_handled_failure(result, 1, "rnn", "short has 30 values: too few for windows of 52 + 12")
    assert not (tmp_path / "none").exists()


def test_text_that_is_not_utf8_is_named(tmp_path):
    for label in ("a", "b"):
        os.makedirs(tmp_path / "texts" / label)
        (tmp_path / "texts" / label / "1.txt").write_text("plain words here", encoding="utf-8")
    (tmp_path / "texts" / "b" / "2.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    result = run_cli("run", "rnn", "--data", str(tmp_path / "texts"), "--results-dir", str(tmp_path / "results"),
                     "--output-dir", str(tmp_path / "run"))
    assert_handled_failure(result, 1, "rnn", "1 files are not UTF-8 text", str(tmp_path / "texts" / "b" / "2.txt"))
    assert not (tmp_path / "results").exists() and not (tmp_path / "run").exists()


def test_scikit_image_photos_in_two_class_folders_fine_tune_the_imagenet_backbone(shared_weights, tmp_path):
    import skimage.data

    weights = shared_weights("mobilenet_v2_imagenet.weights.h5")
    rng = np.random.default_rng(0)
    for label, photos in (("cat", ("chelsea", "cat")), ("microscopy", ("immunohistochemistry", "retina"))):
        os.makedirs(tmp_path / "photos" / label)
        for photo in photos:
            image = getattr(skimage.data, photo)()
            for index in range(20):  # random 160x160 crops, saved at 96x96
                top, left = rng.integers(0, image.shape[0] - 160), rng.integers(0, image.shape[1] - 160)
                crop = Image.fromarray(image[top:top + 160, left:left + 160]).resize((96, 96))
                crop.save(tmp_path / "photos" / label / f"{photo}-{index}.jpg")
    result = run_cli("run", "finetune", "--data", str(tmp_path / "photos"), "--weights", weights, "--image-size", "96",
                     "--head-epochs", "2", "--finetune-epochs", "1", "--scratch", "false", "--batch-size", "16",
                     "--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "run"),
                     "--verbose", "0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    row = results.read_csv(tmp_path / "results" / "finetune.csv").iloc[0]
    assert (row["dataset"], row["weights"]) == ("photos", "mobilenet_v2_imagenet.weights.h5 (torchvision)")
    assert "RGB 96x96" in row["dataset_source"] and row["test_accuracy"] > 0.9, row["test_accuracy"]
    answers = predict_json(tmp_path / "run", tmp_path / "photos" / "cat" / "chelsea-0.jpg")
    assert answers[0]["top"][0]["class"] == "cat"


def test_any_tfds_image_or_text_set_by_name_under_mock_data(tmp_path, monkeypatch):
    """--dataset NAME takes any tfds set whose supervised pair is (fixed-size image | text, class): the
    feature keys come from the builder's info; a set of varying image sizes says to use --data."""
    import tensorflow_datasets as tfds

    import recipes
    from recipes.runtime import config as config_lib
    from recipes.runtime import data, train

    monkeypatch.setattr(data, "network_reachable", lambda: True)  # mock_data stands in for the download
    options = dict(epochs=1, batch_size=16, strategy="cpu", verbose=0, data_dir=str(tmp_path / "tfds"))
    cnn = recipes.load("cnn")
    config = config_lib.make_config(cnn.config, dataset="cifar100", model="resnet20", output_dir=str(tmp_path / "a"),
                                    results_dir=str(tmp_path / "results"), **options)
    with tfds.testing.mock_data(num_examples=48):
        row = train.run(cnn, config, command="test", log=lambda message: None)
    assert (row["dataset"], row["model"]) == ("cifar100", "resnet20") and row["dataset_source"].startswith("tfds")
    rnn = recipes.load("rnn")
    config = config_lib.make_config(rnn.config, dataset="yelp_polarity_reviews", units=(8,), vocab_size=200,
                                    sequence_length=16, output_dir=str(tmp_path / "b"),
                                    results_dir=str(tmp_path / "results"), **options)
    with tfds.testing.mock_data(num_examples=48):
        row = train.run(rnn, config, command="test", log=lambda message: None)
    assert row["dataset"] == "yelp_polarity_reviews" and 0 <= row["test_accuracy"] <= 1
    with tfds.testing.mock_data(num_examples=8), pytest.raises(data.DataError, match="images vary in size"):
        data.load_image_classification("tf_flowers", str(tmp_path / "tfds"))
    with tfds.testing.mock_data(num_examples=8), pytest.raises(data.DataError, match="needs text in"):
        data.load_text_classification("mnist", str(tmp_path / "tfds"))
