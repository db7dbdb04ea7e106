"""The cluster options as the route runtime reads them: file and flags -> ClusterOptions, the
start-up checks, Go's URL rules for --cluster, and what a reload changes."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pynats.server.auth import SubjectPermission
from pynats.server.config_options import (
    apply_config_file,
    cluster_problem,
    normalize_compression,
)
from pynats.server.flags import parse_args, parse_cluster_url
from pynats.server.options import ClusterOptions, Options, TLSSettings, parse_go_url
from pynats.server.reload import ReloadError, _check_cluster_listener, _cluster_changes
from pynats.server.tls import build_route_client_context, build_route_server_context

DATA = Path(__file__).resolve().parents[1] / "data" / "cluster"
PKI = DATA / "pki"


def load(tmp_path: Path, text: str, argv: list[str] | None = None) -> Options:
    path = tmp_path / "server.conf"
    path.write_text(text)
    cl = parse_args([*(argv or []), "-c", str(path)])
    return apply_config_file(cl.options)


def test_every_cluster_key_lands_in_cluster_options() -> None:
    opts = apply_config_file(Options(config_file=str(DATA / "ok_full.conf")))
    c = opts.cluster
    assert (c.name, c.host, c.port) == ("east", "127.0.0.1", 6222)
    assert (c.advertise, c.no_advertise) == ("10.0.0.5:6222", True)
    assert c.routes == ["nats-route://ru:rp@10.0.0.6:6222", "nats://10.0.0.7:6222"]
    assert (c.username, c.password, c.auth_timeout) == ("ru", "rp", 2.5)
    assert (c.pool_size, c.pinned_accounts, c.compression) == (5, ["A", "B"], "s2_fast")
    assert c.import_permissions == SubjectPermission(allow=["orders.>"])
    assert c.export_permissions == SubjectPermission(allow=["events.>"], deny=["events.secret"])
    assert (c.connect_retries, c.connect_backoff) == (3, True)
    assert (c.ping_interval, c.ping_max, c.write_deadline) == (10.0, 4, 5.0)
    assert c.write_timeout == "close"
    assert c.is_enabled()


def test_defaults_are_nats_servers(tmp_path: Path) -> None:
    c = load(tmp_path, "cluster { listen: 6222 }\n").cluster
    assert (c.host, c.port, c.pool_size, c.compression) == ("", 6222, 3, "accept")
    assert c.tls is None and c.tls_timeout == 2.0
    assert c.effective_auth_timeout() == 2.0
    assert not ClusterOptions().is_enabled()


def test_tls_block_is_read_with_its_files(tmp_path: Path) -> None:
    c = load(
        tmp_path,
        f'cluster {{ listen: 6222, tls {{ cert_file: "{PKI}/server.pem", '
        f'key_file: "{PKI}/server-key.pem", ca_file: "{PKI}/ca.pem", timeout: 3 }} }}\n',
    ).cluster
    assert c.tls == TLSSettings(
        cert_file=f"{PKI}/server.pem",
        key_file=f"{PKI}/server-key.pem",
        ca_file=f"{PKI}/ca.pem",
        timeout=3.0,
    )
    assert c.effective_auth_timeout() == 4.0


def test_deprecated_authorization_permissions_yield_to_the_blocks_own(tmp_path: Path) -> None:
    opts = load(
        tmp_path,
        "cluster { listen: 6222, authorization { user: a, password: b, "
        'permissions: { import: "old" } }, permissions: { import: "new" } }\n',
    )
    assert opts.cluster.import_permissions == SubjectPermission(allow=["new"])
    assert len(opts.config_warnings) == 1  # printed at start; `-t` fails on it


def test_authorization_permissions_apply_when_the_block_has_none(tmp_path: Path) -> None:
    opts = load(
        tmp_path,
        "cluster { listen: 6222, authorization { user: a, password: b, "
        'permissions: { import: "old", export: "out" } } }\n',
    )
    assert opts.cluster.import_permissions == SubjectPermission(allow=["old"])
    assert opts.cluster.export_permissions == SubjectPermission(allow=["out"])


@pytest.mark.parametrize(
    ("written", "mode"),
    [
        ("On", "s2_fast"),
        ("enabled", "s2_fast"),
        ("disabled", "off"),
        ("false", "off"),
        ("S2_Auto", "s2_auto"),
        ("best", "s2_best"),
        ("not_supported", "not supported"),
        ("", "accept"),
        ("s2_uncompressed", None),
        ("enable", None),
    ],
)
def test_compression_names_normalise_as_nats_server(written: str, mode: str | None) -> None:
    assert normalize_compression(written) == mode


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    opts = load(
        tmp_path,
        "cluster { name: file, listen: 127.0.0.1:6222, authorization { user: f, password: f },"
        " routes: [nats://a:1], no_advertise: true }\n",
        [
            "--cluster_name",
            "flag",
            "--cluster",
            "nats://u:p@0.0.0.0:-1",
            "--routes",
            "nats://b:1, nats://c:1",
            "--no_advertise=false",
            "--connect_retries",
            "7",
        ],
    )
    c = opts.cluster
    assert (c.name, c.host, c.port) == ("flag", "0.0.0.0", -1)
    assert (c.username, c.password) == ("u", "p")
    assert c.routes == ["nats://b:1", "nats://c:1"]
    assert (c.no_advertise, c.connect_retries) == (False, 7)


def test_cluster_flag_without_credentials_clears_the_files(tmp_path: Path) -> None:
    opts = load(
        tmp_path,
        "cluster { listen: 6222, authorization { user: f, password: f } }\n",
        ["--cluster", "nats://127.0.0.1:7222"],
    )
    assert (opts.cluster.username, opts.cluster.password, opts.cluster.port) == ("", "", 7222)


def test_empty_cluster_flag_switches_the_listener_off(tmp_path: Path) -> None:
    opts = load(tmp_path, "cluster { listen: 127.0.0.1:6222 }\n", ["--cluster", ""])
    assert (opts.cluster.host, opts.cluster.port) == ("127.0.0.1", 0)


def test_bad_cluster_flag_is_reported_after_the_file() -> None:
    cl = parse_args(["--cluster", "nats://a b:1"])
    assert cl.deferred_error == 'parse "nats://a b:1": invalid character " " in host name'


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("nats://0.0.0.0:6222", ("0.0.0.0", 6222, "", "")),
        ("nats://ru:rp@127.0.0.1:-1", ("127.0.0.1", -1, "ru", "rp")),
        ("nats://[::1]:6222", ("::1", 6222, "", "")),
        ("nats://u:@h:1", ("h", 1, "u", "")),
    ],
)
def test_cluster_url_parts(url: str, parsed: tuple[str, int, str, str]) -> None:
    assert parse_cluster_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("nats://h:1#frag%zz", 'parse "nats://h:1#frag%zz": invalid URL escape "%zz"'),
        ("nats://h:1/p%zz", 'parse "nats://h:1/p%zz": invalid URL escape "%zz"'),
        (":x", 'parse ":x": missing protocol scheme'),
        ("nats://[::1]x:1", 'parse "nats://[::1]x:1": invalid port "x:1" after host'),
    ],
)
def test_go_url_errors(url: str, error: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_go_url(url)
    assert str(e.value) == error


def test_opaque_urls_parse_like_go() -> None:
    assert parse_go_url("nats:host:1").host == ""


def with_cluster(**fields: Any) -> Options:
    return Options(cluster=ClusterOptions(**fields))


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        (with_cluster(port=-1), None),
        (with_cluster(name="a b"), "cluster name cannot contain spaces"),
        (with_cluster(compression="zstd"), 'unsupported compression mode "zstd"'),
        (
            with_cluster(port=-1, pinned_accounts=["A"], pool_size=-1),
            "pool_size cannot be negative if pinned accounts are specified",
        ),
        (
            with_cluster(port=-1, pinned_accounts=["$SYS"]),
            None,  # the system account is only added when missing
        ),
        (
            with_cluster(compression="s2_auto", compression_rtt_thresholds=[0.010, 0.0], port=-1),
            None,  # trailing zeros are dropped
        ),
    ],
)
def test_start_up_checks(opts: Options, problem: str | None) -> None:
    assert cluster_problem(opts) == problem


def test_no_system_account_means_nothing_is_pinned_implicitly() -> None:
    opts = with_cluster(port=-1, pinned_accounts=["A"], pool_size=-1)
    opts.no_system_account = True
    assert cluster_problem(opts) == "pool_size cannot be negative if pinned accounts are specified"


def test_reload_diffs_routes_as_a_set() -> None:
    old = ClusterOptions(port=6222, routes=["nats://a:1", "nats://b:1"])
    new = ClusterOptions(port=6222, routes=["nats://b:1", "nats://c:1"])
    assert _cluster_changes(old, new) == (False, ["nats://c:1"], ["nats://a:1"])
    reordered = ClusterOptions(port=6222, routes=["nats://b:1", "nats://a:1"])
    assert _cluster_changes(old, reordered) == (False, [], [])


def test_reload_sees_other_cluster_settings_and_always_tls() -> None:
    old = ClusterOptions(port=6222)
    assert _cluster_changes(old, ClusterOptions(port=6222, pool_size=5))[0]
    assert _cluster_changes(old, ClusterOptions(port=6222, compression_text="accept")) == (
        False,
        [],
        [],
    )
    with_tls = ClusterOptions(port=6222, tls=TLSSettings())
    assert _cluster_changes(with_tls, with_tls)[0]


def fake_server(bound_port: int | None) -> Any:
    cluster = None if bound_port is None else SimpleNamespace(port=bound_port)
    return SimpleNamespace(cluster=cluster)


@pytest.mark.parametrize(
    ("old", "new", "bound", "error"),
    [
        (ClusterOptions(port=-1), ClusterOptions(port=-1), 41000, None),
        (ClusterOptions(port=6222), ClusterOptions(port=-1), 6222, None),
        (
            ClusterOptions(port=-1),
            ClusterOptions(port=7222),
            41000,
            "config reload not supported for cluster port: old=41000, new=7222",
        ),
        (
            ClusterOptions(host="127.0.0.1", port=6222),
            ClusterOptions(port=6222),
            6222,
            "config reload not supported for cluster host: old=127.0.0.1, new=0.0.0.0",
        ),
        (
            ClusterOptions(host="127.0.0.1", port=6222),
            ClusterOptions(),
            6222,
            "config reload not supported for cluster host: old=127.0.0.1, new=",
        ),
        (
            ClusterOptions(port=6222),
            ClusterOptions(port=6222, advertise="a:b:1"),
            6222,
            "invalid Cluster.Advertise value of a:b:1, err=address a:b:1: too many colons in "
            "address",
        ),
        (ClusterOptions(port=6222), ClusterOptions(port=6222, advertise="host"), 6222, None),
    ],
)
def test_reload_keeps_the_cluster_listener(
    old: ClusterOptions, new: ClusterOptions, bound: int, error: str | None
) -> None:
    if error is None:
        _check_cluster_listener(fake_server(bound), old, new)
        return
    with pytest.raises(ReloadError) as e:
        _check_cluster_listener(fake_server(bound), old, new)
    assert str(e.value) == error


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> ssl.SSLObject:
    """Run a TLS handshake in memory; returns the server side's SSLObject."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side, out, peer_in in (
            ("client", client, c_out, s_in),
            ("server", server, s_out, c_in),
        ):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return server
    raise AssertionError("handshake did not finish")


def route_tls(**extra: Any) -> TLSSettings:
    return TLSSettings(
        cert_file=str(PKI / "server.pem"),
        key_file=str(PKI / "server-key.pem"),
        ca_file=str(PKI / "ca.pem"),
        **extra,
    )


def test_routes_authenticate_each_other_with_the_cluster_certificate() -> None:
    server = handshake(
        build_route_client_context(route_tls()), build_route_server_context(route_tls())
    )
    assert server.getpeercert() is not None  # the dialling server presented its certificate


def test_accepting_side_requires_a_certificate_even_without_verify() -> None:
    no_cert = TLSSettings(ca_file=str(PKI / "ca.pem"))
    with pytest.raises(ssl.SSLError):
        handshake(build_route_client_context(no_cert), build_route_server_context(route_tls()))


def test_insecure_dialling_side_skips_the_peer_check() -> None:
    ctx = build_route_client_context(TLSSettings(insecure=True))
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_NONE, False)
