"""The recipe collection: one module per architecture family, named as on the CLI.

Recipe modules are imported only when run (``load``), so ``zoo list`` and
``zoo run X --help`` answer without starting TensorFlow.
"""

from __future__ import annotations

import difflib
import importlib

RECIPES = {
    "mlp": "Feed-forward networks on the TensorFlow Playground's data sets",
    "cnn": "Convnets: the classic MNIST convnet, CIFAR ResNets",
    "rnn": "Recurrent networks: IMDB sentiment, a character language model, time-series forecasting",
    "transformer": "Transformers: an IMDB encoder classifier, a character GPT, a Vision Transformer",
    "gan": "GANs: DCGAN and a class-conditional DCGAN on MNIST, scored by a Frechet distance",
    "finetune": "Transfer learning: a pretrained backbone fine-tuned in two phases, against training from scratch",
    "autoencoder": "Autoencoders on MNIST: dense, convolutional, denoising and a variational autoencoder",
    "dbn": "A deep belief network: RBMs pretrained greedily with contrastive divergence, then fine-tuned",
    "deepdream": "DeepDream: gradient ascent on an image to amplify what a pretrained backbone's layers see",
}


class UnknownRecipeError(ValueError):
    """Raised for a recipe name that is not in RECIPES."""


def load(name: str):
    """Import and return the recipe module ``recipes.<name>``."""
    if name not in RECIPES:
        close = difflib.get_close_matches(name, RECIPES, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownRecipeError(f"Unknown recipe {name!r}.{hint} Available recipes: {sorted(RECIPES)} "
                                 f"(or 'all').")
    return importlib.import_module(f"recipes.{name}")
