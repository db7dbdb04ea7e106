"""Three operator-mode options, on pynats and the Go server with the same files:

- `resolver_tls {}`: the client TLS of the URL resolver. The account server here is HTTPS on
  127.0.0.1 with a test CA and wants a client certificate; with the right block the account
  is fetched and its user logs in, without it (or with another CA, or no certificate) the
  start-up check of the account server fails with nats-server's words.
- `resolver_pinned_accounts`: only users of the listed accounts (and the system account) log
  in; the others are refused before their account is looked up, and `/varz` counts them.
- `default_sentinel`: a CONNECT without a JWT is given the configured bearer user JWT: with
  an auth callout account's sentinel the callout service decides (its request carries the
  sentinel), with another account's the client is that account's user.

The start-up checks of the last two options (and the options' type checks) are samples in
tests/data/options, compared by test_options_oracle.py.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import trustme
from tests.conftest import connect
from tests.integration.test_auth_callout import CalloutService, Keys, answer, user_jwt
from tests.support import jwts
from tests.support.servers import (
    RunningServer,
    oracle_server_path,
    pynats_server_command,
    start_server,
)

SERVERS = pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
DENY_ALL = {"pub": {"deny": [">"]}, "sub": {"deny": [">"]}}


@dataclass
class PKI:
    """A CA with a server certificate for 127.0.0.1 and a client certificate, and another
    CA that signed neither."""

    base: Path
    ca: str = ""
    other_ca: str = ""
    server: str = ""  # key and certificate, for the account server
    client_cert: str = ""
    client_key: str = ""

    def __post_init__(self) -> None:
        ca, other = trustme.CA(), trustme.CA()
        paths = {name: self.base / f"{name}.pem" for name in ("ca", "other_ca", "server")}
        ca.cert_pem.write_to_path(str(paths["ca"]))
        other.cert_pem.write_to_path(str(paths["other_ca"]))
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(paths["server"])
        )
        client = ca.issue_cert("resolver@example.com", common_name="resolver")
        client.cert_chain_pems[0].write_to_path(str(self.base / "client.pem"))
        client.private_key_pem.write_to_path(str(self.base / "client-key.pem"))
        self.ca, self.other_ca, self.server = (str(paths[k]) for k in ("ca", "other_ca", "server"))
        self.client_cert = str(self.base / "client.pem")
        self.client_key = str(self.base / "client-key.pem")

    def resolver_tls(self, *, ca: str = "", cert: bool = True) -> str:
        files = f'ca_file: "{ca or self.ca}"'
        if cert:
            files += f', cert_file: "{self.client_cert}", key_file: "{self.client_key}"'
        return f"resolver_tls {{ {files} }}\n"


@dataclass
class Operator:
    """An operator, its system account and three more: APP and OTHER (plain accounts) and
    AUTH (an auth callout account that may place users in APP)."""

    base: Path
    op: jwts.Identity = field(default_factory=jwts.operator)
    sys_acc: jwts.Identity = field(default_factory=jwts.account)
    app: jwts.Identity = field(default_factory=jwts.account)
    other: jwts.Identity = field(default_factory=jwts.account)
    auth: jwts.Identity = field(default_factory=jwts.account)
    service_user: jwts.Identity = field(default_factory=jwts.user)
    sentinel_user: jwts.Identity = field(default_factory=jwts.user)
    jwts_by_key: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.base / "op.jwt").write_text(jwts.operator_jwt(self.op))
        callout = {
            "auth_users": [self.service_user.public_key],
            "allowed_accounts": [self.app.public_key],
        }
        for acc, name, extra in (
            (self.sys_acc, "SYS", {}),
            (self.app, "APP", {}),
            (self.other, "OTHER", {}),
            (self.auth, "AUTH", {"authorization": callout}),
        ):
            self.jwts_by_key[acc.public_key] = jwts.account_jwt(self.op, acc, name, **extra)
        self.creds = {
            name: self.user_creds(acc, name)
            for name, acc in (("sys", self.sys_acc), ("app", self.app), ("other", self.other))
        }
        self.service_creds = jwts.write_creds(
            self.base / "service.creds",
            jwts.user_jwt(self.auth, self.service_user, "service"),
            self.service_user,
        )
        # the callout account's sentinel: a bearer user that may do nothing by itself
        self.sentinel = jwts.user_jwt(
            self.auth, self.sentinel_user, "sentinel", {**DENY_ALL, "bearer_token": True}
        )

    def user_creds(self, acc: jwts.Identity, name: str) -> str:
        usr = jwts.user()
        token = jwts.user_jwt(acc, usr, name)
        return str(jwts.write_creds(self.base / f"{name}.creds", token, usr))

    def config(self, name: str, resolver: str, extra: str = "") -> Path:
        """A config file: `resolver` "MEMORY" preloads every account, else it is written as
        given (a URL resolver)."""
        text = f'operator: "{self.base / "op.jwt"}"\nsystem_account: {self.sys_acc.public_key}\n'
        if resolver == "MEMORY":
            lines = "\n".join(f'  {k}: "{v}"' for k, v in self.jwts_by_key.items())
            text += f"resolver: MEMORY\nresolver_preload: {{\n{lines}\n}}\n"
        else:
            text += f"resolver: {resolver}\n"
        path = self.base / f"{name}.conf"
        path.write_text(text + extra)
        return path


class _TLSServer(ThreadingHTTPServer):
    """An HTTPS server whose refused handshakes end cleanly: the client's bytes are read
    until it leaves, so closing does not reset the connection and lose the TLS alert the
    client is to read."""

    context: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        raw = sock.dup()
        try:
            return self.context.wrap_socket(sock, server_side=True), address
        except OSError:
            raw.settimeout(2)
            try:
                while raw.recv(4096):
                    pass
            except OSError:
                pass
            raise
        finally:
            raw.close()


class HttpsAccountServer:
    """GET <prefix><account key> answers the account's JWT (404 for an unknown one) over
    HTTPS, to clients presenting a certificate of the test CA."""

    def __init__(self, pki: PKI, jwts_by_key: dict[str, str]) -> None:
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                key = self.path.rsplit("/", 1)[-1]
                token = jwts_by_key.get(key)
                self.send_response(200 if token or not key else 404)
                self.end_headers()
                if token:
                    self.wfile.write(token.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _TLSServer(("127.0.0.1", 0), Handler)
        self.httpd.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.httpd.context.load_cert_chain(pki.server)
        self.httpd.context.load_verify_locations(pki.ca)
        self.httpd.context.verify_mode = ssl.CERT_REQUIRED
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/jwt/v1/accounts/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fetched(self, key: str) -> bool:
        return any(path.endswith("/" + key) for path in self.paths)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(Path(tmp_path_factory.mktemp("resolver-pki")))


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Operator:
    return Operator(Path(tmp_path_factory.mktemp("operator-options")))


@pytest.fixture(scope="module")
def accounts(pki: PKI, operator: Operator) -> Iterator[HttpsAccountServer]:
    server = HttpsAccountServer(pki, operator.jwts_by_key)
    yield server
    server.close()


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for srv in started:
        srv.stop()


def run(servers: list[RunningServer], conf: Path, oracle: bool, *args: str) -> RunningServer:
    srv = start_server(["-c", str(conf), *args], oracle=oracle, http_port=-1)
    servers.append(srv)
    return srv


async def refusal(url: str, **kwargs: Any) -> str:
    with pytest.raises(nats.errors.Error) as info:
        nc = await connect(url, **kwargs)
        await nc.close()
    return str(info.value)


# -- resolver_tls ----------------------------------------------------------------------------


@SERVERS
async def test_resolver_tls_fetches_accounts_from_an_https_account_server(
    pki: PKI,
    operator: Operator,
    accounts: HttpsAccountServer,
    servers: list[RunningServer],
    oracle: bool,
) -> None:
    conf = operator.config("tls", f"URL({accounts.url})", pki.resolver_tls())
    srv = run(servers, conf, oracle)
    nc = await connect(srv.url, user_credentials=operator.creds["app"])
    sub = await nc.subscribe("over.https")
    await nc.publish("over.https", b"fetched")
    assert (await sub.next_msg(2)).data == b"fetched"
    await nc.close()
    assert accounts.fetched(operator.app.public_key)
    assert "is not supported by pynats" not in srv.log_text()


def start_failure(conf: Path, oracle: bool) -> tuple[int, str]:
    cmd = [oracle_server_path()] if oracle else pynats_server_command()
    result = subprocess.run(
        [*cmd, "-c", str(conf), "-a", "127.0.0.1", "-p", "-1"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result.returncode, result.stderr.strip().splitlines()[-1]


UNKNOWN_AUTHORITY = (
    "tls: failed to verify certificate: x509: certificate signed by unknown authority"
)


@SERVERS
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("without_resolver_tls", UNKNOWN_AUTHORITY),
        ("other_ca", UNKNOWN_AUTHORITY),
        ("no_client_certificate", "remote error: tls: certificate required"),
    ],
)
def test_account_server_refusing_the_tls_stops_the_start(
    pki: PKI,
    operator: Operator,
    accounts: HttpsAccountServer,
    oracle: bool,
    case: str,
    reason: str,
) -> None:
    tls = {
        "without_resolver_tls": "",
        "other_ca": pki.resolver_tls(ca=pki.other_ca),
        "no_client_certificate": pki.resolver_tls(cert=False),
    }[case]
    conf = operator.config(f"bad_tls_{case}", f"URL({accounts.url})", tls)
    assert start_failure(conf, oracle) == (
        1,
        f'nats-server: could not fetch <"{accounts.url}">: Get "{accounts.url}": {reason}',
    )


# -- resolver_pinned_accounts ----------------------------------------------------------------


@SERVERS
async def test_only_users_of_pinned_accounts_log_in(
    pki: PKI,
    operator: Operator,
    accounts: HttpsAccountServer,
    servers: list[RunningServer],
    oracle: bool,
) -> None:
    pinned = f"resolver_pinned_accounts: [ {operator.app.public_key} ]\n"
    conf = operator.config("pinned", f"URL({accounts.url})", pki.resolver_tls() + pinned)
    srv = run(servers, conf, oracle, "-D")
    assert "pinned_account_fails" not in srv.http_json("/varz")
    for name in ("app", "sys"):  # the system account is pinned with the listed ones
        nc = await connect(srv.url, user_credentials=operator.creds[name])
        await nc.close()
    other = operator.other.public_key
    refused = await refusal(srv.url, user_credentials=operator.creds["other"])
    assert "'Authorization Violation'" in refused
    srv.wait_for_log(rf"Account {other} not listed as operator pinned account")
    assert srv.http_json("/varz")["pinned_account_fails"] == 1
    assert not accounts.fetched(other)  # refused before its account is looked up


@SERVERS
async def test_an_empty_pinned_list_lets_no_one_in(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    conf = operator.config("pinned_none", "MEMORY", "resolver_pinned_accounts: []\n")
    srv = run(servers, conf, oracle)
    for name in ("app", "sys"):
        assert "'Authorization Violation'" in await refusal(
            srv.url, user_credentials=operator.creds[name]
        )
    assert srv.http_json("/varz")["pinned_account_fails"] == 2


# -- default_sentinel ------------------------------------------------------------------------


@pytest.fixture
async def callout(operator: Operator) -> AsyncIterator[CalloutService]:
    """The AUTH account's callout service (started by the test on its server): "to_app"
    goes to APP, "refused" gets an error."""
    keys = Keys()
    service = CalloutService(keys, by="name")

    async def to_app(claims: dict[str, Any]) -> bytes:
        token = user_jwt(operator.app, claims, "", name="placed")
        return answer(keys, claims, signer=operator.auth, user_jwt=token)

    async def refuse(claims: dict[str, Any]) -> bytes:
        return answer(keys, claims, signer=operator.auth, error="not today")

    service.answers = {"to_app": to_app, "refused": refuse}
    yield service
    await service.stop()


@SERVERS
async def test_default_sentinel_sends_clients_without_a_jwt_to_the_callout(
    operator: Operator,
    servers: list[RunningServer],
    callout: CalloutService,
    oracle: bool,
) -> None:
    conf = operator.config("sentinel", "MEMORY", f'default_sentinel: "{operator.sentinel}"\n')
    srv = run(servers, conf, oracle)
    await callout.start(srv.url, user_credentials=str(operator.service_creds))
    sentinel_key = operator.sentinel_user.public_key
    for credentials in ({}, {"user": "bob", "password": "pw"}):
        nc = await connect(srv.url, name="to_app", **credentials)
        sub = await nc.subscribe("in.app")
        await nc.publish("in.app", b"placed")
        assert (await sub.next_msg(2)).data == b"placed"
        await nc.close()
        request = callout.requests_of("to_app")[-1]["nats"]
        assert request["connect_opts"]["jwt"] == operator.sentinel
        assert request["client_info"]["user"] == credentials.get("user", sentinel_key)
        assert request["client_info"]["name_tag"] == "sentinel"
    assert "'Authorization Violation'" in await refusal(srv.url, name="refused")
    srv.wait_for_log(rf'\[ERR\] .* - authentication error - JWT User "{sentinel_key}"$')
    assert "'Authorization Violation'" in await refusal(
        srv.url, name="refused", user="bob", password="pw"
    )
    srv.wait_for_log(r'\[ERR\] .* - authentication error - User "bob"$')
    # a client with its own credentials is not the sentinel
    nc = await connect(srv.url, user_credentials=operator.creds["app"], name="own")
    await nc.close()
    assert callout.requests_of("own") == []


@SERVERS
async def test_default_sentinel_of_a_plain_account_makes_clients_its_user(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    visitor_user = jwts.user()
    visitor_key = visitor_user.public_key
    visitor = jwts.user_jwt(operator.app, visitor_user, "visitor", {"bearer_token": True})
    conf = operator.config("sentinel_app", "MEMORY", f'default_sentinel: "{visitor}"\n')
    srv = run(servers, conf, oracle)
    anonymous = await connect(srv.url, name="anonymous")
    sub = await anonymous.subscribe("greetings")
    await anonymous.flush()
    app_user = await connect(srv.url, user_credentials=operator.creds["app"])
    await app_user.publish("greetings", b"same account")
    assert (await sub.next_msg(2)).data == b"same account"
    conns = srv.http_json("/connz?auth=true")["connections"]
    [seen] = [c for c in conns if c.get("name") == "anonymous"]
    assert (seen["account"], seen["authorized_user"]) == (operator.app.public_key, visitor_key)
    for nc in (anonymous, app_user):
        await nc.close()
