"""The HTTP/1.1 side of the websocket port, as nats-server's `wsUpgrade` and Go's HTTP server
answer it: no I/O.

`parse_request_head` reads a request head (Go's server refuses what it cannot read with its
own `HttpError` text and closes); `check_upgrade` applies nats-server's checks in its order
(method, Host, Upgrade, Connection, key, version, Origin, the MQTT path) and returns the
`Upgrade` the request asks for, or a `HandshakeError` with the HTTP status and the log text;
`error_response` writes the refusal as Go's `http.Error` does. `OriginPolicy` is
`same_origin` and `allowed_origins`, with Go's URL and host:port parsing and their texts.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .connection import CLIENT, LEAF
from .options import go_quote, parse_go_url

if TYPE_CHECKING:
    from .options import WebsocketOptions

MQTT = 8  # nats-server's kind for MQTT clients (taken when the server has an `mqtt {}` port)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LEAFNODE_PATH = "/leafnode"
MQTT_PATH = "/mqtt"
MAX_REQUEST_HEAD_BYTES = (1 << 20) + 4096  # Go's http.DefaultMaxHeaderBytes, plus its slack

_STATUS_TEXT = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


# -- the HTTP request ------------------------------------------------------------------------


class HttpError(Exception):
    """Go's HTTP server refuses the request before any handler sees it: `HTTP/1.1 <text>`
    and the same text as body, then the connection closes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def response(self) -> bytes:
        return (
            f"HTTP/1.1 {self.text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{self.text}"
        ).encode()


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str  # "HTTP/1.1"
    headers: list[tuple[str, str]]  # (canonical name, value) in order
    host: str = ""

    def get(self, name: str) -> str:
        """The first value of a header ("" when absent), as Go's Header.Get."""
        for key, value in self.headers:
            if key == name:
                return value
        return ""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.headers)

    @property
    def path(self) -> str:
        """The request target's path (an absolute-form target loses its scheme and host)."""
        target = self.target
        if "://" in target:
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        return target.partition("?")[0]

    @property
    def keep_alive(self) -> bool:
        """Whether Go's server would read another request on this connection."""
        if self.version == "HTTP/1.0" or _header_has_token(self.values("Connection"), "close"):
            return False
        return not (self.get("Content-Length") not in ("", "0") or self.has("Transfer-Encoding"))


def canonical_header(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: `sec-websocket-key` -> `Sec-Websocket-Key`."""
    if not all(c.isalnum() or c == "-" for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def parse_request_head(head: bytes) -> HttpRequest:
    """The request line and headers (without the blank line); HttpError as Go's server
    answers a request it cannot read."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError("400 Bad Request")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/") and version[5:].replace(".", "").isdigit():
            raise HttpError("505 HTTP Version Not Supported")
        raise HttpError("400 Bad Request")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name:
            raise HttpError(f"400 Bad Request: malformed MIME header line: {line}")
        headers.append((canonical_header(name), value.strip(" \t")))
    request = HttpRequest(method, target, version, headers)
    hosts = request.values("Host")
    if len(hosts) > 1:
        raise HttpError("400 Bad Request: too many Host headers")
    if "://" in target:
        request.host = target.split("://", 1)[1].partition("/")[0]
    elif hosts:
        request.host = hosts[0]
    elif version == "HTTP/1.1":
        raise HttpError("400 Bad Request: missing required Host header")
    return request


def error_response(status: int, request: HttpRequest | None) -> bytes:
    """A handler's `http.Error`, as Go's server writes it (with `Sec-Websocket-Version: 13`,
    which nats-server adds to every refused upgrade)."""
    text = _STATUS_TEXT[status]
    version = request.version if request is not None else "HTTP/1.1"
    body = "" if request is not None and request.method == "HEAD" else text + "\n"
    lines = [
        f"{version} {status} {text}",
        "Content-Type: text/plain; charset=utf-8",
        "Sec-Websocket-Version: 13",
        "X-Content-Type-Options: nosniff",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        f"Content-Length: {len(text) + 1}",
    ]
    if request is not None and request.version == "HTTP/1.1" and not request.keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _header_has_token(values: list[str], token: str) -> bool:
    """nats-server's wsHeaderContains: a comma-separated token, case-insensitive."""
    token = token.lower()
    return any(t.strip(" \t").lower() == token for v in values for t in v.split(","))


