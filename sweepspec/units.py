"""Durations (``90s``, ``30m``, ``2h``, or seconds) and sizes (``4GB``, or bytes)."""

from __future__ import annotations

import math
import re

__all__ = [
    "DURATION_PATTERN",
    "MAX_DURATION_S",
    "SIZE_PATTERN",
    "format_duration",
    "parse_duration",
    "parse_size",
]

_N = r"\d+(?:\.\d+)?"
#: A bare number (seconds), or numbers with units in descending order, each unit at most once:
#: ``90``, ``90s``, ``1.5h``, ``1h30m``, ``2d12h``, ``1m30s250ms``. (JSON Schema's ECMA flavour.)
DURATION_PATTERN = (
    rf"^\s*(?:{_N}\s*|(?=\d)(?:{_N}\s*d\s*)?(?:{_N}\s*h\s*)?(?:{_N}\s*m(?!s)\s*)?"
    rf"(?:{_N}\s*s\s*)?(?:{_N}\s*ms\s*)?)$"
)
_COMPOUND = re.compile(
    rf"\s*(?:({_N})\s*d\s*)?(?:({_N})\s*h\s*)?(?:({_N})\s*m(?!s)\s*)?(?:({_N})\s*s\s*)?"
    rf"(?:({_N})\s*ms\s*)?"
)
_COMPOUND_UNITS = (86400.0, 3600.0, 60.0, 1.0, 0.001)
SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*([kKmMgGtT]i?[bB]|[bB])?\s*$"

#: The longest duration a spec takes: a longer one is a typo, and overflows the clocks it meets.
MAX_DURATION_S = 10 * 365 * 86400.0

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"a {what} is a number or a string like {_EXAMPLES[what]}, but got {value!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a {what} must be a positive finite number, but got {value!r}")
    if what == "duration" and value > MAX_DURATION_S:
        raise ValueError(
            f"a duration must be at most 10 years ({MAX_DURATION_S:g} s), but got {value!r}"
        )
    return float(value)


_EXAMPLES = {"duration": "'90s', '30m' or '2h'", "size": "'512MB' or '4GB'"}


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a number of seconds, or numbers with units (``d h m s ms``, in that
    order, each at most once): ``90s``, ``30m``, ``1h30m``."""
    if isinstance(value, str):
        bare = re.fullmatch(rf"\s*({_N})\s*", value)
        if bare:
            return _number(float(bare.group(1)), "duration")
        m = _COMPOUND.fullmatch(value)
        if not m or not any(m.groups()):
            raise ValueError(
                f"a duration is a number of seconds or a string like '90s', '30m', '2h' or "
                f"'1h30m', but got {_shown(value)}"
            )
        seconds = sum(float(v) * u for v, u in zip(m.groups(), _COMPOUND_UNITS, strict=True) if v)
        return _number(seconds, "duration")
    return _number(value, "duration")


def parse_size(value: object) -> int:
    """Bytes in ``value``: a number of bytes or ``<number><B|KB|MB|GB|TB|KiB|MiB|GiB|TiB>``."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]|[bB])?\s*", value)
        if not m:
            raise ValueError(
                f"a size is a number of bytes or a string like '4GB', but got {_shown(value)}"
            )
        return int(_number(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()], "size"))
    return int(_number(value, "size"))


def format_duration(seconds: float) -> str:
    """``1h02m03s`` style, for progress and plans."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"
