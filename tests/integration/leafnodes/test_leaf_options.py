"""Leaf node options at work, in every mix with the Go server: a remote's deny_imports and
deny_exports, a remote that is the hub (`hub: true`), TLS on the leaf port, an nkey user on the
hub, and what /leafz and /varz say about leaf connections."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import nkeys
import pytest
import trustme
from tests.support.leafs import MIXES, LeafPair, connect, interest_at, make_leaf_pair
from tests.support.waiting import wait_until

MIX_IDS = [f"{leaf}-leaf-on-{hub}-hub" for hub, leaf in MIXES]


async def nothing_more(sub: Any, marker: bytes) -> list[bytes]:
    """Messages before `marker` (which was published after everything the test expects)."""
    got = []
    while (msg := await sub.next_msg(timeout=3)).data != marker:
        got.append(msg.data)
    return got


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
async def test_deny_imports_and_exports_stop_subjects_at_the_link(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        remote=lambda hub: (
            f'{{ url: "nats-leaf://127.0.0.1:{hub.leaf_port}", '
            'deny_imports: ["secret.>"], deny_exports: ["private.>"] }'
        ),
    )
    try:
        pair.wait_connected()
        hub, leaf = await connect(pair.hub), await connect(pair.leaf)
        try:
            at_leaf = await leaf.subscribe("*.down")
            at_hub = await hub.subscribe("*.up")
            await leaf.subscribe("secret.interest")
            await leaf.flush()
            await hub.flush()
            await interest_at(pair.hub, "*.down")
            await interest_at(pair.leaf, "*.up")
            # The leaf does not even tell the hub of interest it may not import.
            assert "secret.interest" not in pair.hub.leaf_interest()
            await hub.publish("secret.down", b"denied import")
            await hub.publish("open.down", b"imported")
            await hub.publish("end.down", b"end")
            await leaf.publish("private.up", b"denied export")
            await leaf.publish("open.up", b"exported")
            await leaf.publish("end.up", b"end")
            assert await nothing_more(at_leaf, b"end") == [b"imported"]
            assert await nothing_more(at_hub, b"end") == [b"exported"]
        finally:
            await hub.close()
            await leaf.close()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
async def test_a_remote_that_is_the_hub(tmp_path: Path, mix: tuple[str, str]) -> None:
    """`hub: true`: the server that dials is the hub of the link, the one that accepts its
    spoke (/leafz `is_spoke`), and messages still cross both ways."""
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        remote=lambda hub: f'{{ url: "nats-leaf://127.0.0.1:{hub.leaf_port}", hub: true }}',
    )
    try:
        pair.wait_connected()
        accepting = pair.hub.http_json("/leafz")["leafs"][0]
        dialling = pair.leaf.http_json("/leafz")["leafs"][0]
        assert (accepting["is_spoke"], dialling["is_spoke"]) == (True, False)
        hub, leaf = await connect(pair.hub), await connect(pair.leaf)
        try:
            s = await hub.subscribe("spoke.to.hub")
            await hub.flush()
            await interest_at(pair.leaf, "spoke.to.hub")
            await leaf.publish("spoke.to.hub", b"x")
            assert (await s.next_msg(timeout=3)).data == b"x"
        finally:
            await hub.close()
            await leaf.close()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
def test_leafz_and_varz_describe_the_link_as_nats_server_does(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    pair = make_leaf_pair(*mix, tmp_path)
    try:
        pair.wait_connected()
        for node, other, spoke in ((pair.hub, pair.leaf, False), (pair.leaf, pair.hub, True)):
            leafz = node.http_json("/leafz")
            assert leafz["leafnodes"] == 1
            entry = leafz["leafs"][0]
            assert {
                "id",
                "name",
                "is_spoke",
                "account",
                "ip",
                "port",
                "rtt",
                "in_msgs",
                "out_msgs",
                "in_bytes",
                "out_bytes",
                "subscriptions",
            } <= set(entry)
            assert (entry["name"], entry["is_spoke"], entry["account"]) == (
                other.name,
                spoke,
                "$G",
            )
        assert pair.leaf.http_json("/leafz")["leafs"][0]["port"] == pair.hub.leaf_port
        varz = pair.hub.http_json("/varz")
        assert varz["leafnodes"] == 1
        section = varz["leaf"]
        assert (section["host"], section["port"]) == ("127.0.0.1", pair.hub.leaf_port)
        assert section["auth_timeout"] > 0 and section["tls_timeout"] > 0
    finally:
        pair.stop_all()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("leaf-tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    cert.private_key_pem.write_to_path(folder / "key.pem")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    return {"cert": folder / "cert.pem", "key": folder / "key.pem", "ca": folder / "ca.pem"}


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
async def test_tls_on_the_leaf_port(
    tmp_path: Path, mix: tuple[str, str], certificates: dict[str, Path]
) -> None:
    c = certificates
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_block=lambda hub: (
            f'  tls {{ cert_file: "{c["cert"]}", key_file: "{c["key"]}", timeout: 2 }}'
        ),
        remote=lambda hub: (
            f'{{ url: "tls://127.0.0.1:{hub.leaf_port}", tls {{ ca_file: "{c["ca"]}" }} }}'
        ),
    )
    try:
        pair.wait_connected()
        await check_crossing(pair)
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
async def test_a_hub_that_verifies_the_leaf_certificate(
    tmp_path: Path, mix: tuple[str, str], certificates: dict[str, Path]
) -> None:
    """`verify: true` on the hub: the leaf's certificate lets it in."""
    c = certificates
    files = f'cert_file: "{c["cert"]}", key_file: "{c["key"]}", ca_file: "{c["ca"]}"'
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_block=lambda hub: f"  tls {{ {files}, verify: true, timeout: 2 }}",
        remote=lambda hub: f'{{ url: "tls://127.0.0.1:{hub.leaf_port}", tls {{ {files} }} }}',
    )
    try:
        pair.wait_connected()
        await check_crossing(pair)
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
async def test_a_leaf_without_a_certificate_stays_out_of_a_verifying_hub(
    tmp_path: Path, mix: tuple[str, str], certificates: dict[str, Path]
) -> None:
    c = certificates
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_block=lambda hub: (
            f'  tls {{ cert_file: "{c["cert"]}", key_file: "{c["key"]}", '
            f'ca_file: "{c["ca"]}", verify: true, timeout: 2 }}'
        ),
        remote=lambda hub: (
            f'{{ url: "tls://127.0.0.1:{hub.leaf_port}", tls {{ ca_file: "{c["ca"]}" }} }}'
        ),
    )
    try:
        hub = pair.hub.server
        assert hub is not None
        await wait_until(
            lambda: "TLS leafnode handshake error" in hub.log_text(), timeout=10, what="refusal"
        )
        assert not pair.hub.leaf_names() and not pair.leaf.leaf_names()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", MIXES, ids=MIX_IDS)
