"""Who is measured: a server started from a command, or the generator itself (self-test).

A contender runs one scenario at one size and returns its result, or a short text saying why
there is none; one failed run never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadgen import ServerError
from scenarios import (
    Result,
    Scenario,
    Settings,
    pub_only,
    request_reply,
    subscribers_only,
)
from servers import RunningCluster, RunningServer, ServerFailed, ServerSpec
from sink import Sink


@dataclass
class ServerContender:
    """A server under test, started fresh for every run. A server that cannot start is not
    retried: every later run reports the first failure instead of waiting for it again."""

    spec: ServerSpec
    failure: str | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def supports(self, scenario: Scenario) -> bool:
        return True

    def run(self, scenario: Scenario, size: int, settings: Settings) -> Result | str:
        if self.failure is not None:
            return f"not started: {self.failure}"
        try:
            with self.start() as server:
                return scenario.run(server, size, settings)
        except ServerFailed as exc:
            self.failure = str(exc)
            return self.failure
        except (ServerError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def start(self) -> RunningServer | RunningCluster:
        return RunningServer(self.spec)


@dataclass
class ClusterContender(ServerContender):
    """A full-mesh cluster of `members` servers started from one spec, fresh for every run;
    the scenario gets the `RunningCluster` (client ports in member order A, B, C, ...)."""

    members: int = 3
    gateways: bool = False  # one-server clusters joined by gateways instead of routes

    def start(self) -> RunningCluster:
        return RunningCluster(self.spec, self.members, gateways=self.gateways)


@dataclass
class GeneratorContender:
    """The load generator against the trivial sink: the most it can publish or count.

    Each scenario maps to the generator roles it uses: pub-only to the publisher (sink drops
    everything), the pub/sub scenarios to their subscribers (sink streams frames to them,
    no publisher), request/reply to requester + responder (sink relays).
    """

    name: str = "generator"

    def supports(self, scenario: Scenario) -> bool:
        return scenario.key in ("pub", "pubsub", "fanout", "queue", "reqrep")

    def run(self, scenario: Scenario, size: int, settings: Settings) -> Result | str:
        try:
            return self._run(scenario.key, size, settings)
        except (ServerError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _run(self, key: str, size: int, settings: Settings) -> Result:
        if key == "pub":
            with Sink("discard", size) as sink:
                return pub_only(sink, size, settings)
        if key == "reqrep":
            with Sink("relay", size) as sink:
                return request_reply(sink, size, settings)
        members = {"pubsub": 1, "fanout": settings.fanout, "queue": settings.queue_members}[key]
        with Sink("blast", size) as sink:
            return subscribers_only(sink, size, settings, members)
