"""Sequence data: language-model windows are shifted by one character, forecasting
windows never let training see the held-out part, and too-short data is refused."""

import numpy as np
import pytest

from recipes.runtime import sequences
from recipes.runtime.data import DataError


def test_language_model_targets_are_the_next_characters():
    ids = np.arange(23, dtype=np.int32)
    inputs, targets = sequences.windows(ids, 5)
    assert inputs.shape == targets.shape == (4, 5)
    np.testing.assert_array_equal(targets, inputs + 1)
    with pytest.raises(DataError, match="too short for one window of 30"):
        sequences.windows(ids, 30)


def test_sklearn_docs_corpus_is_real_text_split_in_order():
    texts, source = sequences.sklearn_docs_corpus()
    assert len(texts["train"]) > 30_000 and "scikit-learn" in source
    total = sum(len(text) for text in texts.values())
    assert abs(len(texts["train"]) / total - 0.9) < 0.001


def test_forecast_windows_hold_out_the_end_of_the_series():
    datasets = sequences.forecast_windows("co2", window=52, horizon=12)
    series, split = datasets.series.values, datasets.series.split
    assert not np.isnan(series).any()  # the 59 missing weeks are interpolated
    x_test, y_test = datasets.series.x_test, datasets.series.y_test
    # The first test window forecasts the first held-out weeks from the 52 weeks before them.
    np.testing.assert_array_equal(y_test[0], series[split:split + 12])
    np.testing.assert_array_equal(x_test[0, :, 0], series[split - 52:split])
    train_targets = np.stack([targets for _, targets in datasets.train.as_numpy_iterator()])
    assert train_targets.shape[0] == datasets.num_train == split - 52 - 12 + 1
    np.testing.assert_array_equal(train_targets[-1], series[split - 12:split])  # ends before the test part


def test_series_shorter_than_the_window_is_refused():
    with pytest.raises(DataError, match="shorter than one window of 10 inputs plus 5 forecast steps"):
        sequences.make_windows(np.arange(12, dtype="float32"), 10, 5)
    with pytest.raises(DataError, match="sunspots has 309 values: too few"):
        sequences.forecast_windows("sunspots", window=300, horizon=12)


def test_random_windows_are_shifted_crops_that_change_between_epochs():
    from recipes.runtime import data

    datasets = sequences.character_windows("sklearn_docs", "", 32, random_offsets=True)
    text_ids = datasets.vocabulary.encode(sequences.sklearn_docs_corpus()[0]["train"])
    assert datasets.num_train == (len(text_ids) - 1) // 32 - 1
    batches = data.pipeline(datasets.train, datasets.num_train, 64, training=True, seed=0,
                            batch_map=datasets.train_batch_map)
    epochs = [[(x.numpy(), y.numpy()) for x, y in batches] for _ in range(2)]
    inputs, targets = epochs[0][0]
    assert inputs.shape == targets.shape == (64, 32)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # targets are the next characters
    # Every window is a real stretch of the training text.
    text = "".join(map(chr, text_ids + 32))  # ids as characters, so windows can be searched
    for window, target in zip(inputs[:5], targets[:5]):
        assert "".join(map(chr, np.append(window, target[-1]) + 32)) in text
    first = np.concatenate([x for x, _ in epochs[0]])
    second = np.concatenate([x for x, _ in epochs[1]])
    assert first.shape == second.shape and not np.array_equal(np.sort(first, axis=0), np.sort(second, axis=0))
