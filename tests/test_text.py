"""Text helpers: the character vocabulary, sampling from a language model, and a word
classifier that takes raw strings and survives a save/load round trip."""

import numpy as np
import pytest

import keras
import zoo
from zoo.text import CharVocabulary, generate, with_text_input, word_vectorizer

CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_vocabulary_round_trips_and_rejects_unknown_characters(tmp_path):
    vocabulary = CharVocabulary.from_text(CORPUS)
    assert vocabulary.decode(vocabulary.encode(CORPUS)) == CORPUS
    path = tmp_path / "vocabulary.json"
    vocabulary.save(path)
    assert CharVocabulary.load(path).chars == vocabulary.chars
    with pytest.raises(ValueError, match=r"not in the model's vocabulary: \['Z', 'q'\]"):
        vocabulary.encode("Zq")
    with pytest.raises(ValueError, match="empty text"):
        CharVocabulary.from_text("")
    with pytest.raises(TypeError, match="must be a str"):
        vocabulary.encode(b"bytes")


@pytest.fixture(scope="module")
def language_model():
    keras.utils.set_random_seed(0)
    vocabulary = CharVocabulary.from_text(CORPUS)
    return zoo.build("char_gru", vocab_size=len(vocabulary), units=(16,), sequence_length=24), vocabulary


def test_generate_is_reproducible_and_stays_in_the_vocabulary(language_model):
    model, vocabulary = language_model
    first = generate(model, vocabulary, "Before", length=40, temperature=1.0, seed=3)
    assert len(first) == 40 and set(first) <= set(vocabulary.chars)
    assert generate(model, vocabulary, "Before", length=40, temperature=1.0, seed=3) == first
    assert generate(model, vocabulary, "Before", length=40, temperature=1.0, seed=4) != first
    # top_k=1 is greedy: the same whatever the seed.
    assert generate(model, vocabulary, "we", 10, top_k=1, seed=1) == generate(model, vocabulary, "we", 10, top_k=1, seed=2)


def test_generate_rejects_bad_prompts_and_settings(language_model):
    model, vocabulary = language_model
    with pytest.raises(ValueError, match="non-empty"):
        generate(model, vocabulary, "", 5)
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        generate(model, vocabulary, "ROMEO!", 5)
    with pytest.raises(ValueError, match="temperature must be positive"):
        generate(model, vocabulary, "we", 5, temperature=0)
    with pytest.raises(ValueError, match="exceeds the model's input length 24"):
        generate(model, vocabulary, "we", 5, context_length=100)
    with pytest.raises(ValueError, match="predicts .* tokens but the vocabulary has"):
        generate(model, CharVocabulary("ab"), "a", 5)


def test_text_classifier_takes_raw_strings_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    texts = ["a good film, a great film", "bad, boring and bad", "great acting", "boring plot"]
    vectorizer = word_vectorizer(texts, vocab_size=50, sequence_length=8)
    model = zoo.build("imdb_bigru", vocab_size=vectorizer.vocabulary_size(), units=(8,), embedding_dim=8)
    classifier = with_text_input(vectorizer, model)
    reviews = np.array(["a great film", "boring, bad"], dtype=object)  # a unicode array is refused by Keras
    probabilities = classifier.predict(reviews, verbose=0)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    classifier.save(tmp_path / "text_model.keras")
    restored = keras.models.load_model(tmp_path / "text_model.keras")
    np.testing.assert_allclose(restored.predict(reviews, verbose=0), probabilities, rtol=1e-5, atol=1e-6)


def test_vectorizer_refuses_empty_text():
    with pytest.raises(ValueError, match="empty"):
        word_vectorizer(["", "  "], vocab_size=10)
    with pytest.raises(TypeError, match="not one string"):
        word_vectorizer("one string", vocab_size=10)


def test_keep_last_vectorizer_keeps_the_end_of_long_texts_and_round_trips(tmp_path):
    import tensorflow as tf

    from zoo.text import vocabulary_size

    texts = ["one two three four five six", "seven eight"]
    first = word_vectorizer(texts, vocab_size=50, sequence_length=4, keep="first")
    last = word_vectorizer(texts, vocab_size=50, sequence_length=4, keep="last")
    ids_first, ids_last = first(tf.constant(texts)).numpy(), last(tf.constant(texts)).numpy()
    words = first.get_vocabulary()
    assert [words[i] for i in ids_first[0]] == ["one", "two", "three", "four"]
    assert [words[i] for i in ids_last[0]] == ["three", "four", "five", "six"]
    np.testing.assert_array_equal(ids_last[1], ids_first[1])  # short texts: the same, padded at the end
    model = zoo.build("imdb_bigru", vocab_size=vocabulary_size(last), units=(8,), embedding_dim=8)
    classifier = with_text_input(last, model)
    classifier.save(tmp_path / "keep_last.keras")
    reviews = np.array(texts, dtype=object)
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "keep_last.keras").predict(reviews, verbose=0),
                               classifier.predict(reviews, verbose=0), rtol=1e-5, atol=1e-6)
