"""Loading the configuration file a server starts with: read, parse, digest.

This is nats-server's start-up path for `-c FILE`: the file is parsed and the digest printed
by `-t` and `Using configuration file: ... (sha256:...)` is computed. Keys that served as
`$variables` stay in the tree and in the digest (nats-server 2.15 keeps them too); the option
layer skips them with `ConfigMap.is_used_variable`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .digest import config_digest
from .parser import parse_config, read_config_bytes
from .tree import ConfigMap


@dataclass(frozen=True)
class ConfigFile:
    """A loaded configuration file: its tree, its nats-server digest and its path as given."""

    path: str
    data: ConfigMap
    digest: str


def load_config_file(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> ConfigFile:
    """Read, parse and digest `path` the way nats-server does; raises ConfigError."""
    source = os.fspath(path)
    data = parse_config(read_config_bytes(source), filename=source, env=env)
    return ConfigFile(path=source, data=data, digest=config_digest(data))
