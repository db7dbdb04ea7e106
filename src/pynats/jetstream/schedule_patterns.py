"""Message schedule patterns (ADR-51): `@at <RFC 3339>`, `@every <Go duration>` (at least 1s),
6-field cron (seconds first) and the predefined `@yearly`-style names, with an optional IANA
time zone for cron. `next_after` answers when a pattern fires next.

Cron fields: second minute hour day-of-month month day-of-week, each `*`, a number, a range
`a-b`, a step `*/n` `a/n` `a-b/n`, or a comma list of those; months and weekdays may be
names (JAN, MON), and `?` means any. When both day fields are restricted a day matching either one fires.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from pynats.gotime import NS_PER_S, DurationError, parse_duration, parse_rfc3339

from .errors import api_error

PREDEFINED = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (low, high, names) per field
_FIELDS = [
    (0, 59, {}),
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    (0, 6, {name: i for i, name in enumerate(_DAYS)}),
]
_PART = re.compile(r"^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?$")
MIN_EVERY_NS = NS_PER_S


class PatternError(ValueError):
    pass


@dataclass(frozen=True)
class Pattern:
    kind: str  # "at", "every" or "cron"
    at_ns: int = 0
    every_ns: int = 0
    fields: tuple[frozenset[int], ...] = ()
    dom_star: bool = True
    dow_star: bool = True
    zone: dt.tzinfo = dt.UTC

    @property
    def recurring(self) -> bool:
        return self.kind != "at"


def parse(value: str, time_zone: str | None) -> Pattern:
    """The pattern of a `Nats-Schedule` header. Raises ApiError 10189 or 10223."""
    zone: dt.tzinfo = dt.UTC
    if time_zone is not None:
        try:
            zone = zoneinfo.ZoneInfo(time_zone) if time_zone else dt.UTC
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise api_error("JSMessageSchedulesTimeZoneInvalidErr") from None
    try:
        if value.startswith("@at "):
            if time_zone is not None:
                raise PatternError("no time zone for @at")
            return Pattern("at", at_ns=parse_rfc3339(value[4:].strip()))
        if value.startswith("@every "):
            if time_zone is not None:
                raise PatternError("no time zone for @every")
            every = parse_duration(value[7:].strip())
            if every < MIN_EVERY_NS:
                raise PatternError("too often")
            return Pattern("every", every_ns=every)
        return _cron(PREDEFINED.get(value, value), zone)
    except (PatternError, DurationError, ValueError):
        raise api_error("JSMessageSchedulesPatternInvalidErr") from None


def _cron(spec: str, zone: dt.tzinfo) -> Pattern:
    parts = ["*" if part == "?" else part for part in spec.split()]  # `?`: any
    if len(parts) != 6:
        raise PatternError("cron takes 6 fields")
    fields = tuple(_field(text, *_FIELDS[i]) for i, text in enumerate(parts))
    return Pattern(
        "cron", fields=fields, dom_star=parts[3] == "*", dow_star=parts[5] == "*", zone=zone
    )


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        m = _PART.match(part)
        if m is None:
            raise PatternError(part)
        span, step_text = m.group(1), m.group(2)
        step = int(step_text) if step_text else 1
        if step < 1:
            raise PatternError(part)
        if span == "*":
            start, end = low, high
        else:
            first, _, last = span.partition("-")
            start = _value(first, low, high, names)
            end = _value(last, low, high, names) if last else (high if step_text else start)
        if start > end:
            raise PatternError(part)
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise PatternError(text)
    value = int(text)
    if not low <= value <= high:
        raise PatternError(text)
    return value


def next_after(pattern: Pattern, after_ns: int) -> int | None:
    """The first firing strictly after `after_ns` (None: an @at that has passed)."""
    if pattern.kind == "at":
        return pattern.at_ns if pattern.at_ns > after_ns else None
    if pattern.kind == "every":
        return after_ns + pattern.every_ns
    start = dt.datetime.fromtimestamp(after_ns // NS_PER_S + 1, pattern.zone)
    found = _next_cron(pattern, start)
    return None if found is None else int(found.timestamp()) * NS_PER_S


def _next_cron(p: Pattern, t: dt.datetime) -> dt.datetime | None:
    sec, minute, hour, _dom, month, _dow = p.fields
    limit = t.year + 5
    t = t.replace(microsecond=0)
    while t.year <= limit:
        if t.month not in month:
            t = (t.replace(day=1, hour=0, minute=0, second=0) + dt.timedelta(days=32)).replace(
                day=1
            )
            continue
        if not _day_matches(p, t):
            t = t.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
            continue
        if t.hour not in hour:
            t = t.replace(minute=0, second=0) + dt.timedelta(hours=1)
            continue
        if t.minute not in minute:
            t = t.replace(second=0) + dt.timedelta(minutes=1)
            continue
        if t.second not in sec:
            t = t + dt.timedelta(seconds=1)
            continue
        return t
    return None


def _day_matches(p: Pattern, t: dt.datetime) -> bool:
    dom_ok = t.day in p.fields[3]
    dow_ok = (t.isoweekday() % 7) in p.fields[5]
    if p.dom_star or p.dow_star:
        return dom_ok and dow_ok
    return dom_ok or dow_ok
