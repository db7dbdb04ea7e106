"""MQTT state kept in JetStream, per account, in the streams nats-server uses.

`MqttAccount` is one account's manager. It talks to JetStream only through the `$JS.API`
subjects, as an internal client whose replies come back on `$MQTT.JSA.<server hash>.<kind>.<n>`
(nats-server's reply prefix), so the server package never imports the jetstream one.
The streams (created on the first MQTT connection of the account, as nats-server does):

- `$MQTT_msgs` (`$MQTT.msgs.>`, interest): QoS 1 and 2 messages; each QoS >= 1
  subscription is a durable push consumer filtered on `$MQTT.msgs.<subject>`.
- `$MQTT_rmsgs` (`$MQTT.rmsgs.>`, one per subject): retained messages, the topic and the
  flags in `Nmqtt-RTopic`/`Nmqtt-RFlags` headers; kept in memory too (`retained`).
- `$MQTT_sess` (`$MQTT.sess.>`, one per subject): a session record per client ID hash
  (`$MQTT.sess.[<domain>.]<hash>`, the JetStream domain as nats-server names it), JSON
  `{"origin", "id", "clean", "subs": {subject: qos}, "cons": {subject: consumer}}`.

Across servers (a cluster or leaf nodes sharing one JetStream): the answers to every
server's session stores (`$MQTT.JSA.<server hash>.SP.<client id hash>.<n>`) are heard by all,
and one that holds that client ID closes its client (taken over elsewhere); the retained
messages a SUBSCRIBE matches are read from the stream first (`refresh_retained`).
- `$MQTT_qos2in` (`$MQTT.qos2.in.>`, one per subject, new ones refused): a QoS 2 PUBLISH
  waiting for its PUBREL, on `$MQTT.qos2.in.<client id>.<packet id>` (a resent one is the
  same message), with `Nmqtt-Pub: <qos><flags>` and `Nmqtt-Subject`.
- `$MQTT_out` (`$MQTT.out.>`, interest): a PUBREL waiting for its PUBCOMP, on
  `$MQTT.out.pubrel.<session hash>` with `Nmqtt-PubRel: <packet id>`, delivered by the
  session's `$MQTT_PUBREL_<hash>` consumer to `$MQTT.deliver.pubrel.<hash>` (so a PUBREL
  is sent again after a reconnect).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .internal import InternalClient
from .name_hash import name_hash

if TYPE_CHECKING:
    from .accounts import Account
    from .server import Server
    from .sublist import Subscription

MSGS_STREAM = "$MQTT_msgs"
MSGS_PREFIX = "$MQTT.msgs."
RETAINED_STREAM = "$MQTT_rmsgs"
RETAINED_PREFIX = "$MQTT.rmsgs."
SESSIONS_STREAM = "$MQTT_sess"
SESSIONS_PREFIX = "$MQTT.sess."
QOS2_IN_STREAM = "$MQTT_qos2in"
QOS2_IN_PREFIX = "$MQTT.qos2.in."
OUT_STREAM = "$MQTT_out"
PUBREL_PREFIX = "$MQTT.out.pubrel."
PUBREL_DELIVER_PREFIX = "$MQTT.deliver.pubrel."
DELIVER_PREFIX = "$MQTT.sub."
JSA_REPLIES = "$MQTT.JSA."
DEFAULT_API_TIMEOUT_S = 4.0


def go_hash(name: str) -> str:
    """nats-server's 8-character name hash (name_hash.py)."""
    return name_hash(name)


class JetStreamUnavailable(Exception):
    """A JS API request failed or timed out (the client gets CONNACK 3 or a SUBACK failure)."""


def _stream(name: str, subject: str, retention: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "subjects": [subject],
        "retention": retention,
        "storage": "file",
        "num_replicas": 1,
    }
    config.update(extra)
    return config


STREAMS = [
    _stream(MSGS_STREAM, MSGS_PREFIX + ">", "interest"),
    _stream(RETAINED_STREAM, RETAINED_PREFIX + ">", "limits", max_msgs_per_subject=1),
    _stream(SESSIONS_STREAM, SESSIONS_PREFIX + ">", "limits", max_msgs_per_subject=1),
    _stream(
        QOS2_IN_STREAM,
        QOS2_IN_PREFIX + ">",
        "limits",
        max_msgs_per_subject=1,
        discard="new",
        discard_new_per_subject=True,
    ),
    _stream(OUT_STREAM, "$MQTT.out.>", "interest"),
]


