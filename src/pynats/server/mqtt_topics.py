"""MQTT topics <-> NATS subjects, as nats-server translates them.

A topic's levels (split at `/`) become the subject's tokens (joined by `.`). What a plain
translation would make invalid is escaped: an empty level (a leading, trailing or doubled
`/`) becomes the token `/`, and a `.` inside a level becomes `//`. Back from a subject,
`.` is a level separator, `//` a `.` and a lone `/` nothing, so a NATS publisher's
`a.b` reaches MQTT as `a/b` and `a//b` as `a.b`. A space cannot be translated (the client
is disconnected). In filters `+` is `*` and `#` is `>`; `foo/#` also matches `foo` itself,
which takes a second NATS subscription on `foo`.
"""

from __future__ import annotations


class TopicError(Exception):
    """A topic or filter that has no NATS subject (the text is nats-server's)."""


ERR_UNSUPPORTED_CHARACTER = "character not supported for MQTT topics"
ERR_EMPTY_TOPIC = "topic cannot be empty"
ERR_EMPTY_FILTER = "topic filter cannot be empty"


def _level_token(level: str) -> str:
    if not level:
        return "/"
    if " " in level:
        raise TopicError(ERR_UNSUPPORTED_CHARACTER)
    return level.replace(".", "//")


def topic_to_subject(topic: str) -> str:
    """A PUBLISH topic (no wildcards allowed) as the subject NATS subscribers see."""
    if not topic:
        raise TopicError(ERR_EMPTY_TOPIC)
    if (
        topic[0] != "/"
        and topic[-1] != "/"
        and "//" not in topic
        and "." not in topic
        and " " not in topic
        and "+" not in topic
        and "#" not in topic
    ):
        return topic.replace("/", ".")  # the common case: nothing to escape
    if "+" in topic or "#" in topic:
        raise TopicError(f"topic {topic!r} contains wildcards")
    return ".".join(_level_token(level) for level in topic.split("/"))


def filter_to_subjects(topic_filter: str) -> list[str]:
    """A SUBSCRIBE filter as the NATS subscriptions that serve it: one, or two for a
    filter ending in `/#` (the wildcard, then the parent level itself)."""
    if not topic_filter:
        raise TopicError(ERR_EMPTY_FILTER)
    levels = topic_filter.split("/")
    tokens: list[str] = []
    for i, level in enumerate(levels):
        if level == "+":
            tokens.append("*")
        elif level == "#":
            if i != len(levels) - 1:
                raise TopicError(f"invalid filter {topic_filter!r}: '#' must be the last level")
            tokens.append(">")
        elif "+" in level or "#" in level:
            raise TopicError(f"invalid filter {topic_filter!r}: wildcards must fill a level")
        else:
            tokens.append(_level_token(level))
    subject = ".".join(tokens)
    if len(tokens) > 1 and tokens[-1] == ">":
        return [subject, ".".join(tokens[:-1])]
    return [subject]


def subject_to_topic(subject: str) -> str:
    """A NATS subject as the topic an MQTT subscriber receives."""
    if "/" not in subject:
        return subject.replace(".", "/")  # the common case: nothing escaped
    out: list[str] = []
    i, n = 0, len(subject)
    while i < n:
        ch = subject[i]
        if ch == ".":
            out.append("/")
        elif ch == "/":
            if i + 1 < n and subject[i + 1] == "/":
                out.append(".")
                i += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def is_wildcard_first(topic_filter: str) -> bool:
    """MQTT-4.7.2-1: a filter starting with a wildcard does not match `$...` topics."""
    return topic_filter[:1] in ("#", "+")
