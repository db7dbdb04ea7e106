"""The nats-server configuration-file language.

    parse_config(text, filename=None, env=None) -> ConfigMap     text in, tree out
    load_config_file(path, env=None) -> ConfigFile               .data, .digest, .path
    ConfigError                                                  str() is nats-server's text

The tree is made of `ConfigMap` (dict) and `ConfigList` (list) holding str, bool, int,
float and UTC datetime values; `ConfigMap.position(key)` says where a key was written and
`ConfigMap.is_used_variable(key)` whether it served as a `$variable` (see `tree`).
`units` reads duration options and storage sizes from values (Go durations: `pynats.gotime`).

Modules: `lexer` (bytes -> tokens), `parser` (tokens -> tree, variables, includes),
`tree` (containers with positions), `digest` (nats-server's sha256 digest), `units`,
`loader` (the start-up path: read, parse, digest).
"""

from .digest import config_digest, go_json
from .errors import ConfigError
from .loader import ConfigFile, load_config_file
from .parser import parse_config
from .tree import ConfigList, ConfigMap, Position
from .units import duration_from_config, parse_size

__all__ = [
    "ConfigError",
    "ConfigFile",
    "ConfigList",
    "ConfigMap",
    "Position",
    "config_digest",
    "duration_from_config",
    "go_json",
    "load_config_file",
    "parse_config",
    "parse_size",
]
