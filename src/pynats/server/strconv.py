"""Go's `strconv.ParseBool`: the booleans nats-server reads from flags and monitoring queries;
and nats-server's friendly byte sizes (`friendly_bytes`), for its log lines.

Config files have their own words (`yes`, `on`, ...: see `conf.parser`); these are Go's.
"""

from __future__ import annotations

TRUE_TEXTS = frozenset(("1", "t", "T", "TRUE", "true", "True"))
FALSE_TEXTS = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_bool(text: str) -> bool:
    """True or False as Go reads `text`; ValueError otherwise (callers word the error)."""
    if text in TRUE_TEXTS:
        return True
    if text in FALSE_TEXTS:
        return False
    raise ValueError(text)


def friendly_bytes(n: int) -> str:
    """nats-server's byte sizes: `1.00 GB`, `17.66 GB`, `512 B` (base 1024)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB", "PB", "EB"):
        value /= 1024
        if value < 1024 or unit == "EB":
            return f"{value:.2f} {unit}"
    return f"{n} B"