@dataclass
class Retained:
    topic: str
    payload: bytes
    qos: int


@dataclass
class Session:
    """What survives a connection when clean_session is false."""

    client_id: str
    clean: bool
    subs: dict[str, int] = field(default_factory=dict)  # NATS subject -> granted QoS
    cons: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject -> consumer config
    pubrel: dict[str, Any] | None = None  # the PUBREL consumer's config (QoS 2 sessions)
    connection: Any = None  # the MqttClient holding it now, if any
    seq: int = 0  # the stream sequence of its record, as last stored from here
    # QoS 2 PUBLISHes received and PUBREC'd, waiting for their PUBREL (packet id -> message)
    qos2_incoming: dict[int, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return go_hash(self.client_id)

    def record(self, origin: str) -> bytes:
        out: dict[str, Any] = {"origin": origin, "id": self.client_id}
        if self.clean:
            out["clean"] = True
        if self.subs:
            out["subs"] = dict(self.subs)
        if self.cons:
            out["cons"] = dict(self.cons)
        if self.pubrel:
            out["pubrel"] = dict(self.pubrel)
        return json.dumps(out, separators=(",", ":")).encode()


class MqttAccount:
    """One account's MQTT sessions and retained messages, and its JetStream conversation."""

    def __init__(self, server: Server, account: Account) -> None:
        self.server = server
        self.account = account
        self.origin = go_hash(server.server_name)
        self.client = InternalClient(server, account, "MQTT")
        self.reply_prefix = f"{JSA_REPLIES}{self.origin}."
        self._replies: dict[bytes, asyncio.Future[bytes]] = {}
        self._stores: dict[bytes, Callable[[str], None]] = {}  # pipelined stores' callbacks
        self._next_reply = 0
        self._reply_sub: Subscription | None = None
        self.sessions: dict[str, Session] = {}
        self._clearing: dict[str, asyncio.Future[None]] = {}  # client ID -> its clear done
        self.flappers: dict[str, float] = {}  # client ID -> when it was last taken over
        self.retained: dict[str, Retained] = {}
        self._ready: asyncio.Future[None] | None = None
        self._persisted_sub: Subscription | None = None  # every server's session records
        # Other servers may store and remove retained messages in the same JetStream (a
        # cluster, a leaf node, `js_domain`): the ones a SUBSCRIBE matches are read again.
        self.shared = (
            server.cluster is not None
            or server.leafnodes is not None
            or bool(server.options.mqtt.js_domain)
        )
        opts = server.options.mqtt
        self.api_timeout = opts.js_api_timeout or DEFAULT_API_TIMEOUT_S
        # `js_domain`: the JetStream (this server's, or a hub's over a leaf node) that keeps
        # the account's MQTT state
        self.api_prefix = f"$JS.{opts.js_domain}.API" if opts.js_domain else "$JS.API"
        # Session records are kept per JetStream domain, as nats-server keeps them
        # (`$MQTT.sess.<domain>.<hash>`): the account's `default_js_domain`, else `js_domain`,
        # else this server's own JetStream domain.
        defaults = server.options.default_js_domain
        if account.name in defaults:
            domain = defaults[account.name] or opts.js_domain
        else:
            domain = opts.js_domain or server.options.jetstream_domain
        self.domain = domain
        self.session_prefix = SESSIONS_PREFIX + (f"{domain}." if domain else "")

    # -- the JS API conversation -------------------------------------------------------------

    def _on_reply(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        future = self._replies.pop(subject, None)
        if future is not None and not future.done():
            future.set_result(payload)
            return
        stored = self._stores.pop(subject, None)
        if stored is not None:
            error = ""
            if b'"error"' in payload:
                try:
                    answer = json.loads(payload).get("error") or {}
                    error = f"{answer.get('description')} ({answer.get('err_code')})"
                except (ValueError, AttributeError):
                    error = payload.decode(errors="replace")
            stored(error)

    def store(
        self, subject: str, payload: bytes, headers: bytes, on_stored: Callable[[str], None]
    ) -> None:
        """Store a message without waiting: `on_stored` is called with "" once JetStream
        has it, or with the error (nats-server's pipelined QoS 1 publish)."""
        reply = self._new_reply("MS")
        self._stores[reply] = on_stored
        if not self.client.publish(subject, payload, reply, headers):
            del self._stores[reply]
            on_stored("no responders (503)")

    def _new_reply(self, kind: str) -> bytes:
        if self._reply_sub is None:
            self._reply_sub = self.client.subscribe(self.reply_prefix + ">", self._on_reply)
        self._next_reply += 1
        return f"{self.reply_prefix}{kind}.{self._next_reply}".encode()

    async def request(
        self, kind: str, subject: str, payload: bytes = b"", headers: bytes = b""
    ) -> bytes:
        reply = self._new_reply(kind)
        future: asyncio.Future[bytes] = self.server.loop.create_future()
        self._replies[reply] = future
        self.client.publish(subject, payload, reply, headers)
        try:
            return await asyncio.wait_for(future, self.api_timeout)
        except TimeoutError:
            self._replies.pop(reply, None)
            raise JetStreamUnavailable("timeout for request type") from None

    async def api(
        self, kind: str, subject: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        raw = await self.request(kind, subject, json.dumps(body).encode() if body else b"")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise JetStreamUnavailable(f"bad JetStream answer: {raw[:100]!r}") from None
        return answer if isinstance(answer, dict) else {}

    # -- set-up ------------------------------------------------------------------------------

    async def ready(self) -> None:
        """Streams created and retained messages loaded (once; later callers wait for it)."""
        if self._ready is None:
            self._ready = self.server.loop.create_future()
            try:
                await self._set_up()
            except BaseException as e:
                self._ready.set_exception(e)
                self._ready.exception()  # retrieved: a later caller re-raises it
                self._ready = None
                raise
            self._ready.set_result(None)
            return
        await asyncio.shield(self._ready)

    async def _set_up(self) -> None:
        mo = self.server.options.mqtt
        if self._persisted_sub is None:
            self._persisted_sub = self.client.subscribe(
                JSA_REPLIES + "*.SP.>", self._on_session_persisted
            )
        for config in STREAMS:
            config = dict(config)
            if mo.stream_replicas > 0:
                config["num_replicas"] = mo.stream_replicas
            answer = await self.api(
                "SC", f"{self.api_prefix}.STREAM.CREATE.{config['name']}", config
            )
            error = answer.get("error")
            if error and error.get("err_code") != 10058:  # already there, another config
                # nats-server looks the sessions stream up first: its words for a failure
                what = "lookup sessions" if config["name"] == MSGS_STREAM else "create"
                if what == "create":
                    what = f"create {config['name']}"
                raise JetStreamUnavailable(
                    f'{what} stream for account "{self.account.name}": '
                    f"{error.get('description')} ({error.get('err_code')})"
                )
        await self._load_retained()

    async def _load_retained(self) -> None:
        seq = 0
        while True:
            answer = await self.api(
                "ML",
                f"{self.api_prefix}.STREAM.MSG.GET.{RETAINED_STREAM}",
                {"seq": seq + 1, "next_by_subj": RETAINED_PREFIX + ">"},
            )
            message = answer.get("message")
            if not isinstance(message, dict):
                return
            seq = int(message.get("seq", seq + 1))
            self._remember_retained(message)

    def _remember_retained(self, message: dict[str, Any]) -> str:
        import base64

        subject = str(message.get("subject", ""))[len(RETAINED_PREFIX) :]
        headers = _parse_headers(base64.b64decode(message.get("hdrs") or b""))
        payload = base64.b64decode(message.get("data") or b"")
        if not payload:  # a removal, on its way out of the stream
            self.retained.pop(subject, None)
            return ""
        flags = int(headers.get("Nmqtt-RFlags", "0") or 0)
        self.retained[subject] = Retained(
            headers.get("Nmqtt-RTopic", ""), payload, (flags >> 1) & 0x03
        )
        return subject

    # -- retained messages -----------------------------------------------------------------

    async def refresh_retained(self, subjects: list[str]) -> None:
        """The retained messages on `subjects` (filters) as the stream has them now: what
        other servers stored is learnt, what they removed forgotten (only when `shared`)."""
        if not self.shared:
            return
        from .subjects import subject_matches

        for subject in subjects:
            found: set[str] = set()
            seq = 0
            while True:
                answer = await self.api(
                    "ML",
                    f"{self.api_prefix}.STREAM.MSG.GET.{RETAINED_STREAM}",
                    {"seq": seq + 1, "next_by_subj": RETAINED_PREFIX + subject},
                )
                message = answer.get("message")
                if not isinstance(message, dict):
                    break
                seq = int(message.get("seq", seq + 1))
                found.add(self._remember_retained(message))
            pattern = subject.encode()
            for known in list(self.retained):
                if known not in found and subject_matches(pattern, known.encode()):
                    del self.retained[known]

    async def retain(self, subject: str, topic: str, payload: bytes, qos: int) -> None:
        """Store (or, with an empty payload, forget) the retained message of a subject."""
        if not payload:
            # Stored empty first: the servers following the stream (nats-server's consumer
            # of `$MQTT_rmsgs`) forget it too; then removed.
            self.retained.pop(subject, None)
            await self.request(
                "MS", RETAINED_PREFIX + subject, b"", self._retained_headers(topic, qos)
            )
            await self.api(
                "RD",
                f"{self.api_prefix}.STREAM.PURGE.{RETAINED_STREAM}",
                {"filter": RETAINED_PREFIX + subject},
            )
            return
        self.retained[subject] = Retained(topic, payload, qos)
        await self.request(
            "MS", RETAINED_PREFIX + subject, payload, self._retained_headers(topic, qos)
        )

    def _retained_headers(self, topic: str, qos: int) -> bytes:
        flags = (qos << 1) | 0x01
        return (
            f"NATS/1.0\r\nNmqtt-RTopic: {topic}\r\nNmqtt-RFlags: {flags}\r\n"
            f"Nmqtt-ROrigin: {self.origin}\r\n\r\n"
        ).encode()

    # -- sessions ----------------------------------------------------------------------------

    def is_flapping(self, client_id: str, jail_s: float = 1.0) -> bool:
        """Was this client ID taken over less than `jail_s` ago? (Older entries go.)"""
        now = time.monotonic()
        for cid, when in list(self.flappers.items()):
            if now - when > jail_s:
                del self.flappers[cid]
        return client_id in self.flappers

    async def load_session(self, client_id: str) -> Session | None:
        """The session record stored for a client ID (another server's or an earlier run's)."""
        clearing = self._clearing.get(client_id)
        if clearing is not None:
            await asyncio.shield(clearing)
        session = self.sessions.get(client_id)
        if session is not None:
            return session
        answer = await self.api(
            "ML",
            f"{self.api_prefix}.STREAM.MSG.GET.{SESSIONS_STREAM}",
            {"last_by_subj": self.session_prefix + go_hash(client_id)},
        )
        message = answer.get("message")
        if not isinstance(message, dict):
            return None
        import base64

        try:
            record = json.loads(base64.b64decode(message.get("data") or b""))
        except ValueError:
            return None
        session = Session(
            client_id,
            bool(record.get("clean")),
            {str(k): int(v) for k, v in (record.get("subs") or {}).items()},
            {str(k): v for k, v in (record.get("cons") or {}).items()},
        )
        pubrel = record.get("pubrel")
        session.pubrel = pubrel if isinstance(pubrel, dict) else None
        session.seq = int(message.get("seq") or 0)
        self.sessions[client_id] = session
        return session

    async def persist(self, session: Session) -> None:
        # the reply names the client ID hash (`$MQTT.JSA.<origin>.SP.<hash>.<n>`): the other
        # servers of the cluster hear of it (`_on_session_persisted`), as nats-server's do
        raw = await self.request(
            f"SP.{session.hash}",
            self.session_prefix + session.hash,
            session.record(self.origin),
        )
        try:
            session.seq = int(json.loads(raw).get("seq") or 0)
        except (ValueError, AttributeError, TypeError):
            pass

    def _on_session_persisted(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """Another server stored a session record (JetStream's answer to its request): the
        copy kept here is stale, and a client holding that client ID here is closed, since
        one on that server took it over (nats-server's words)."""
        tokens = subject.decode(errors="replace").split(".")
        if len(tokens) < 5 or tokens[2] == self.origin:
            return
        try:
            ack = json.loads(payload)
        except ValueError:
            return
        if not isinstance(ack, dict) or ack.get("error") or ack.get("domain", "") != self.domain:
            return  # refused, or another domain's sessions
        id_hash = tokens[4]
        for cid, session in list(self.sessions.items()):
            if session.hash != id_hash or int(ack.get("seq") or 0) < session.seq:
                continue  # (an older record than ours: nothing to do, as nats-server)
            del self.sessions[cid]
            client = session.connection
            if client is not None and not client.closed:
                session.connection = None  # closed without forgetting the session
                client.will = None
                self.flappers[cid] = time.monotonic()
                self.server.logger.warn(
                    f"{client.error_label} - Closing because a remote connection has started "
                    f'with the same client ID: "{cid}"'
                )
                client.close_connection("Duplicate Client ID")
                self.server.flush_pending()

    async def clear(self, session: Session) -> None:
        """Forget a session: its consumers and its record. What it had is taken at once, so
        a second clear of the same session does nothing; a client ID connecting meanwhile
        waits for it (`load_session`), so nothing of a newer session is deleted."""
        cid = session.client_id
        consumers = [str(c.get("durable_name", "")) for c in session.cons.values()]
        pubrel = session.pubrel
        session.cons.clear()
        session.subs.clear()
        session.pubrel = None
        if self.sessions.get(cid) is not session:
            return
        del self.sessions[cid]
        done: asyncio.Future[None] = self.server.loop.create_future()
        self._clearing[cid] = done
        try:
            for name in consumers:
                await self.delete_consumer(name)
            if pubrel is not None:
                await self.delete_consumer(str(pubrel["durable_name"]), OUT_STREAM)
            await self.api(
                "SD",
                f"{self.api_prefix}.STREAM.PURGE.{SESSIONS_STREAM}",
                {"filter": self.session_prefix + session.hash},
            )
        finally:
            if self._clearing.get(cid) is done:
                del self._clearing[cid]
            done.set_result(None)

    async def create_consumer(self, config: dict[str, Any], stream: str = MSGS_STREAM) -> None:
        name = config["durable_name"]
        answer = await self.api(
            "CC",
            f"{self.api_prefix}.CONSUMER.DURABLE.CREATE.{stream}.{name}",
            {"stream_name": stream, "config": config},
        )
        error = answer.get("error")
        if error:
            raise JetStreamUnavailable(str(error.get("description", error)))

    async def delete_consumer(self, name: str, stream: str = MSGS_STREAM) -> None:
        if name:
            await self.api("CD", f"{self.api_prefix}.CONSUMER.DELETE.{stream}.{name}")

    async def load_last(self, stream: str, subject: str) -> tuple[dict[str, str], bytes] | None:
        """The last message stored on `subject`: its headers and payload."""
        import base64

        answer = await self.api(
            "ML", f"{self.api_prefix}.STREAM.MSG.GET.{stream}", {"last_by_subj": subject}
        )
        message = answer.get("message")
        if not isinstance(message, dict):
            return None
        headers = _parse_headers(base64.b64decode(message.get("hdrs") or b""))
        return headers, base64.b64decode(message.get("data") or b"")

    async def purge(self, stream: str, subject: str) -> None:
        await self.api("MD", f"{self.api_prefix}.STREAM.PURGE.{stream}", {"filter": subject})

    def close(self) -> None:
        for future in self._replies.values():
            if not future.done():
                future.cancel()
        self._replies.clear()
        self.client.close()


def _parse_headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode(errors="replace").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def nats_header_qos(headers: bytes) -> int:
    """The QoS an MQTT publisher gave (`Nmqtt-Pub`), 0 for a NATS message."""
    at = headers.find(b"Nmqtt-Pub:")
    if at < 0:
        return 0
    value = headers[at + 10 : at + 14].strip()[:1]
    return value[0] - 48 if value and value.isdigit() else 0
