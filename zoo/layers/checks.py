"""Argument checks shared by the builders and the layers."""

from __future__ import annotations


def check_choice(name: str, value, allowed) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed ones, as every builder does."""
    if value not in allowed:
        raise ValueError(f"Unknown {name}={value!r}; expected one of {list(allowed)}")
