"""Subject transforms (`{src, dest}`): stream `subject_transform`, source/mirror transforms and
republish destinations.

`src` is a subject filter (wildcards allowed, empty = `>`); `dest` is a subject whose tokens
may be mapping functions referring to the wildcards of `src` by position (1-based):

    $1  {{wildcard(1)}}  {{partition(n,1,2)}}  {{split(1,-)}}  {{splitfromleft(1,2)}}
    {{splitfromright(1,2)}}  {{slicefromleft(1,2)}}  {{slicefromright(1,2)}}
    {{left(1,2)}}  {{right(1,2)}}

A `>` in `dest` takes everything `src`'s `>` matched. `compile_transform` raises
`TransformError` with nats-server's wording; `apply` returns None when a subject does not
match `src`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from pynats.server.subjects import is_valid_subject, subject_matches


class TransformError(ValueError):
    """An invalid source (`is_source`) or destination, worded as nats-server words it."""

    def __init__(self, text: str, *, is_source: bool = False, index: int | None = None) -> None:
        super().__init__(text)
        self.is_source = is_source
        self.index = index  # the wildcard index that was out of range


_FUNC_RE = re.compile(r"^\{\{\s*([a-zA-Z]+)\s*\((.*)\)\s*\}\}$")
_DOLLAR_RE = re.compile(r"^\$(\d+)$")

TokenFn = Callable[[list[str]], str]


def _fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


class SubjectTransform:
    """A compiled transform; `apply(subject)` maps a matching subject, else None."""

    def __init__(self, src: str, dest: str, *, strict: bool = False) -> None:
        self.strict = strict
        self.src = src or ">"
        self.dest = dest
        self._src_tokens = self.src.split(".")
        self._wildcard_positions = [
            i for i, t in enumerate(self._src_tokens) if t == "*" or t == ">"
        ]
        self._src_has_fwc = self._src_tokens[-1] == ">"
        self._ops: list[TokenFn | str] = []
        self._used_wildcards: set[int] = set()  # indexes the destination refers to
        self._dest_has_fwc = False
        self._compile_dest()

    def _compile_dest(self) -> None:
        if not self.dest:
            self._ops = []
            return
        tokens = self.dest.split(".")
        nwild = len(self._wildcard_positions) - (1 if self._src_has_fwc else 0)
        for i, token in enumerate(tokens):
            if token == ">":
                if i != len(tokens) - 1 or not self._src_has_fwc:
                    raise TransformError(
                        f"invalid mapping destination: full wildcard not allowed in {self.dest}"
                    )
                self._dest_has_fwc = True
                continue
            m = _DOLLAR_RE.match(token)
            if m:
                self._ops.append(self._wildcard_fn(int(m.group(1)), nwild, token))
                continue
            m = _FUNC_RE.match(token)
            if m:
                self._ops.append(self._function(m.group(1).lower(), m.group(2), nwild, token))
                continue
            if "{{" in token or "}}" in token:
                raise TransformError(f"invalid mapping destination: unknown function in {token}")
            if token == "*":
                raise TransformError(
                    f"invalid mapping destination: wildcard not allowed in {self.dest}"
                )
            self._ops.append(token)
        if self.strict and (
            self._used_wildcards != set(range(nwild))
            or (self._src_has_fwc and not self._dest_has_fwc)
        ):
            raise TransformError("not all source wildcards are used in the destination")

    def _index(self, n: int, nwild: int, token: str) -> int:
        if n < 1 or n > nwild:
            raise TransformError(
                f"invalid mapping destination: wildcard index out of range in {token}", index=n
            )
        return n - 1

    def _using(self, fn: TokenFn, *indexes: int) -> TokenFn:
        """`fn` refers to these wildcards (a strict transform must refer to every one)."""
        self._used_wildcards.update(indexes)
        return fn

    def _wildcard_fn(self, n: int, nwild: int, token: str) -> TokenFn:
        i = self._index(n, nwild, token)
        return self._using(lambda wild: wild[i], i)

    def _function(self, name: str, args_text: str, nwild: int, token: str) -> TokenFn:
        args = [a.strip() for a in args_text.split(",")] if args_text.strip() else []

        def ints(count: int) -> list[int]:
            _check_count(args, count, token)
            try:
                return [int(a) for a in args]
            except ValueError:
                raise _bad_argument(token) from None

        if name == "wildcard":
            return self._wildcard_fn(ints(1)[0], nwild, token)
        if name == "partition":
            if len(args) < 1:
                raise _bad_argument(token)
            try:
                nums = [int(a) for a in args]
            except ValueError:
                raise _bad_argument(token) from None
            buckets = nums[0]
            if buckets <= 0:
                raise _bad_argument(token)
            idx = [self._index(n, nwild, token) for n in nums[1:]]

            def partition(wild: list[str]) -> str:
                return str(_fnv1a32("".join(wild[i] for i in idx).encode()) % buckets)

            return self._using(partition, *idx)
        if name == "random":
            if len(args) != 1:
                raise _bad_argument(token)
            top = _to_int(args[0], token)
            if top <= 0:
                raise _bad_argument(token)
            return lambda wild: str(random.randrange(top))
        if name == "split":
            _check_count(args, 2, token)
            i = self._index(_to_int(args[0], token), nwild, token)
            delim = args[1]
            return self._using(lambda wild: ".".join(p for p in wild[i].split(delim) if p), i)
        if name in ("splitfromleft", "splitfromright", "slicefromleft", "slicefromright"):
            n, pos = ints(2)
            i = self._index(n, nwild, token)
            if pos <= 0:
                raise _bad_argument(token)
            return self._using(_SPLITTERS[name](i, pos), i)
        if name in ("left", "right"):
            n, size = ints(2)
            i = self._index(n, nwild, token)
            if name == "left":
                return self._using(lambda wild: wild[i][:size], i)
            return self._using(lambda wild: wild[i][-size:] if size else "", i)
        raise TransformError(f"invalid mapping destination: unknown function in {token}")

    def apply(self, subject: str) -> str | None:
        if not subject_matches(self.src.encode(), subject.encode()):
            return None
        if not self.dest:
            return subject
        tokens = subject.split(".")
        wild = [tokens[i] for i in self._wildcard_positions if self._src_tokens[i] == "*"]
        out = [op if isinstance(op, str) else op(wild) for op in self._ops]
        if self._dest_has_fwc:
            out.extend(tokens[len(self._src_tokens) - 1 :])
        return ".".join(out)


def _to_int(text: str, token: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _bad_argument(token) from None


def _bad_argument(token: str) -> TransformError:
    return TransformError(
        f"invalid mapping destination: function argument is invalid or in the wrong format "
        f"in {token}"
    )


def _check_count(args: list[str], count: int, token: str) -> None:
    if len(args) < count:
        raise TransformError(
            f"invalid mapping destination: not enough arguments passed to the function in {token}"
        )
    if len(args) > count:
        raise TransformError(
            f"invalid mapping destination: too many arguments passed to the function in {token}"
        )


def _split_left(i: int, pos: int) -> TokenFn:
    return lambda wild: _join_nonempty(wild[i][:pos], wild[i][pos:])


def _split_right(i: int, pos: int) -> TokenFn:
    return lambda wild: _join_nonempty(wild[i][:-pos], wild[i][-pos:])


def _slice_left(i: int, size: int) -> TokenFn:
    return lambda wild: ".".join(wild[i][j : j + size] for j in range(0, len(wild[i]), size))


def _slice_right(i: int, size: int) -> TokenFn:
    def run(wild: list[str]) -> str:
        s = wild[i]
        head = len(s) % size
        parts = [s[:head]] if head else []
        parts += [s[j : j + size] for j in range(head, len(s), size)]
        return ".".join(parts)

    return run


def _join_nonempty(a: str, b: str) -> str:
    return ".".join(p for p in (a, b) if p)


_SPLITTERS: dict[str, Callable[[int, int], TokenFn]] = {
    "splitfromleft": _split_left,
    "splitfromright": _split_right,
    "slicefromleft": _slice_left,
    "slicefromright": _slice_right,
}


def compile_transform(src: str, dest: str, *, strict: bool = False) -> SubjectTransform:
    """Validate and compile; raises TransformError (source vs destination problem).

    `strict` (republish): every wildcard of `src` must appear in `dest`."""
    if src and not is_valid_subject(src.encode()):
        raise TransformError("invalid subject", is_source=True)
    if dest:
        plain = ".".join(
            "x" if (t.startswith("{{") or t.startswith("$")) else t for t in dest.split(".")
        )
        if not is_valid_subject(plain.encode()):
            raise TransformError("invalid mapping destination: invalid subject")
    return SubjectTransform(src, dest, strict=strict)
