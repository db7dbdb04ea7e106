"""Configuration file -> Options (filled in by the configuration work)."""

from __future__ import annotations

from .options import Options


class ConfigLoadError(Exception):
    """The configuration file cannot be used; the message says where and why."""


def apply_config_file(opts: Options) -> Options:
    raise ConfigLoadError(f"configuration files are not supported yet: {opts.config_file}")