def _has_deflate_extension(values: list[str]) -> bool:
    for value in values:
        for extension in value.split(","):
            for param in extension.split(";"):
                if param.strip(" \t").lower() == "permessage-deflate":
                    return True
    return False


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def parse_cookies(values: list[str]) -> dict[str, str]:
    """name -> value from `Cookie` headers as Go's net/http reads them: names are tokens,
    a value may be quoted and holds no blanks, commas are fine; the first of a name wins."""
    cookies: dict[str, str] = {}
    for value in values:
        for part in value.split(";"):
            name, _, val = part.strip(" \t").partition("=")
            name = name.strip(" \t")
            if not name or not set(name) <= _TOKEN_CHARS:
                continue
            if len(val) > 1 and val[0] == val[-1] == '"':
                val = val[1:-1]
            if any(not (0x20 < ord(c) < 0x7F) or c in '";\\' for c in val):
                continue
            cookies.setdefault(name, val)
    return cookies


# -- origins ---------------------------------------------------------------------------------


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's net.SplitHostPort; ValueError carries its text."""

    def fail(why: str) -> ValueError:
        return ValueError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise fail("too many colons in address")
            raise fail("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[j:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise fail("unexpected ']' in address")
    return host, hostport[i + 1 :]


def origin_host_port(is_tls: bool, hostport: str) -> tuple[str, str]:
    """nats-server's wsGetHostAndPort: a missing port is the scheme's default."""
    try:
        host, port = split_host_port(hostport)
    except ValueError as e:
        if "missing port" not in str(e):
            raise
        host, port = hostport, "443" if is_tls else "80"
    return host.lower(), port


def parse_request_uri(text: str) -> tuple[str, str]:
    """Go's url.ParseRequestURI, for what origin checks use: (scheme, host); ValueError
    carries Go's text."""
    if not text:
        raise ValueError('parse "": empty url')
    scheme, rest = "", text
    for i, c in enumerate(text):
        if c.isascii() and (c.isalpha() or (i > 0 and (c.isdigit() or c in "+-."))):
            continue
        if c == ":":
            if i == 0:
                raise ValueError(f"parse {go_quote(text)}: missing protocol scheme")
            scheme, rest = text[:i].lower(), text[i + 1 :]
        break
    rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return scheme, ""  # opaque: no host
        raise ValueError(f"parse {go_quote(text)}: invalid URI for request")
    if scheme and rest.startswith("//"):
        return scheme, parse_go_url(text).host
    return scheme, ""


@dataclass
class OriginPolicy:
    """`same_origin` and `allowed_origins`: which Origin headers may upgrade."""

    same_origin: bool = False
    allowed: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (scheme, port)

    @classmethod
    def from_options(cls, options: WebsocketOptions, errors: list[str]) -> OriginPolicy:
        policy = cls(same_origin=options.same_origin)
        for origin in options.allowed_origins:
            try:
                scheme, hostport = parse_request_uri(origin)
            except ValueError as e:
                errors.append(f"error parsing allowed origin: {e}")
                continue
            try:
                host, port = origin_host_port(scheme == "https", hostport)
            except ValueError:
                host, port = hostport.lower(), ""
            policy.allowed[host] = (scheme, port)
        return policy

    def check(self, request: HttpRequest, is_tls: bool) -> str | None:
        """Why the request's origin is refused, or None. No Origin header: accepted."""
        if not self.same_origin and not self.allowed:
            return None
        origin = request.get("Origin") or request.get("Sec-Websocket-Origin")
        if not origin:
            return None
        try:
            scheme, hostport = parse_request_uri(origin)
            host, port = origin_host_port(scheme == "https", hostport)
            if self.same_origin:
                # The scheme counts too (nats-server 2.15): https exactly for a TLS listener.
                req_host, req_port = origin_host_port(is_tls, request.host)
                same_scheme = scheme == ("https" if is_tls else "http")
                if not same_scheme or (host, port) != (req_host, req_port):
                    return "not same origin"
        except ValueError as e:
            return str(e)
        if self.allowed:
            allowed = self.allowed.get(host)
            if allowed is None or allowed != (scheme, port):
                return "not in the allowed list"
        return None


# -- the upgrade -----------------------------------------------------------------------------


class HandshakeError(Exception):
    """The upgrade is refused with HTTP `status`; `reason` is for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Upgrade:
    """What a good upgrade request asked for."""

    kind: int  # CLIENT, LEAF or MQTT
    key: str
    compression: bool
    no_masking: bool
    client_ip: str = ""  # X-Forwarded-For, when it is an IP address
    browser: bool = False  # User-Agent "Mozilla/...": 4096-byte frames
    no_compressed_fragments: bool = False  # Safari
    cookies: dict[str, str] = field(default_factory=dict)

    def response(self, extra_headers: dict[str, str]) -> bytes:
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(self.key)}",
        ]
        if self.compression:
            lines.append(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                "client_no_context_takeover"
            )
        if self.kind == MQTT:
            lines.append("Sec-Websocket-Protocol: mqtt")
        if self.no_masking:
            lines.append("Nats-No-Masking: true")
        lines += [f"{name}: {value}" for name, value in extra_headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_upgrade(
    request: HttpRequest,
    options: WebsocketOptions,
    origins: OriginPolicy,
    *,
    is_tls: bool,
    mqtt_enabled: bool = False,
) -> Upgrade:
    """nats-server's wsUpgrade: the upgrade this request asks for, or HandshakeError."""
    path = request.path
    kind = CLIENT
    if path.endswith(LEAFNODE_PATH):
        kind = LEAF
    elif path.endswith(MQTT_PATH):
        kind = MQTT
    if request.method != "GET":
        raise HandshakeError(405, "request method must be GET")
    if not request.host:
        raise HandshakeError(400, "'Host' missing in request")
    if not _header_has_token(request.values("Upgrade"), "websocket"):
        raise HandshakeError(400, "invalid value for header 'Upgrade'")
    if not _header_has_token(request.values("Connection"), "Upgrade"):
        raise HandshakeError(400, "invalid value for header 'Connection'")
    key = request.get("Sec-Websocket-Key")
    if not key:
        raise HandshakeError(400, "key missing")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except ValueError:
        raise HandshakeError(400, "invalid websocket key") from None
    if not _header_has_token(request.values("Sec-Websocket-Version"), "13"):
        raise HandshakeError(400, "invalid version")
    why = origins.check(request, is_tls)
    if why is not None:
        raise HandshakeError(403, f"origin not allowed: {why}")
    if kind == MQTT and not mqtt_enabled:
        raise HandshakeError(404, "mqtt websocket endpoint not enabled")
    compression = options.compression and _has_deflate_extension(
        request.values("Sec-Websocket-Extensions")
    )
    upgrade = Upgrade(
        kind=kind,
        key=key,
        compression=compression,
        no_masking=request.get("Nats-No-Masking") == "true",
    )
    forwarded = request.values("X-Forwarded-For")
    if forwarded:
        with contextlib.suppress(ValueError):
            upgrade.client_ip = str(ipaddress.ip_address(forwarded[0].strip()))
    if kind == CLIENT:
        agent = request.get("User-Agent")
        if agent.startswith("Mozilla/"):
            upgrade.browser = True
            upgrade.no_compressed_fragments = (
                compression and "Version/" in agent and "Safari/" in agent
            )
        if request.has("Cookie"):
            upgrade.cookies = parse_cookies(request.values("Cookie"))
    return upgrade
