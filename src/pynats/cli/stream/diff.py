"""The `Differences (-old +new):` block of `stream edit` and `consumer edit` (cli.md §7.7, §8.6).

natscli prints go-cmp's diff of two Go structs. We compare the two JSON configurations field
by field and print the changed fields in the same unified style, one `-` line with the old
value and one `+` line with the new one:

    Differences (-old +new):
      api.StreamConfig{
    -   "max_msgs": -1,
    +   "max_msgs": 100,
      }

Absent fields and their zero values (`""`, `0`, `false`, `[]`, `{}`) are the same thing, as in
a Go struct; lists of strings (subjects, filters) are compared without regard to order.
"""

from __future__ import annotations

import json
from typing import Any


def _is_zero(value: Any) -> bool:
    return value is None or value in ("", 0, False) or value == [] or value == {}


def _comparable(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if not _is_zero(v)}
    return value


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    return {k: _comparable(v) for k, v in config.items() if not _is_zero(_comparable(v))}


def config_diff(old: dict[str, Any], new: dict[str, Any], type_name: str) -> str:
    """The diff text (ending in a newline), or '' when the configurations are equivalent."""
    before, after = _normalised(old), _normalised(new)
    keys = [k for k in new if k in before or k in after]
    keys += [k for k in old if k not in keys and (k in before or k in after)]
    lines = []
    for key in keys:
        if before.get(key) == after.get(key):
            continue
        if key in before:
            lines.append(f"-   {json.dumps(key)}: {json.dumps(old[key])},")
        if key in after:
            lines.append(f"+   {json.dumps(key)}: {json.dumps(new[key])},")
    if not lines:
        return ""
    return "\n".join([f"  {type_name}{{", *lines, "  }"]) + "\n"
