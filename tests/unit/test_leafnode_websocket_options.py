"""The leaf node and websocket options as their runtimes read them: file -> LeafNodeOptions /
LeafRemote / WebsocketOptions, nats-server's names and normalisations, the start-up checks,
and what a reload changes (and tells the running leaf nodes)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pynats.server.config_leafnodes import (
    expand_path,
    go_url_string,
    is_user_seed,
    leafnode_problem,
    min_version_problem,
    remote_name,
)
from pynats.server.config_options import apply_config_file, startup_problem
from pynats.server.config_websocket import websocket_problem
from pynats.server.flags import parse_args
from pynats.server.options import (
    LeafNodeOptions,
    LeafRemote,
    LeafUser,
    Options,
    TLSSettings,
    WebsocketOptions,
)
from pynats.server.reload import ReloadError, leafnode_changes, reload_config

DATA = Path(__file__).resolve().parents[1] / "data"
PKI = DATA / "cluster" / "pki"
SEED = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
USER_KEY = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"


def load(tmp_path: Path, text: str) -> Options:
    path = tmp_path / "server.conf"
    path.write_text(text)
    return apply_config_file(parse_args(["-c", str(path)]).options)


def test_every_leafnodes_key_lands_in_leafnode_options() -> None:
    leaf = apply_config_file(
        Options(config_file=str(DATA / "leafnodes" / "ok_full.conf"))
    ).leafnodes
    assert (leaf.host, leaf.port, leaf.advertise, leaf.no_advertise) == (
        "127.0.0.1",
        7422,
        "10.0.0.5:7422",
        True,
    )
    assert (leaf.username, leaf.password, leaf.account, leaf.auth_timeout) == (
        "leaf",
        "secret",
        "HUB",
        2.5,
    )
    assert (leaf.reconnect_delay, leaf.compression, leaf.isolate_leafnode_interest) == (
        2.0,
        "s2_fast",
        True,
    )
    assert (leaf.min_version, leaf.write_deadline, leaf.write_timeout, leaf.dial_timeout) == (
        "2.10.0",
        5.0,
        "close",
        3.0,
    )
    assert leaf.is_enabled()
    [remote] = leaf.remotes
    assert remote.urls == ["nats-leaf://u:p@10.0.0.6:7422", "nats://10.0.0.7"]
    assert (remote.account, remote.hub, remote.compression) == ("LOCAL", True, "off")
    assert (remote.deny_imports, remote.deny_exports) == (["private.>"], ["secret.*"])
    assert (remote.first_info_timeout, remote.dial_timeout) == (3.0, 4.0)
    assert (remote.no_randomize, remote.disabled) == (True, False)
    assert (remote.request_isolation, remote.ignore_discovered_servers) == (True, True)


def test_leaf_users_seeds_tls_and_websocket_remotes(tmp_path: Path) -> None:
    leaf = load(
        tmp_path,
        f"""accounts {{ A: {{}} }}
        leafnodes {{
          port: -1
          authorization {{ users: [ {{user: a, password: pa, account: A}}, {{user: b}} ] }}
          tls {{ cert_file: "{PKI}/server.pem", key_file: "{PKI}/server-key.pem",
                 handshake_first: "300ms" }}
          remotes: [
            {{ url: " tls://hub:7422 ", seed: "{SEED}", tls {{ ca_file: "{PKI}/ca.pem" }} }}
            {{ urls: ["ws://h:80"], ws_compression: true, ws_no_masking: true,
               proxy {{ url: "http://p:3128", username: u, password: p, timeout: "2s" }} }}
          ]
        }}
        """,
    ).leafnodes
    assert leaf.users == [LeafUser("a", "pa", "A"), LeafUser("b", "", "")]
    assert leaf.tls is not None and leaf.tls.cert_file == f"{PKI}/server.pem"
    assert (leaf.tls_handshake_first, leaf.tls_handshake_first_fallback) == (True, 0.3)
    tls_remote, ws_remote = leaf.remotes
    assert (tls_remote.urls, tls_remote.nkey) == (["tls://hub:7422"], SEED)
    assert tls_remote.tls == TLSSettings(ca_file=f"{PKI}/ca.pem")
    assert (ws_remote.ws_compression, ws_remote.ws_no_masking) == (True, True)
    assert (ws_remote.proxy_url, ws_remote.proxy_username, ws_remote.proxy_timeout) == (
        "http://p:3128",
        "u",
        2.0,
    )


def test_leaf_defaults_are_nats_servers(tmp_path: Path) -> None:
    leaf = load(tmp_path, 'leafnodes { remotes: [ { url: "nats://hub" } ] }\n').leafnodes
    assert not leaf.is_enabled()
    assert (leaf.reconnect_delay, leaf.compression) == (1.0, "")
    [remote] = leaf.remotes
    assert (remote.first_info_timeout, remote.account, remote.compression) == (1.0, "", "")
    assert remote.urls == ["nats://hub"]  # the default port 7422 is added when dialling


@pytest.mark.parametrize(
    ("written", "mode"),
    [("true", "s2_auto"), ("on", "s2_auto"), ("false", "off"), ('"fast"', "s2_fast")],
)
def test_leaf_compression_on_means_s2_auto(tmp_path: Path, written: str, mode: str) -> None:
    leaf = load(tmp_path, f"leafnodes {{ compression: {written} }}\n").leafnodes
    assert leaf.compression == mode


def test_a_string_url_adds_and_a_list_replaces(tmp_path: Path) -> None:
    leaf = load(
        tmp_path, 'leafnodes { remotes: [ { urls: ["nats://a", "nats://b"], url: "nats://c" } ] }'
    ).leafnodes
    assert leaf.remotes[0].urls == ["nats://a", "nats://b", "nats://c"]


def test_every_websocket_key_lands_in_websocket_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA / "websocket")  # certificate paths are relative to the directory
    ws = apply_config_file(Options(config_file="ok_full.conf")).websocket
    assert (ws.host, ws.port, ws.advertise) == ("127.0.0.1", 8443, "ws.example.com:443")
    assert ws.tls is not None and ws.tls.ca_file.endswith("ca.pem")
    assert (ws.same_origin, ws.compression, ws.handshake_timeout) == (True, True, 3.0)
    assert ws.allowed_origins == ["https://app.example.com", "http://localhost:8080"]
    assert ws.auth_timeout == 2.5
    assert (ws.jwt_cookie, ws.username_cookie, ws.password_cookie, ws.token_cookie) == (
        "jwt",
        "user",
        "pass",
        "token",
    )
    assert (ws.no_auth_user, ws.ping_interval) == ("a", 30.0)
    assert ws.headers == {"X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def test_websocket_authorization_and_timeouts(tmp_path: Path) -> None:
    ws = load(
        tmp_path,
        "ws { no_tls: true, port: 8080, handshake_timeout: 5, "
        'authentication { user: u, password: p, token: t, timeout: "5s" } }\n',
    ).websocket
    assert (ws.username, ws.password, ws.token) == ("u", "p", "t")
    assert ws.auth_timeout == 1.0  # not a number: nats-server takes one second
    assert (ws.handshake_timeout, ws.no_tls, ws.is_enabled()) == (5.0, True, True)


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("2.8.0", None),
        ("2.10.3-beta.1+abc", None),
        ("2.7.9", "the minimum version should be at least 2.8.0"),
        ("v2.10.0", "invalid leafnode's minimum version: invalid semver"),
        ("2.10", "invalid leafnode's minimum version: invalid semver"),
    ],
)
def test_min_version(version: str, problem: str | None) -> None:
    assert min_version_problem(version) == problem


def test_remote_names_as_nats_server_prints_them() -> None:
    remote = LeafRemote(urls=["NATS://u:p@h:1", "nats://v@h:2"], nkey=SEED)
    assert remote_name(remote) == (
        f'urls=["nats://u:p@h:1" "nats://v@h:2"], account="$G", nkey="{SEED}"'
    )
    assert remote_name(remote, redacted=True) == (
        'urls=["nats://u:xxxxx@h:1" "nats://v@h:2"], account="$G", nkey="[REDACTED]"'
    )
    creds = LeafRemote(urls=["nats://h"], account="A", credentials="/x.creds")
    assert remote_name(creds) == 'urls=["nats://h"], account="A", credentials="/x.creds"'
    assert go_url_string("ws://h:80/path") == "ws://h:80/path"


def test_seeds_and_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_user_seed(SEED)
    assert not is_user_seed(USER_KEY)
    assert not is_user_seed(SEED[:-1] + "A")
    monkeypatch.setenv("HOME", "/home/leaf")
    monkeypatch.setenv("CREDS_DIR", "/etc/creds")
    assert expand_path("$CREDS_DIR/a.creds") == "/etc/creds/a.creds"
    assert expand_path("${CREDS_DIR}/b.creds") == "/etc/creds/b.creds"
    assert expand_path("~/c.creds") == "/home/leaf/c.creds"
    assert expand_path("$UNSET_VARIABLE_X/d.creds") == "/d.creds"


def with_leaf(**fields: Any) -> Options:
    return Options(leafnodes=LeafNodeOptions(**fields))


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        (with_leaf(port=-1, remotes=[LeafRemote(urls=["nats://h"])]), None),
        (
            with_leaf(remotes=[LeafRemote(urls=["nats://h"], account="X")]),
            'cannot find local account "X" specified in leafnode remote',
        ),
        (with_leaf(remotes=[LeafRemote(urls=["nats://h"], account="$SYS")]), None),
        (
            with_leaf(port=-1, users=[LeafUser("a", "b", "Y")]),
            'cannot find local account "Y" specified in leafnode authorization',
        ),
        (with_leaf(compression="zstd"), 'unsupported compression mode "zstd"'),
        (
            with_leaf(remotes=[LeafRemote(urls=["ws://h", "nats://h"])]),
            "remote leaf node configuration cannot have a mix of websocket and non-websocket "
            'urls: ["ws://h" "nats://h"]',
        ),
        (
            with_leaf(compression="s2_auto", compression_rtt_thresholds=[0.05, 0.01]),
            "RTT threshold values [50ms 10ms] should be in ascending order",
        ),
    ],
)
def test_leafnode_start_up_checks(opts: Options, problem: str | None) -> None:
    assert leafnode_problem(opts) == problem


def test_operator_mode_wants_account_keys_in_remotes() -> None:
    opts = with_leaf(remotes=[LeafRemote(urls=["nats://h"], account="A")])
    opts.trusted_operators = ["operator-jwt"]
    assert (leafnode_problem(opts) or "").startswith("operator mode requires account nkeys")


def with_ws(**fields: Any) -> Options:
    return Options(websocket=WebsocketOptions(**fields))


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        (with_ws(), None),
        (with_ws(port=-1), "websocket requires TLS configuration"),
        (with_ws(port=-1, tls=TLSSettings()), None),
        (with_ws(port=-1, no_tls=True, allowed_origins=["https://a:443", "http://b"]), None),
        (
            with_ws(port=-1, no_tls=True, allowed_origins=["a.example.com"]),
            'unable to parse allowed origin: parse "a.example.com": invalid URI for request',
        ),
        (
            with_ws(port=-1, no_tls=True, headers={"Upgrade": "x"}),
            'websocket: invalid header "Upgrade" not allowed',
        ),
        (
            with_ws(port=-1, no_tls=True, no_auth_user="nobody"),
            'no_auth_user: "nobody" present, but users/nkeys are not defined',
        ),
    ],
)
def test_websocket_start_up_checks(opts: Options, problem: str | None) -> None:
    assert websocket_problem(opts) == problem


def test_start_up_checks_run_in_nats_servers_order() -> None:
    opts = with_leaf(compression="zstd")
    opts.websocket = WebsocketOptions(port=-1)
    assert startup_problem(opts) == 'unsupported compression mode "zstd"'


# -- reload ------------------------------------------------------------------------------------

A = LeafRemote(urls=["nats://a:1"])
B = LeafRemote(urls=["nats://b:1"])


def test_reload_matches_remotes_by_name() -> None:
    changes = leafnode_changes(LeafNodeOptions(remotes=[A]), LeafNodeOptions(remotes=[B]))
    assert changes.lines == ['Reloaded: LeafNode Remote urls=["nats://a:1"], account="$G" removed']
    assert (changes.added, changes.removed, changes.settings_changed) == ([B], [A], False)
    same = leafnode_changes(LeafNodeOptions(remotes=[A]), LeafNodeOptions(remotes=[B, A]))
    assert (same.lines, same.added, same.removed) == ([], [B], [])


def test_reload_disabling_a_remote_stops_it_and_enabling_dials_it() -> None:
    off = LeafRemote(urls=["nats://a:1"], disabled=True)
    down = leafnode_changes(LeafNodeOptions(remotes=[A]), LeafNodeOptions(remotes=[off]))
    assert down.lines == [
        'Reloaded: LeafNode Remote urls=["nats://a:1"], account="$G" Disabled value is: true'
    ]
    assert (down.added, down.removed, down.settings_changed) == ([], [A], True)
    up = leafnode_changes(LeafNodeOptions(remotes=[off]), LeafNodeOptions(remotes=[A]))
    assert (up.added, up.removed) == ([A], [])


def test_reload_compression_compares_as_nats_server() -> None:
    unset = LeafNodeOptions()
    assert leafnode_changes(unset, LeafNodeOptions(compression="s2_auto")).lines == []
    thresholds = LeafNodeOptions(compression="s2_auto", compression_rtt_thresholds=[0.005, 0.0])
    assert leafnode_changes(unset, thresholds).lines == [
        "Reloaded: LeafNode Compression value is: {s2_auto [5ms]}"
    ]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            LeafNodeOptions(port=7422),
            LeafNodeOptions(port=7423),
            'field "Port": old=7422, new=7423',
        ),
        (
            LeafNodeOptions(port=7422),
            LeafNodeOptions(port=7422, auth_timeout=2.5),
            'field "AuthTimeout": old=2, new=2.5',
        ),
        (
            LeafNodeOptions(remotes=[A]),
            LeafNodeOptions(remotes=[LeafRemote(urls=["nats://a:1"], deny_exports=["x", "y"])]),
            'remote urls=["nats://a:1"], account="$G": field "DenyExports": old=[], new=[x y]',
        ),
        (
            LeafNodeOptions(remotes=[A]),
            LeafNodeOptions(remotes=[LeafRemote(urls=["nats://a:1"], proxy_url="http://p")]),
            'remote urls=["nats://a:1"], account="$G": field "Proxy": only the proxy TLS '
            "configuration can be changed",
        ),
    ],
)
def test_reload_refuses_what_nats_server_refuses(
    old: LeafNodeOptions, new: LeafNodeOptions, error: str
) -> None:
    with pytest.raises(ReloadError) as e:
        leafnode_changes(old, new)
    assert str(e.value) == f"config reload not supported for LeafNode: {error}"


class FakeLeafNodes:
    def __init__(self, options: LeafNodeOptions) -> None:
        self.options = options
        self.calls: list[Any] = []

    def options_changed(self) -> None:
        self.calls.append("options_changed")

    def remotes_changed(self, added: list[LeafRemote], removed: list[LeafRemote]) -> None:
        self.calls.append(([r.urls for r in added], [r.urls for r in removed]))


def test_reload_tells_the_running_leaf_nodes(tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text('leafnodes { remotes: [ { url: "nats://a:1" }, { url: "nats://c:1" } ] }\n')
    opts = apply_config_file(parse_args(["-c", str(conf)]).options)
    leafnodes = FakeLeafNodes(opts.leafnodes)
    server = SimpleNamespace(
        options=opts, cluster=None, leafnodes=leafnodes, websocket=None, clients={}
    )
    conf.write_text(
        'leafnodes { remotes: [ { url: "nats://a:1", compression: off }, { url: "nats://b:1" } ] }\n'
    )
    lines = reload_config(server)  # type: ignore[arg-type]
    assert lines == [
        "Reloaded: authorization users",  # (nats-server logs these two on every reload)
        "Reloaded: accounts",
        'Reloaded: LeafNode Remote urls=["nats://a:1"], account="$G" Compression value is: '
        "{off []}",
        'Reloaded: LeafNode Remote urls=["nats://c:1"], account="$G" removed',
    ]
    assert leafnodes.options is server.options.leafnodes
    assert leafnodes.calls == ["options_changed", ([["nats://b:1"]], [["nats://c:1"]])]