async def test_an_nkey_user_on_the_leaf_port(tmp_path: Path, mix: tuple[str, str]) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(seed).public_key.decode()
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_block=lambda hub: f'  authorization {{ nkey: "{public}" }}',
        remote=lambda hub: (
            f'{{ url: "nats-leaf://127.0.0.1:{hub.leaf_port}", nkey: "{seed.decode()}" }}'
        ),
    )
    try:
        pair.wait_connected()
        await check_crossing(pair)
    finally:
        pair.stop_all()


async def check_crossing(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:
        s = await hub.subscribe("over.the.link")
        await hub.flush()
        await interest_at(pair.leaf, "over.the.link")
        await leaf.publish("over.the.link", b"safe")
        assert (await asyncio.wait_for(s.next_msg(timeout=3), 5)).data == b"safe"
    finally:
        await hub.close()
        await leaf.close()


@pytest.mark.parametrize("kind", ["go", "py"])
async def test_a_hub_that_never_says_info_is_dropped_after_first_info_timeout(
    tmp_path: Path, kind: str
) -> None:
    """The leaf hangs up on a silent hub first_info_timeout after connecting, without a word,
    and dials again."""
    pair = make_leaf_pair(
        "py",
        kind,
        tmp_path,
        remote=lambda hub: (
            f'{{ url: "nats-leaf://127.0.0.1:{hub.leaf_port}", first_info_timeout: "500ms" }}'
        ),
        start=False,
    )
    loop = asyncio.get_running_loop()
    calls: list[dict[str, Any]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        call: dict[str, Any] = {"at": loop.time()}
        calls.append(call)
        call["heard"] = await reader.read()  # until the leaf hangs up
        call["lasted"] = loop.time() - call["at"]
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", pair.hub.leaf_port)
    try:
        pair.start(pair.leaf)
        await wait_until(lambda: len(calls) >= 2 and "lasted" in calls[0], timeout=10)
        first = calls[0]
        assert first["heard"] == b""
        assert 0.4 <= first["lasted"] <= 1.5
        leaf = pair.leaf.server
        assert leaf is not None
        await wait_until(
            lambda: "Leafnode connection closed: Read Error" in leaf.log_text(), timeout=5
        )
    finally:
        pair.stop_all()
        listener.close()
