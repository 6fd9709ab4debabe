"""Model registry: every builder in the zoo is reachable by name.

    import zoo
    model = zoo.build("resnet20", num_classes=10)
    zoo.list_models("resnet*")   # ['resnet110', 'resnet20', ...]

A family module registers its variants with ``@register_model``; the registry knows
nothing about data, strategies or training, so ``import zoo`` works inside any training
loop on any Keras backend.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable

_MODELS: dict[str, Callable] = {}


class UnknownModelError(ValueError):
    """Raised by ``build`` for a name that no builder was registered under."""


def register_model(builder: Callable) -> Callable:
    """Register ``builder`` under its function name; use as a decorator."""
    name = builder.__name__
    if name in _MODELS and _MODELS[name] is not builder:
        raise ValueError(f"A model named {name!r} is already registered by {_MODELS[name].__module__}")
    _MODELS[name] = builder
    return builder


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(name for name in _MODELS if fnmatch.fnmatchcase(name, pattern))


def get_builder(name: str) -> Callable:
    """The builder registered under ``name``; close matches are suggested for typos."""
    if not isinstance(name, str):
        raise TypeError(f"Model name must be a string, got {type(name).__name__}: {name!r}")
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Run `zoo list` or call zoo.list_models() "
            f"for all {len(_MODELS)} registered models."
        ) from None


def build(name: str, **kwargs):
    """Build the registered model ``name``; keyword arguments go to its builder."""
    return get_builder(name)(**kwargs)
