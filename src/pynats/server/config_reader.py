"""Reading a parsed configuration as nats-server's parser does: the shared pieces.

`Reader` walks the tree collecting errors and warnings with their places, and has typed
getters that report Go's texts. nats-server's parse functions read values with type
assertions and turn a failed one into an error at the last token read (`recover()`), which
also skips the rest of that function: `GoPanic` and `Reader.recovering()` do the same, so a
block stops where nats-server's stops. The value parsers that several blocks use live here
too: `parseListen` (`go_listen`), users, permissions and subject lists, authorization
timeouts, and Go's `%v` of a value (`go_value`).

The blocks themselves have their modules: `config_options` (the top level and dispatch),
`config_tls`, `config_cluster`, `config_leafnodes`, `config_websocket`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pynats.gotime import NS_PER_S, DurationError, parse_duration

from .auth import NkeyUser, Permissions, ResponsePermission, SubjectPermission, User
from .conf import ConfigMap
from .conf.tree import Position
from .conf.units import duration_from_config, go_quote, go_type_name
from .options import GoURL, parse_go_url, split_host_port
from .subjects import is_valid_subject


class GoPanic(Exception):
    """A failed type assertion in nats-server's parser: `recover()` reports it at the last
    token read and the function it happened in returns at once (zero values)."""

    def __init__(self, position: Position | None, text: str) -> None:
        super().__init__(text)
        self.position = position
        self.text = text


def conversion_text(value: Any, want: str) -> str:
    """Go's text for a failed `value.(want)`."""
    return f"interface conversion: interface {{}} is {go_type_name(value)}, not {want}"


