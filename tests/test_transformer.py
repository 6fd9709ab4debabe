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


def test_forward_flops_match_a_hand_count():
    from zoo.transformer import forward_flops

    model = zoo.build("gpt", vocab_size=10, sequence_length=8, embed_dim=16, depth=2, num_heads=2, mlp_dim=32)
    per_block = 2 * 8 * (4 * 16 * 16 + 2 * 16 * 32) + 4 * 8 * 8 * 16  # projections + MLP, then QK^T and AV
    assert forward_flops(model) == 2 * per_block + 2 * 8 * 16 * 10  # + the logits at every position
    vit = zoo.build("vit_tiny", num_classes=10)  # 16 patches of 7x7x1 -> 32, class token: 17 tokens
    per_block = 2 * 17 * (4 * 32 * 32 + 2 * 32 * 64) + 4 * 17 * 17 * 32
    assert forward_flops(vit) == 2 * 16 * 49 * 32 + 2 * per_block + 2 * 32 * 10
    classifier = zoo.build("transformer_classifier_tiny")  # takes any length: the count needs one
    with pytest.raises(ValueError, match="pass tokens="):
        forward_flops(classifier)
    assert forward_flops(classifier, tokens=64) > forward_flops(classifier, tokens=32) > 0


def test_attention_dropout_is_its_own_setting_and_survives_saving(tmp_path):
    model = zoo.build("char_gpt_tiny", dropout=0.0, attention_dropout=0.2)
    block = model.get_layer("block1")
    assert (block.dropout, block.attention_dropout, block.attention.dropout) == (0.0, 0.2, 0.2)
    model.save(tmp_path / "gpt.keras")
    loaded = keras.models.load_model(tmp_path / "gpt.keras").get_layer("block1")
    assert (loaded.dropout, loaded.attention_dropout) == (0.0, 0.2)
    ids = np.random.default_rng(0).integers(0, 65, (2, 32)).astype("int32")
    # In inference, dropout of either kind is off: the outputs are deterministic.
    np.testing.assert_allclose(model(ids, training=False), model(ids, training=False))


def test_language_model_context_defaults_to_the_models_own():
    import zoo
    from recipes import transformer
    from recipes.runtime.config import ConfigError, parse_overrides

    # The preset's context per model is the one each registered GPT is built for.
    for name, context in transformer.MODEL_CONTEXT.items():
        assert zoo.build(name).input_shape[1] == context
    resolve = lambda *argv: parse_overrides(transformer.Config, list(argv), presets=transformer.PRESETS)
    assert resolve("--dataset", "tiny_shakespeare").sequence_length == 128  # char_gpt_small's
    assert resolve("--dataset", "tiny_shakespeare", "--model", "char_gpt_base").sequence_length == 256
    config = resolve("--dataset", "sklearn_docs", "--model", "char_gpt_small", "--sequence-length", "48")
    assert transformer.make_datasets(config).input_shape == (48,)  # a set length wins
    with pytest.raises(ConfigError, match="sets sequence_length by model"):
        resolve("--dataset", "tiny_shakespeare", "--model", "transformer_classifier_tiny")
