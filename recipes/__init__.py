"""The recipe collection: one module per architecture family, named as on the CLI.

Each module ends with ``RECIPE = Recipe(...)`` (the contract: ``recipes/runtime/recipe.py``).
Modules are imported only when asked for (``load``), and they import no TensorFlow at the
top, so ``zoo list`` and ``zoo run X --help`` answer without starting it. A recipe defined
elsewhere (a research script, a test) joins with ``register(recipe)`` and then runs like the
built-in ones through ``recipes.__main__.main(["run", NAME, ...])`` in the same process.
"""

from __future__ import annotations

import difflib
import importlib

# The built-in recipes, in the order `zoo run all` runs them: name -> module.
RECIPES = {name: f"recipes.{name}" for name in
           ("autoencoder", "cnn", "dbn", "deepdream", "finetune", "gan", "mlp", "rnn", "transformer")}
_REGISTERED: dict = {}


class UnknownRecipeError(ValueError):
    """Raised for a recipe name that is neither built in nor registered."""


def register(recipe) -> None:
    """Make ``recipe`` (a ``recipes.runtime.recipe.Recipe``) runnable by name in this process."""
    if recipe.name in RECIPES:
        raise ValueError(f"A built-in recipe is called {recipe.name!r}; register yours under another name")
    _REGISTERED[recipe.name] = recipe


def names() -> list[str]:
    """Every recipe this process can run: the built-in ones and the registered ones."""
    return sorted([*RECIPES, *_REGISTERED])


def load(name: str):
    """The ``Recipe`` called ``name``."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in RECIPES:
        close = difflib.get_close_matches(name, names(), n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownRecipeError(f"Unknown recipe {name!r}.{hint} Available recipes: {names()} (or 'all').")
    return importlib.import_module(RECIPES[name]).RECIPE
