"""The sans-I/O parts of auth callout: the parser holding what follows a CONNECT, the server's
keys against an independent NaCl implementation of xkeys (the tests' service side), the
request JWT's signature, and the checks of an answer in nats-server's order and words."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.support import jwts

from pynats.server.accounts import Account
from pynats.server.auth import Permissions, SubjectPermission
from pynats.server.auth_callout import (
    AUTH_CALLOUT_SUBJECT,
    CalloutRefused,
    CalloutTarget,
    Expectation,
    check_response,
    encode_jwt,
    raw_auth_user,
    with_callout_denied,
)
from pynats.server.nkey import ServerKeys
from pynats.server.protocol import ProtocolParser


class Recorder:
    """A sink that holds the parser at the first CONNECT, as a client awaiting a callout."""

    def __init__(self) -> None:
        self.ops: list[Any] = []
        self.parser: ProtocolParser | None = None

    def process_connect(self, arg: bytes) -> None:
        self.ops.append(("CONNECT", arg))
        assert self.parser is not None
        self.parser.hold()

    def process_pub(
        self, subject: bytes, reply: bytes | None, hdr_len: int, payload: bytes
    ) -> None:
        self.ops.append(("PUB", subject, payload))

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        self.ops.append(("SUB", subject, sid))

    def process_unsub(self, sid: bytes, max_msgs: int) -> None:
        self.ops.append(("UNSUB", sid))

    def process_ping(self) -> None:
        self.ops.append(("PING",))

    def process_pong(self) -> None:
        self.ops.append(("PONG",))


STREAM = b'CONNECT {"user":"a"}\r\nSUB x 1\r\nPUB x 2\r\nhi\r\nPING\r\n'


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_nothing_after_a_held_connect_is_parsed_until_released(cut: int) -> None:
    sink = Recorder()
    parser = ProtocolParser(sink)
    sink.parser = parser
    parser.feed(STREAM[:cut])
    parser.feed(STREAM[cut:])
    assert sink.ops == [("CONNECT", b'{"user":"a"}')]
    rest = parser.release()
    parser.feed(rest)
    assert sink.ops[1:] == [("SUB", b"x", b"1"), ("PUB", b"x", b"hi"), ("PING",)]


def test_server_keys_seal_and_open_with_an_independent_xkey_implementation() -> None:
    keys = ServerKeys()
    service = jwts.curve()
    sealed = keys.seal(b"request", service.public_key)
    assert sealed.startswith(b"xkv1")
    assert service.open(sealed, keys.xkey) == b"request"
    assert keys.open(service.seal(b"answer", keys.xkey), service.public_key) == b"answer"
    with pytest.raises(ValueError, match="could not decrypt"):
        keys.open(jwts.curve().seal(b"answer", keys.xkey), service.public_key)


def test_request_jwt_is_signed_by_the_server_id() -> None:
    keys = ServerKeys()
    now = int(time.time())
    claims = {"aud": "nats-authorization-request", "exp": now + 2, "iat": now}
    token = encode_jwt(
        {**claims, "iss": keys.id, "sub": "A" * 56}, {"type": "authorization_request"}, keys
    )
    decoded = jwts.decode_verified(token)
    assert decoded["iss"] == keys.id and keys.id.startswith("N")
    assert list(decoded) == ["aud", "exp", "jti", "iat", "iss", "sub", "nats"]


def test_raw_auth_user_prefers_nkey_then_user_then_token() -> None:
    assert raw_auth_user({"nkey": "UX", "user": "u", "auth_token": "t"}) == "UX"
    assert raw_auth_user({"user": "u", "auth_token": "t"}) == "u"
    assert raw_auth_user({"auth_token": "t"}) == "t"
    assert raw_auth_user({}) == ""


def test_callout_subject_denied_on_top_of_granted_permissions() -> None:
    perms = Permissions(publish=SubjectPermission(allow=["a.>"], deny=["a.b"]))
    merged = with_callout_denied(perms)
    assert merged.publish == SubjectPermission(allow=["a.>"], deny=["a.b", AUTH_CALLOUT_SUBJECT])
    assert with_callout_denied(None).publish == SubjectPermission(deny=[AUTH_CALLOUT_SUBJECT])


# -- answers ---------------------------------------------------------------------------------


ISSUER = jwts.account()
SERVER = jwts.Identity.new(13 << 3)
APP = Account("APP")


def expectation(user_nkey: str) -> Expectation:
    return Expectation(
        user_nkey=user_nkey,
        server_id=SERVER.public_key,
        target=CalloutTarget(account="AUTH", issuer=ISSUER.public_key),
        lookup_account=lambda name: APP if name == "APP" else None,
    )


def decoded(token: str) -> dict[str, Any]:
    return jwts.decode_verified(token)


def test_a_good_answer_places_the_user() -> None:
    usr = jwts.user()
    user_token = jwts.user_jwt(ISSUER, usr, "alice", aud="APP")
    response = jwts.authorization_response(
        ISSUER, usr.public_key, SERVER.public_key, user_jwt=user_token
    )
    placed, user = check_response(decoded(response), expectation(usr.public_key), was_sealed=False)
    assert placed is APP
    assert user["name"] == "alice"


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"error": "nope"}, "Auth callout service returned an error: nope"),
        ({"server": "other"}, "Auth callout violation: auth callout response is not for server"),
        ({"subject": "other"}, "auth callout response is not for expected user"),
        ({"signer": "stranger"}, "Auth callout signing key is unknown"),
        ({"aud": "NOPE"}, 'No valid account "NOPE" for auth callout response on account "AUTH"'),
        ({"user_issuer": "stranger"}, "Wrong issuer for auth callout response"),
        ({"exp": -60}, "Error validating user JWT: claim is expired"),
        ({"both": True}, "Authorization response had validation errors: Only Error or Jwt"),
    ],
)
def test_bad_answers_are_refused_with_nats_server_words(
    change: dict[str, Any], warning: str
) -> None:
    usr = jwts.user()
    stranger = jwts.account()
    extra: dict[str, Any] = {}
    if "exp" in change:
        extra["exp"] = int(time.time()) + change["exp"]
    user_signer = stranger if change.get("user_issuer") else ISSUER
    user_token = jwts.user_jwt(user_signer, usr, "u", aud=change.get("aud", "APP"), **extra)
    kwargs: dict[str, Any] = {"user_jwt": user_token}
    if "error" in change:
        kwargs = {"error": change["error"]}
    if change.get("both"):
        kwargs["error"] = "and a jwt"
    server = jwts.Identity.new(13 << 3).public_key if change.get("server") else SERVER.public_key
    subject = jwts.user().public_key if change.get("subject") else usr.public_key
    signer = stranger if change.get("signer") else ISSUER
    response = jwts.authorization_response(signer, subject, server, **kwargs)
    with pytest.raises(CalloutRefused) as info:
        check_response(decoded(response), expectation(usr.public_key), was_sealed=False)
    assert warning in str(info.value)
