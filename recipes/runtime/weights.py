"""Which pretrained weights a backbone gets, and how a results row names them.

``--weights`` is a ``.weights.h5`` path, ``imagenet`` (Keras downloads its own; needs the
internet) or ``none``; left empty it is ``$ZOO_WEIGHTS``, else ``imagenet``. Shared by the
recipes that start from a pretrained backbone (finetune, deepdream).
"""

from __future__ import annotations

import os


def resolve_weights(weights: str) -> str | None:
    """The weights to load: a path, ``imagenet``, or None for random weights."""
    weights = weights or os.environ.get("ZOO_WEIGHTS", "") or "imagenet"
    return None if weights == "none" else weights


def weights_format(weights: str | None, requested: str) -> str:
    """How the file was made: Keras's own downloads are Keras's; a file says with ``--weights-format``."""
    return "keras" if weights in (None, "imagenet") else requested


def describe_weights(weights: str, requested_format: str, checkpoint: str = "") -> str:
    """The weights column: a file by name and format (not its local path), imagenet, none, or the
    ``.keras`` checkpoint the backbone came from."""
    if checkpoint:
        return f"checkpoint {os.path.basename(checkpoint)}"
    resolved = resolve_weights(weights)
    if resolved in (None, "imagenet"):
        return str(resolved).lower()
    return f"{os.path.basename(resolved)} ({requested_format})"
