"""reload_jetstream.jetstream_changes: what a reload does to JetStream, without servers (the
texts are nats-server 2.15.1's, compared on the wire in jetstream/test_js_reload.py)."""

from __future__ import annotations

import dataclasses

import pytest

from pynats.server.options import Options
from pynats.server.reload_jetstream import JetStreamReloadError, jetstream_changes

GB = 1000**3


def js(**changes: object) -> Options:
    return dataclasses.replace(Options(jetstream=True, store_dir="/data"), **changes)


def test_switched_on_and_off() -> None:
    off = Options()
    assert jetstream_changes(False, off, js()).switch == "on"
    assert jetstream_changes(True, js(), off).switch == "off"
    assert jetstream_changes(True, js(), off).lines == ["Reloaded: JetStream"]
    assert jetstream_changes(True, js(), js()).lines == []


def test_wanted_but_not_running_is_started_again() -> None:
    change = jetstream_changes(False, js(), js())
    assert (change.switch, change.lines) == ("on", ["Reloaded: JetStream"])


def test_larger_sizes_and_limits_are_logged_in_nats_servers_order() -> None:
    old = js(jetstream_max_memory=GB, jetstream_max_store=2 * GB)
    new = js(
        jetstream_max_memory=3 * GB,
        jetstream_max_store=4 * GB,
        jetstream_limits={"max_ack_pending": 10},
    )
    assert jetstream_changes(True, old, new).lines == [
        "Reloaded: JetStream max_mem_store = 2.79 GB",
        "Reloaded: JetStream max_file_store = 3.73 GB",
        "Reloaded: JetStream limits",
    ]


@pytest.mark.parametrize(
    "old, new, text",
    [
        (js(), js(store_dir="/other"), "for jetstream storage directory"),
        (js(), js(jetstream_max_memory=GB), "for jetstream dynamic max memory and store"),
        (
            js(jetstream_max_memory=2 * GB),
            js(jetstream_max_memory=GB),
            "for decreasing jetstream max memory and store",
        ),
        (js(), js(jetstream_strict=False), "for NoJetStreamStrict: old=false, new=true"),
        (js(), js(jetstream_cipher="aes"), "JetStreamCipher: old=ChaCha20-Poly1305, new=AES-GCM"),
        (
            js(jetstream_request_queue_limit=50),
            js(jetstream_request_queue_limit=50, jetstream_info_queue_limit=7),
            "JetStreamInfoQueueLimit: old=50, new=7",
        ),
        (js(), js(jetstream_sync_interval=10.0), "SyncInterval: old=2m0s, new=10s"),
        (js(jetstream_domain="d"), Options(), "JetStreamDomain: old=d, new="),
    ],
)
def test_refused_at_once(old: Options, new: Options, text: str) -> None:
    with pytest.raises(JetStreamReloadError, match=text):
        jetstream_changes(True, old, new)


def test_dropped_sizes_and_store_directory_are_refused_unless_switched_off() -> None:
    sized = js(jetstream_max_memory=GB)
    assert jetstream_changes(True, sized, js()).refused_later == (
        "config reload not supported for jetstream max memory and max store"
    )
    assert jetstream_changes(True, sized, Options(store_dir="/data")).refused_later is None
    assert jetstream_changes(True, js(), js(store_dir="")).refused_later == (
        "config reload not supported for jetstream storage dir"
    )
    assert jetstream_changes(True, js(), Options()).refused_later is None


def test_a_stopped_jetstream_may_take_another_directory_and_sizes() -> None:
    new = js(store_dir="/other", jetstream_max_memory=GB)
    change = jetstream_changes(False, Options(store_dir="/data"), new)
    assert (change.switch, change.refused_later) == ("on", None)
