"""Text helpers shared by every text model: word vectorisation, a character vocabulary,
and sampling from a language model.

    vectorizer = zoo.text.word_vectorizer(train_texts, vocab_size=20000, sequence_length=256)
    classifier = zoo.text.with_text_input(vectorizer, model)   # raw strings in, predictions out

    vocabulary = zoo.text.CharVocabulary.from_text(corpus)
    ids = vocabulary.encode("To be")
    zoo.text.generate(language_model, vocabulary, "ROMEO:", length=200, temperature=0.8, seed=0)

The word vectorizer is a Keras ``TextVectorization`` layer, so a classifier saved with it
takes raw text. The character vocabulary is plain data that saves as JSON beside a
model. ``generate`` works for any causal model that maps token ids ``(batch, steps)`` to
logits ``(batch, steps, vocab)``: the recurrent ``char_lstm`` and the character GPT alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import keras
import numpy as np

from zoo.layers import KeepLastTokens, check_choice


KEEP = ("first", "last")


def word_vectorizer(texts, vocab_size: int = 20000, sequence_length: int | None = 256, keep: str = "first",
                    name: str = "vectorizer"):
    """Word ids for raw strings, adapted on ``texts`` (a list or a dataset of strings).

    Lower-cases and strips punctuation, keeps the ``vocab_size`` most frequent words
    (id 0 is padding, id 1 unknown words) and pads to ``sequence_length`` (``None``: pad
    each batch to its longest text). A longer text keeps its ``keep="first"`` words (a
    ``TextVectorization`` layer) or its ``"last"`` ones (``TextVectorization`` followed
    by ``zoo.layers.KeepLastTokens``, in a small ``Sequential``). Either way the result
    is Keras layers, so a model saved behind it takes raw text; ``vocabulary_size(v)``
    reads its vocabulary size.
    """
    check_choice("keep", keep, KEEP)
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3 (padding, unknown and one word), got {vocab_size}")
    if isinstance(texts, str):
        raise TypeError("texts must be a list or dataset of strings, not one string")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocab_size, output_mode="int", name=name if keep == "first" else f"{name}_words",
        output_sequence_length=sequence_length if keep == "first" else None)
    vectorizer.adapt(texts)
    if vectorizer.vocabulary_size() <= 2:
        raise ValueError("The texts to adapt the vectorizer on are empty: no word was found")
    if keep == "first" or sequence_length is None:
        return vectorizer
    return keras.Sequential([vectorizer, KeepLastTokens(sequence_length, name=f"{name}_keep_last")], name=name)


def vocabulary_size(vectorizer) -> int:
    """Vocabulary size (padding and unknown included) of a ``word_vectorizer`` result."""
    layer = vectorizer if isinstance(vectorizer, keras.layers.TextVectorization) else vectorizer.layers[0]
    return layer.vocabulary_size()


def with_text_input(vectorizer, model: keras.Model, name: str | None = None) -> keras.Model:
    """``model`` (token ids in) behind ``vectorizer``: a model that takes raw strings.

    It runs wherever ``TextVectorization`` runs (it uses TensorFlow's string ops), and
    saves to one ``.keras`` file with its vocabulary. Pass texts as a ``tf.constant``, a
    string dataset or ``np.array(texts, dtype=object)`` (Keras refuses numpy's fixed-width
    unicode arrays).
    """
    inputs = keras.Input(shape=(), dtype="string", name="text")
    outputs = model(vectorizer(inputs))
    return keras.Model(inputs, outputs, name=name or f"{model.name}_text")


class CharVocabulary:
    """The characters a language model knows, in a fixed order; id ``i`` is ``chars[i]``."""

    def __init__(self, chars: Iterable[str]):
        self.chars = "".join(chars)
        if not self.chars:
            raise ValueError("A character vocabulary needs at least one character")
        if len(set(self.chars)) != len(self.chars) or any(len(char) != 1 for char in self.chars):
            raise ValueError("A character vocabulary lists each single character once")
        self.index = {char: position for position, char in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocabulary":
        """The sorted set of characters in ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("Cannot build a character vocabulary from empty text")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Character ids of ``text``; characters outside the vocabulary are an error."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"{len(unknown)} character(s) not in the model's vocabulary: {unknown[:20]!r}; "
                             f"the vocabulary holds {len(self)} characters: {self.chars!r}")
        return np.fromiter((self.index[char] for char in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must be in [0, {len(self)}), got {ids.min()}..{ids.max()}")
        return "".join(self.chars[int(position)] for position in ids)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"chars": self.chars}, handle, ensure_ascii=False)

    @classmethod
    def load(cls, path: str) -> "CharVocabulary":
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle)["chars"])


def generate(model: keras.Model, vocabulary: CharVocabulary, prompt: str, length: int = 200,
             temperature: float = 1.0, top_k: int | None = None, seed: int | None = None,
             context_length: int | None = None) -> str:
    """Sample ``length`` characters after ``prompt`` from a causal language model.

    Each step feeds the last ``context_length`` characters (default: the model's fixed
    input length, else 256), padded on the right so the logits read at the last real
    position see no padding. ``temperature`` divides the logits (lower is more
    conservative), ``top_k`` keeps only the k likeliest characters, and ``seed`` makes
    the sample reproducible. Returns the generated text without the prompt.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty string: the model needs at least one character to continue")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and not 1 <= top_k <= len(vocabulary):
        raise ValueError(f"top_k must be in [1, {len(vocabulary)}], got {top_k}")
    vocab_size = model.output_shape[-1]
    if vocab_size != len(vocabulary):
        raise ValueError(f"The model predicts {vocab_size} tokens but the vocabulary has {len(vocabulary)}")
    fixed_length = model.input_shape[1]
    context_length = context_length or fixed_length or 256
    if fixed_length and context_length > fixed_length:
        raise ValueError(f"context_length={context_length} exceeds the model's input length {fixed_length}")
    window = fixed_length or context_length
    rng = np.random.default_rng(seed)
    ids = list(vocabulary.encode(prompt))
    for _ in range(length):
        context = ids[-context_length:]
        batch = np.zeros((1, window), dtype=np.int32)
        batch[0, :len(context)] = context
        logits = np.asarray(model.predict_on_batch(batch), dtype=np.float64)[0, len(context) - 1] / temperature
        if top_k is not None:
            logits[logits < np.sort(logits)[-top_k]] = -np.inf
        probabilities = np.exp(logits - logits.max())
        ids.append(int(rng.choice(len(probabilities), p=probabilities / probabilities.sum())))
    return vocabulary.decode(ids[len(prompt):])
