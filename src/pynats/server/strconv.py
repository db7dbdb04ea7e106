"""Go's `strconv.ParseBool`: the booleans nats-server reads from flags and monitoring queries.

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
