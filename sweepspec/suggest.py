""" "Did you mean" suggestions for misspelt keys and names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The single close match of ``word`` among ``candidates``, or None when none is close."""
    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.75)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        if word.lower() in lowered:
            return lowered[word.lower()]
        return None
    return matches[0]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    match = closest(word, candidates)
    return f" (did you mean '{match}'?)" if match else ""
