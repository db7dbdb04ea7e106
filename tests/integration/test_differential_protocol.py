"""Protocol scenarios run against pynats and the Go nats-server: the replies must be the same.

Each scenario is a list of byte strings sent in order on one raw connection (after the
server's INFO). After the last one we send PING and collect everything up to the PONG, or up to
the close. INFO lines are reduced to their `connect_info`/`ldm` flags, ids are masked.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.differential import run_scenario
from tests.support.servers import RunningServer, start_server

C0 = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true,"no_responders":true}\r\n'
CV = b'CONNECT {"verbose":true,"pedantic":true,"protocol":1,"headers":true}\r\n'
CP = b'CONNECT {"verbose":false,"pedantic":true,"protocol":1,"headers":true}\r\n'

SCENARIOS: dict[str, list[bytes]] = {
    "connect_then_ping": [C0],
    "connect_empty_json_means_verbose": [b"CONNECT {}\r\n"],
    "verbose_acks_everything": [
        CV,
        b"SUB foo 1\r\n",
        b"PUB foo 2\r\nhi\r\n",
        b"UNSUB 1\r\n",
        b"UNSUB 99\r\n",
    ],
    "verbose_pub_with_headers": [CV, b"SUB foo 1\r\n", b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"],
    "pedantic_invalid_publish_subject": [CP, b"SUB > 1\r\n", b"PUB foo.* 2\r\nhi\r\n"],
    "pedantic_bad_tokens": [CP, b"SUB > 1\r\n", b"PUB foo..bar 2\r\nhi\r\n"],
    "invalid_subscription_subject": [C0, b"SUB foo..bar 1\r\n", b"SUB foo.>.bar 2\r\n"],
    "duplicate_sid_keeps_first": [
        CV,
        b"SUB foo 1\r\n",
        b"SUB bar 1\r\n",
        b"PUB foo 1\r\na\r\n",
        b"PUB bar 1\r\nb\r\n",
    ],
    "unknown_operation": [C0, b"FOO bar\r\n"],
    "payload_not_followed_by_crlf": [C0, b"PUB foo 2\r\nabc\r\n"],
    "max_payload_violation": [C0, b"PUB foo 2000000\r\n"],
    "pub_wrong_arg_count": [C0, b"PUB foo\r\n"],
    "pub_bad_size": [C0, b"PUB foo abc\r\n"],
    "sub_wrong_arg_count": [C0, b"SUB\r\n"],
    "unsub_wrong_arg_count": [C0, b"UNSUB\r\n"],
    "unsub_too_many_args": [C0, b"UNSUB 1 2 3\r\n"],
    "sub_too_many_args": [C0, b"SUB a b c d\r\n"],
    "pub_no_args": [C0, b"PUB\r\n"],
    "pub_too_many_args": [C0, b"PUB a b c d\r\n"],
    "hpub_wrong_args": [C0, b"HPUB a 1\r\n"],
    "unsub_bad_max": [C0, b"SUB foo 1\r\n", b"UNSUB 1 x\r\n"],
    "connect_not_json_object": [b"CONNECT []\r\n"],
    "ping_with_trailing_text": [C0, b"PING foo\r\n"],
    "queue_group_invalid": [C0, b"SUB foo bad..q 1\r\n"],
    "bare_newlines": [
        b'CONNECT {"verbose":false,"pedantic":false}\n',
        b"SUB foo 1\n",
        b"PUB foo 2\nhi\r\n",
    ],
    "hpub_without_headers": [
        b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n',
        b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    ],
    "hpub_header_larger_than_total": [C0, b"HPUB foo 20 14\r\nNATS/1.0\r\n\r\nhi\r\n"],
    "bad_connect_json": [b"CONNECT {bad\r\n"],
    "invalid_client_protocol": [b'CONNECT {"protocol":2}\r\n'],
    "no_responders_needs_headers": [b'CONNECT {"verbose":false,"no_responders":true}\r\n'],
    "no_responders_status": [C0, b"SUB _INBOX.abc.* 9\r\n", b"PUB nobody _INBOX.abc.1 2\r\nhi\r\n"],
    "no_responders_without_own_sub": [C0, b"PUB nobody _INBOX.abc.1 2\r\nhi\r\n"],
    "reserved_reply_prefix": [C0, b"SUB foo 1\r\n", b"PUB foo $JS.ACK.x 2\r\nhi\r\n"],
    "control_line_too_long": [C0, b"SUB " + b"a" * 5000 + b" 1\r\n"],
    "lowercase_operations": [
        b'connect {"verbose":false,"pedantic":false}\r\n',
        b"sub foo 1\r\n",
        b"pub foo 2\r\nhi\r\n",
        b"ping\r\n",
    ],
    "tabs_as_separators": [C0, b"SUB\tfoo\t1\r\n", b"PUB\tfoo\t2\r\nhi\r\n"],
    "pub_before_connect_allowed_without_auth": [b"SUB foo 1\r\n", b"PUB foo 2\r\nhi\r\n"],
    "unsub_with_max_already_reached": [
        C0,
        b"SUB foo 1\r\n",
        b"PUB foo 1\r\na\r\n",
        b"UNSUB 1 1\r\n",
        b"PUB foo 1\r\nb\r\n",
    ],
    "auto_unsub_after_max": [
        C0,
        b"SUB foo 1\r\n",
        b"UNSUB 1 2\r\n",
        b"PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n",
    ],
    "overlapping_subs_each_get_a_copy": [
        C0,
        b"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB foo.bar 3\r\n",
        b"PUB foo.bar 1\r\nx\r\n",
    ],
    "headers_delivered_as_hmsg": [
        C0,
        b"SUB foo 1\r\n",
        b"HPUB foo r 22 24\r\nNATS/1.0\r\nA: b\r\n\r\n\r\nhi\r\n",
    ],
    "headers_stripped_for_old_clients": [
        b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n',
        b"SUB foo 1\r\n",
        b"PUB x 0\r\n\r\n",
    ],
    "client_sends_err": [C0, b"-ERR 'oops'\r\n"],
    "client_sends_info_and_ok": [C0, b"INFO {}\r\n", b"+OK\r\n"],
    "account_in_connect_rejected": [b'CONNECT {"account":"A"}\r\n'],
    "empty_payload": [C0, b"SUB foo 1\r\n", b"PUB foo 0\r\n\r\n"],
    "split_pub_payload": [C0, b"SUB foo 1\r\n", b"PUB foo 5\r\nhe", b"llo\r\n"],
    "queue_sub_and_plain": [C0, b"SUB foo q 1\r\nSUB foo 2\r\n", b"PUB foo 1\r\nz\r\n"],
    "unsub_unknown_sid": [C0, b"UNSUB 42\r\n"],
    "pong_from_client": [C0, b"PONG\r\n"],
    "pub_blank_args": [C0, b"PUB \r\n"],
    "ping_suffix": [C0, b"PINGX\r\n"],
    "pong_suffix": [C0, b"PONGX\r\n"],
    "connect_suffix": [b"CONNECTX {}\r\n"],
    "connect_without_space": [b'CONNECT{"verbose":false,"pedantic":false}\r\n'],
    "info_suffix": [C0, b"INFOX\r\n"],
    "msg_from_client": [C0, b"MSG foo 1 1\r\nx\r\n"],
    "empty_line": [C0, b"\r\n"],
    "leading_space": [C0, b" PING\r\n"],
    "double_space_args": [C0, b"SUB foo  1\r\n", b"PUB foo  1\r\nx\r\n"],
    "unsub_zero_and_negative": [
        C0,
        b"SUB foo 1\r\nSUB foo 2\r\n",
        b"UNSUB 1 0\r\nUNSUB 2 -5\r\n",
        b"PUB foo 1\r\nx\r\n",
    ],
    "queue_groups_one_copy_each": [
        C0,
        b"SUB foo q1 1\r\nSUB foo q2 3\r\nSUB foo 4\r\n",
        b"PUB foo 1\r\nx\r\n",
    ],
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    ours = start_server()
    go = start_server(oracle=True)
    yield ours, go
    ours.stop()
    go.stop()


# Scenarios whose deliveries may come in any order (queue groups are picked at random).
UNORDERED = {"queue_groups_one_copy_each"}


def frames(data: bytes) -> list[bytes]:
    return sorted(data.split(b"\r\n"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_replies_as_nats_server(
    name: str, servers: tuple[RunningServer, RunningServer]
) -> None:
    ours, go = servers
    steps = SCENARIOS[name]
    expected = run_scenario(go.port, steps)
    got = run_scenario(ours.port, steps)
    if name in UNORDERED:
        assert frames(got) == frames(expected)
    else:
        assert got == expected