class Reader:
    """Walks a parsed file, collecting errors and warnings with their positions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []
        self.warnings: list[str] = []  # nats-server's own warnings (`-t` fails on them)
        self.notes: list[str] = []  # keys pynats does not support yet

    def where(self, m: ConfigMap | None, key: str | None) -> str:
        pos = m.position(key) if (m is not None and key is not None) else None
        if pos is None:
            return f"{self.path}:0:0"
        return f"{pos.file or self.path}:{pos.line}:{pos.column}"

    def error(self, m: ConfigMap | None, key: str | None, text: str) -> None:
        self.errors.append(f"{self.where(m, key)}: {text}")

    def warn(self, m: ConfigMap | None, key: str | None, text: str) -> None:
        self.warnings.append(f"{self.where(m, key)}: {text}")

    def error_at(self, position: Position | None, text: str) -> None:
        """An error at a list element's place; without a place, the bare text (as nats-server
        prints errors about values it had already unwrapped)."""
        self.errors.append(f"{self._place(position)}{text}")

    def warn_at(self, position: Position | None, text: str) -> None:
        self.warnings.append(f"{self._place(position)}{text}")

    def _place(self, position: Position | None) -> str:
        if position is None:
            return ""
        return f"{position.file or self.path}:{position.line}:{position.column}: "

    def unsupported(self, m: ConfigMap, key: str, what: str = "") -> None:
        detail = f" ({what})" if what else ""
        self.notes.append(
            f'{self.where(m, key)}: "{key}" is not supported by pynats yet and is ignored{detail}'
        )

    # -- nats-server's type assertions (a failure ends the enclosing parse function) -------

    @contextmanager
    def recovering(self) -> Iterator[None]:
        """`defer convertPanicToErrorList(...)`: a GoPanic inside becomes an error."""
        try:
            yield
        except GoPanic as p:
            self.error_at(p.position, p.text)

    def panic(self, m: ConfigMap | None, key: str | None, text: str) -> GoPanic:
        """A GoPanic at `key`'s place (raise it)."""
        return GoPanic(m.position(key) if m is not None and key is not None else None, text)

    def expect_int(self, m: ConfigMap, key: str) -> int:
        v = m[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.panic(m, key, conversion_text(v, "int64"))
        return v

    def expect_bool(self, m: ConfigMap, key: str) -> bool:
        v = m[key]
        if not isinstance(v, bool):
            raise self.panic(m, key, conversion_text(v, "bool"))
        return v

    def expect_str(self, m: ConfigMap, key: str) -> str:
        v = m[key]
        if not isinstance(v, str):
            raise self.panic(m, key, conversion_text(v, "string"))
        return v

    def expect_map(self, m: ConfigMap, key: str) -> ConfigMap:
        v = m[key]
        if not isinstance(v, ConfigMap):
            raise self.panic(m, key, conversion_text(v, "map[string]interface {}"))
        return v

    def go_duration(self, m: ConfigMap, key: str, field: str) -> float:
        """nats-server's `parseDuration(field, ...)`: a duration string (an error leaves 0),
        or seconds as an integer with a warning; anything else is warned about and then
        fails its type assertion."""
        v = m[key]
        if isinstance(v, str):
            try:
                return parse_duration(v) / NS_PER_S
            except DurationError as e:
                self.error(m, key, f"error parsing {field}: {e}")
                return 0.0
        self.warn(
            m, key, f'invalid use of field "{field}": {field} should be converted to a duration'
        )
        return float(self.expect_int(m, key))

    def unknown_field(self, m: ConfigMap, key: str) -> None:
        """`unknown field "key"`, unless the key served as a variable."""
        if not m.is_used_variable(key):
            self.error(m, key, f'unknown field "{key}"')

    # -- typed getters ------------------------------------------------------------------

    def integer(self, m: ConfigMap, key: str) -> int | None:
        v = m[key]
        if isinstance(v, bool) or not isinstance(v, int):
            self.error(
                m, key, f"interface conversion: interface {{}} is {go_type_name(v)}, not int64"
            )
            return None
        return v

    def boolean(self, m: ConfigMap, key: str) -> bool | None:
        v = m[key]
        if not isinstance(v, bool):
            self.error(
                m, key, f"interface conversion: interface {{}} is {go_type_name(v)}, not bool"
            )
            return None
        return v

    def string(self, m: ConfigMap, key: str) -> str | None:
        v = m[key]
        if not isinstance(v, str):
            self.error(
                m, key, f"interface conversion: interface {{}} is {go_type_name(v)}, not string"
            )
            return None
        return v

    def duration(self, m: ConfigMap, key: str, field_name: str | None = None) -> float | None:
        try:
            seconds, warning = duration_from_config(field_name or key, m[key])
        except ValueError as e:
            self.error(m, key, str(e))
            return None
        if warning:
            self.warn(m, key, f'invalid use of field "{key}": {warning}')
        return seconds

    def seconds(self, m: ConfigMap, key: str) -> float | None:
        """Timeouts given as (float) seconds or a duration string."""
        v = m[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return self.duration(m, key)

    def mapping(self, m: ConfigMap, key: str) -> ConfigMap | None:
        v = m[key]
        if not isinstance(v, ConfigMap):
            self.error(
                m,
                key,
                f"interface conversion: interface {{}} is {go_type_name(v)}, not map[string]interface {{}}",
            )
            return None
        return v

    def str_list(self, m: ConfigMap, key: str) -> list[str] | None:
        v = m[key]
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.error(
                m,
                key,
                f"interface conversion: interface {{}} is {go_type_name(v)}, not []interface {{}}",
            )
            return None
        return list(v)


def go_float(value: float) -> str:
    """Go's shortest `%v` of a float64: `300.5`, `1e+06`, `1e-05`."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if value < 0 or (value == 0 and str(value).startswith("-")) else ""
    if value == 0:
        return sign + "0"
    digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    point = len(digits) + int(exponent)  # the decimal point's place among the digits
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        e = point - 1
        return f"{sign}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def element_position(value: Any, index: int) -> Position | None:
    position = getattr(value, "position", None)
    return position(index) if callable(position) else None


def go_value(value: Any) -> str:
    """A config value as Go's `%v` prints it (maps as `map[k:v ...]`, lists as `[a b]`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def go_listen(value: Any) -> tuple[str, int] | str:
    """nats-server's `parseListen`: a port, or "host:port"; the error text otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "", value
    if not isinstance(value, str):
        return f"expected port or host:port, got {go_type_name(value)}"
    try:
        host, port = split_host_port(value)
    except ValueError:
        return f"could not parse address string {go_quote(value)}"
    number = go_atoi(port)
    if number is None:
        return f"could not parse port {go_quote(port)}"
    return host, number


def go_atoi(text: str) -> int | None:
    """Go's `strconv.Atoi`: an optional sign and decimal digits, within int64."""
    body = text[1:] if text[:1] in "+-" and text else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    number = int(text)
    return number if -(1 << 63) <= number < (1 << 63) else None


def auth_timeout(r: Reader, m: ConfigMap, key: str, block: str = "authorization") -> float | None:
    """An authorization `timeout`: seconds (int or float) or a duration string, with
    nats-server's warning above a minute (an unquoted `1m` is read as 1 million). `block`
    names it in the errors ("leafnode authorization" for the leaf listener's)."""
    value = m[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        r.error(m, key, f"error parsing {block} config, 'timeout' wrong type")
        return None
    if isinstance(value, str):
        try:
            seconds = parse_duration(value) / NS_PER_S
        except DurationError as e:
            r.error(m, key, f"error parsing {block} config, 'timeout' {e}")
            return None
    else:
        seconds = float(value)
    if seconds > 60:
        r.warn(
            m,
            key,
            f'invalid use of field "{key}": timeout of {go_value(value)} ({seconds:.6f} seconds) '
            "is high, consider keeping it under 60 seconds. possibly caused by unquoted "
            "duration; use '1m' instead of 1m, for example",
        )
    return seconds


def write_timeout_policy(r: Reader, m: ConfigMap, key: str) -> str | None:
    """`write_timeout` (top level and `cluster {}`): one of nats-server's policy names, or
    None when it is absent or refused (the error is reported)."""
    policy = r.string(m, key)
    if policy is None:
        return None
    if policy not in ("default", "close", "retry"):
        r.error(m, key, "write_timeout must be 'default', 'close' or 'retry'")
        return None
    return policy


def apply_default_permissions(users: list[User], permissions: Permissions | None) -> None:
    """Users without permissions of their own take the block's default permissions."""
    if permissions is None:
        return
    for user in users:
        if user.permissions is None:
            user.permissions = permissions


def parse_users(r: Reader, m: ConfigMap, key: str) -> tuple[list[User], list[NkeyUser]]:
    value = m[key]
    users: list[User] = []
    nkeys: list[NkeyUser] = []
    if not isinstance(value, list):
        r.error(m, key, f"Expected users field to be an array, got {go_type_name(value)}")
        return users, nkeys
    for entry in value:
        if not isinstance(entry, ConfigMap):
            r.error(m, key, f"Expected user entry to be a map/struct, got {entry!r}")
            continue
        name = password = nkey = ""
        perms: Permissions | None = None
        conn_types: list[str] | None = None
        account = ""
        proxy_required = False
        for k in entry:
            lk = k.lower()
            if lk in ("user", "username"):
                name = r.string(entry, k) or ""
            elif lk in ("pass", "password"):
                password = r.string(entry, k) or ""
            elif lk == "nkey":
                nkey = r.string(entry, k) or ""
            elif lk in ("permission", "permissions", "authorization"):
                perms = parse_permissions(r, entry, k)
            elif lk in ("allowed_connection_types", "connection_types", "clients"):
                conn_types = r.str_list(entry, k)
            elif lk == "account":
                account = r.string(entry, k) or ""
            elif lk == "proxy_required":
                proxy_required = bool(r.expect_bool(entry, k))
            elif not entry.is_used_variable(k):
                r.error(entry, k, f'Unknown field "{k}" parsing users')
        if nkey:
            if not nkey.startswith("U") or len(nkey) != 56:
                r.error(m, key, f'Not a valid public nkey for a user: "{nkey}"')
                continue
            nkeys.append(
                NkeyUser(
                    nkey=nkey,
                    permissions=perms,
                    account=account,
                    allowed_connection_types=conn_types,
                    proxy_required=proxy_required,
                )
            )
        elif name:
            users.append(
                User(
                    username=name,
                    password=password,
                    permissions=perms,
                    account=account,
                    allowed_connection_types=conn_types,
                    proxy_required=proxy_required,
                )
            )
        else:
            r.error(m, key, "User entry requires a user")
    return users, nkeys


def parse_permissions(
    r: Reader, m: ConfigMap, key: str, *, positioned: bool = True
) -> Permissions | None:
    """A permissions map (publish/subscribe, or import/export for routes). `positioned` False
    reports a non-map without a place, as nats-server does for `cluster { permissions }`."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        text = f"Expected permissions to be a map/struct, got {go_value(block)}"
        r.error_at(m.position(key) if positioned else None, text)
        return None
    perms = Permissions()
    for k in block:
        lk = k.lower()
        if lk in ("pub", "publish", "import"):
            perms.publish = subject_permission(r, block, k)
        elif lk in ("sub", "subscribe", "export"):
            perms.subscribe = subject_permission(r, block, k)
        elif lk in ("allow_responses", "publish_allow_responses"):
            perms.response = response_permission(r, block, k)
        elif not block.is_used_variable(k):
            r.error(block, k, f'Unknown field "{k}" parsing permissions')
    if perms.response is not None and perms.publish is None:
        # Responses alone imply everything else is denied for publishing.
        perms.publish = SubjectPermission(allow=[], deny=[])
    return perms


def subject_permission(r: Reader, m: ConfigMap, key: str) -> SubjectPermission | None:
    """A subject, a list of subjects (allowed), or `{allow, deny}`; an empty map is none."""
    value = m[key]
    if not isinstance(value, ConfigMap):
        allow = permission_subjects(r, value, None)
        return SubjectPermission(allow=allow) if allow is not None else None
    if not value:
        return None
    perm = SubjectPermission()
    for k in value:
        lk = k.lower()
        if lk == "allow":
            allow = permission_subjects(r, value[k], value.position(k))
            if allow is not None:
                perm.allow = allow
        elif lk == "deny":
            deny = permission_subjects(r, value[k], value.position(k))
            if deny is not None:
                perm.deny = deny
        elif not value.is_used_variable(k):
            r.error(
                value,
                k,
                f"Unknown field name \"{k}\" parsing subject permissions, only 'allow' or 'deny' are permitted",
            )
    return perm


def permission_subjects(r: Reader, value: Any, position: Position | None) -> list[str] | None:
    """nats-server's `parsePermSubjects`: a subject or a list of them, each valid or a
    queue-qualified `subject queue`. `position` is None where nats-server has no place."""
    if isinstance(value, str):
        subjects = [value]
    elif isinstance(value, list):
        subjects = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                r.error_at(
                    element_position(value, i),
                    "Subject in permissions array cannot be cast to string",
                )
                return None
            subjects.append(item)
    else:
        r.error_at(
            position,
            "Expected subject permissions to be a subject, or array of subjects, "
            f"got {go_type_name(value)}",
        )
        return None
    for subject in subjects:
        if is_valid_subject(subject.encode()):
            continue
        parts = subject.split()
        bad = subject if len(parts) != 2 else parts[0]
        if len(parts) != 2 or not is_valid_subject(parts[0].encode()):
            r.error_at(position, f"subject {go_quote(bad)} is not a valid subject")
            return None
    return subjects


def response_permission(r: Reader, m: ConfigMap, key: str) -> ResponsePermission | None:
    value = m[key]
    if isinstance(value, bool):
        return ResponsePermission() if value else None
    if not isinstance(value, ConfigMap):
        r.error(
            m,
            key,
            f"Expected response permissions to be a boolean or map, got {go_type_name(value)}",
        )
        return None
    perm = ResponsePermission()
    for k in value:
        lk = k.lower()
        if lk in ("max", "max_msgs", "max_messages", "max_responses"):
            n = r.integer(value, k)
            if n is not None:
                perm.max_msgs = n
        elif lk in ("expires", "expiration", "ttl"):
            d = r.duration(value, k)
            if d is not None:
                perm.expires = d
        else:
            r.error(value, k, f'Unknown field "{k}" parsing allow_responses')
    return perm


def parse_url(text: str) -> GoURL:
    """Go's `url.Parse` as nats-server 2.15's Go has it: `parse_go_url`, plus the stricter
    port rule for http and https, whose port starts at the host's first colon (`a:1:2` has
    the port ":1:2"). ValueError carries Go's message."""
    url = parse_go_url(text)
    host = url.host
    if url.scheme in ("http", "https") and not host.startswith("[") and host.count(":") > 1:
        main = text.partition("#")[0]
        port = host[host.index(":") :]
        raise ValueError(f"parse {go_quote(main)}: invalid port {go_quote(port)} after host")
    return url
