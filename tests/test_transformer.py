"""Transformer blocks: the causal mask blocks the future, padding is ignored, generation
is reproducible and stays in the vocabulary, and bad sizes are refused."""

import numpy as np
import pytest

import keras
import zoo
from zoo.text import CharVocabulary


def test_causal_mask_blocks_the_future():
    keras.utils.set_random_seed(0)
    model = zoo.build("char_gpt_tiny", vocab_size=20, dropout=0.0)
    ids = np.random.default_rng(0).integers(0, 20, (1, 32)).astype("int32")
    logits = model.predict(ids, verbose=0)
    for t in (0, 10, 30):
        changed = ids.copy()
        changed[0, t + 1] = (changed[0, t + 1] + 1) % 20
        after = model.predict(changed, verbose=0)
        np.testing.assert_allclose(after[0, :t + 1], logits[0, :t + 1], rtol=1e-5, atol=1e-5)
        assert not np.allclose(after[0, t + 1], logits[0, t + 1])  # the changed position itself does change


def test_encoder_ignores_padding():
    keras.utils.set_random_seed(0)
    model = zoo.build("transformer_classifier_tiny", vocab_size=50, dropout=0.0)
    ids = np.random.default_rng(0).integers(1, 50, (2, 6)).astype("int32")
    ids[1, 4:] = 0
    reference = model.predict(ids, verbose=0)
    longer = np.concatenate([ids, np.zeros((2, 10), dtype="int32")], axis=1)
    np.testing.assert_allclose(model.predict(longer, verbose=0), reference, rtol=1e-5, atol=1e-6)


def test_gpt_generation_is_seeded_and_in_vocabulary():
    keras.utils.set_random_seed(0)
    vocabulary = CharVocabulary.from_text("to be or not to be, that is the question")
    model = zoo.build("char_gpt_tiny", vocab_size=len(vocabulary))
    first = zoo.transformer.generate(model, vocabulary, "to be", length=50, temperature=0.9, top_k=5, seed=7)
    assert len(first) == 50 and set(first) <= set(vocabulary.chars)
    assert zoo.transformer.generate(model, vocabulary, "to be", length=50, temperature=0.9, top_k=5, seed=7) == first
    # A prompt longer than the context keeps only its last 32 characters.
    assert len(zoo.transformer.generate(model, vocabulary, "to be or not " * 5, length=3, seed=0)) == 3


def test_vit_takes_raw_pixels_and_checks_the_patch_size():
    model = zoo.build("vit_tiny", num_classes=10)
    images = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("patches").num_patches == 16
    with pytest.raises(ValueError, match="not divisible by patch_size=5"):
        zoo.build("vit", input_shape=(32, 32, 3), patch_size=5)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        zoo.build("gpt", embed_dim=30, num_heads=4)
