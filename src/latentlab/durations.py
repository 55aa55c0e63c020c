"""Wall-clock durations as users type them: ``90s``, ``10m``, ``2h``, ``1h30m``, ``1.5h``.

One syntax for every ``--budget`` (``train``, ``compare``, ``sweep``): a sequence of numbers,
each followed by its unit (``s``, ``m``, ``h``; ``d`` for days), largest unit first. A bare
number is refused rather than guessed to be seconds or minutes.
"""

from __future__ import annotations

import math
import re

from latentlab.errors import LatentlabError

UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([dhms])")
EXPECTED = "expected a duration such as 90s, 10m, 2h or 1h30m"


def parse_duration(text: str, *, option: str = "duration") -> float:
    """Seconds in ``text`` (``'10m'`` -> 600.0); anything else is a one-line LatentlabError that
    names ``option`` (e.g. ``'--budget'``) and the syntax expected."""
    compact = str(text).strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    units = [unit for _, unit in parts]
    in_order = units == sorted(set(units), key=list(UNITS).index)  # each unit once, largest first
    if not parts or "".join(n + u for n, u in parts) != compact or not in_order:
        raise LatentlabError(f"{option} {text!r}: {EXPECTED}")
    seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    if not (math.isfinite(seconds) and seconds > 0):
        raise LatentlabError(f"{option} {text!r}: {EXPECTED}, longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """``600.0`` -> ``'10m'``, ``5400.0`` -> ``'1h30m'``, ``90.0`` -> ``'90s'``: the shortest text
    that :func:`parse_duration` reads back as ``seconds`` (fractions of a second as ``'2.5s'``)."""
    whole = int(seconds)
    if whole != seconds or seconds < 60 or whole % 60:
        return f"{seconds:.12g}s"
    h, m = divmod(whole // 60, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "")
