"""The websocket upgrade, sans I/O: request heads read as Go's HTTP server reads them, and
nats-server's checks in their order with their texts (the same answers are compared with
the Go server on the wire in tests/integration/websocket/)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynats.server.connection import CLIENT, LEAF
from pynats.server.options import WebsocketOptions
from pynats.server.ws_upgrade import (
    MQTT,
    HandshakeError,
    HttpError,
    OriginPolicy,
    accept_key,
    canonical_header,
    check_upgrade,
    error_response,
    parse_cookies,
    parse_request_head,
    split_host_port,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = [
    "Host: example.com:8080",
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    f"Sec-WebSocket-Key: {KEY}",
    "Sec-WebSocket-Version: 13",
]


def request(*headers: str, line: str = "GET / HTTP/1.1", drop: str = "") -> bytes:
    kept = [h for h in GOOD if not (drop and h.lower().startswith(drop.lower()))]
    return "\r\n".join([line, *kept, *headers]).encode()


def upgrade(
    head: bytes, options: WebsocketOptions | None = None, origins: OriginPolicy | None = None
) -> object:
    return check_upgrade(
        parse_request_head(head),
        options or WebsocketOptions(),
        origins or OriginPolicy(),
        is_tls=False,
    )


def refusal(head: bytes, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(HandshakeError) as e:
        upgrade(head, **kwargs)  # type: ignore[arg-type]
    return e.value.status, e.value.reason


def test_rfc_6455_accept_key() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_good_request_is_a_client_upgrade() -> None:
    result = upgrade(request())
    assert result == upgrade(request())
    assert result.kind == CLIENT
    assert result.compression is False


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        (request(line="POST / HTTP/1.1"), 405, "request method must be GET"),
        (request(drop="Upgrade:"), 400, "invalid value for header 'Upgrade'"),
        (request("Upgrade: h2c", drop="Upgrade:"), 400, "invalid value for header 'Upgrade'"),
        (request(drop="Connection"), 400, "invalid value for header 'Connection'"),
        (request(drop="Sec-WebSocket-Key"), 400, "key missing"),
        (request("Sec-WebSocket-Key: abc", drop="Sec-WebSocket-Key"), 400, "invalid websocket key"),
        (request(drop="Sec-WebSocket-Version"), 400, "invalid version"),
        (request(line="GET /mqtt HTTP/1.1"), 404, "mqtt websocket endpoint not enabled"),
        (request(line="GET / HTTP/1.0", drop="Host"), 400, "'Host' missing in request"),
    ],
)
def test_refusals_in_nats_server_order(head: bytes, status: int, reason: str) -> None:
    assert refusal(head) == (status, reason)


def test_the_method_is_checked_before_anything_else() -> None:
    assert refusal(request(line="PUT / HTTP/1.1", drop="Sec-WebSocket")) == (
        405,
        "request method must be GET",
    )


def test_paths_ending_in_leafnode_are_for_leaf_nodes() -> None:
    assert upgrade(request(line="GET /some/leafnode?x=1 HTTP/1.1")).kind == LEAF
    assert upgrade(request(line="GET /leafnodes HTTP/1.1")).kind == CLIENT
    assert MQTT not in (CLIENT, LEAF)


def test_compression_is_agreed_only_when_configured_and_asked() -> None:
    asked = request("Sec-WebSocket-Extensions: x-foo, permessage-deflate; client_max_window_bits")
    assert upgrade(asked, WebsocketOptions(compression=True)).compression is True
    assert upgrade(asked).compression is False
    assert upgrade(request(), WebsocketOptions(compression=True)).compression is False


def test_no_masking_forwarded_for_browser_and_cookies() -> None:
    result = upgrade(
        request(
            "Nats-No-Masking: true",
            "X-Forwarded-For: 10.0.0.7",
            "User-Agent: Mozilla/5.0 (Macintosh) Version/17.0 Safari/605.1.15",
            'Cookie: a=1; jwt="abc"; a=2',
            "Sec-WebSocket-Extensions: permessage-deflate",
        ),
        WebsocketOptions(compression=True),
    )
    assert result.no_masking is True
    assert result.client_ip == "10.0.0.7"
    assert result.browser is True
    assert result.no_compressed_fragments is True  # Safari
    assert result.cookies == {"a": "1", "jwt": "abc"}
    assert upgrade(request("X-Forwarded-For: 1.2.3.4, 5.6.7.8")).client_ip == ""


def test_the_101_answer() -> None:
    result = upgrade(
        request("Sec-WebSocket-Extensions: permessage-deflate", "Nats-No-Masking: true"),
        WebsocketOptions(compression=True),
    )
    response = result.response({"X-A": "1"})
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
        b"client_no_context_takeover\r\nNats-No-Masking: true\r\nX-A: 1\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("head", "text"),
    [
        (b"HELLO", "400 Bad Request"),
        (b"GET / HTTP/2.0\r\nHost: x", "505 HTTP Version Not Supported"),
        (b"GET / HTTP/1.1", "400 Bad Request: missing required Host header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b", "400 Bad Request: too many Host headers"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nno colon",
            "400 Bad Request: malformed MIME header line: no colon",
        ),
    ],
)
def test_requests_go_cannot_read(head: bytes, text: str) -> None:
    with pytest.raises(HttpError) as e:
        parse_request_head(head)
    assert e.value.text == text
    assert e.value.response().endswith(b"\r\nConnection: close\r\n\r\n" + text.encode())


def test_error_responses_are_http_error_with_the_websocket_version() -> None:
    keep = parse_request_head(b"POST / HTTP/1.1\r\nHost: x")
    body = error_response(405, keep)
    assert body.startswith(
        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nDate: "
    )
    assert body.endswith(b"\r\nContent-Length: 19\r\n\r\nMethod Not Allowed\n")
    close = parse_request_head(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close")
    assert error_response(405, close).endswith(b"Connection: close\r\n\r\nMethod Not Allowed\n")
    head = parse_request_head(b"HEAD / HTTP/1.1\r\nHost: x")
    assert error_response(405, head).endswith(b"Content-Length: 19\r\n\r\n")


def test_header_names_are_canonical() -> None:
    assert canonical_header("sec-websocket-key") == "Sec-Websocket-Key"
    assert canonical_header("X-FORWARDED-FOR") == "X-Forwarded-For"


def test_cookies() -> None:
    assert parse_cookies(["a=1;b=2", " c = 3; d; e =x,y", 'f="q"; a=9']) == {
        "a": "1",
        "b": "2",
        "d": "",
        "e": "x,y",
        "f": "q",
    }


ORIGINS = OriginPolicy.from_options(
    WebsocketOptions(same_origin=False, allowed_origins=["http://a.com", "https://b.com:8443"]),
    [],
)


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        ("", None),
        ("http://a.com", None),
        ("http://A.com:80", None),
        ("https://a.com", "not in the allowed list"),
        ("https://b.com:8443", None),
        ("https://b.com", "not in the allowed list"),
        ("http://c.com", "not in the allowed list"),
        ("::x", 'parse "::x": missing protocol scheme'),
        ("a.com", 'parse "a.com": invalid URI for request'),
    ],
)
def test_allowed_origins(origin: str, why: str | None) -> None:
    head = request(f"Origin: {origin}") if origin else request()
    assert ORIGINS.check(parse_request_head(head), is_tls=False) == why


def test_same_origin_compares_scheme_host_and_port() -> None:
    policy = OriginPolicy(same_origin=True)
    head = parse_request_head(request("Origin: http://EXAMPLE.com:8080"))
    assert policy.check(head, is_tls=False) is None
    assert policy.check(head, is_tls=True) == "not same origin"
    head = parse_request_head(request("Origin: https://example.com:8080"))
    assert policy.check(head, is_tls=True) is None


@pytest.mark.parametrize(
    ("hostport", "result"),
    [
        ("a:1", ("a", "1")),
        ("[::1]:80", ("::1", "80")),
        ("a", "address a: missing port in address"),
        ("a:b:c", "address a:b:c: too many colons in address"),
        ("[::1]", "address [::1]: missing port in address"),
        ("[::1", "address [::1: missing ']' in address"),
    ],
)
def test_split_host_port_is_gos(hostport: str, result: object) -> None:
    if isinstance(result, tuple):
        assert split_host_port(hostport) == result
    else:
        with pytest.raises(ValueError, match=re.escape(str(result))):
            split_host_port(hostport)


@given(st.binary(max_size=400))
def test_any_request_head_is_answered_or_refused(head: bytes) -> None:
    try:
        req = parse_request_head(head)
    except HttpError:
        return
    try:
        check_upgrade(req, WebsocketOptions(compression=True), ORIGINS, is_tls=False)
    except HandshakeError as e:
        assert e.status in (400, 403, 404, 405)
