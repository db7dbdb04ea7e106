"""The `leafnodes {}` block (alias `leaf`) as nats-server's `parseLeafNodes` reads it, and the
start-up checks of its `validateLeafNode`.

The listener side (this server as a hub: listen, authorization, tls, compression...) fills
`LeafNodeOptions`; each entry of `remotes` (this server as a leaf of a hub) a `LeafRemote`.
Every key is read with nats-server's texts and places, including its quirks:

- a value of the wrong type ends the function that read it (Go's `recover()`): the rest of
  the block, or of the remotes list, is not read;
- the leaf `authorization` takes a single user/password or nkey, or `users` with an account
  each, never a token (an unknown field there); a type error inside it is reported twice,
  the second time as the nil dereference nats-server then hits;
- remote URLs keep the text as written (trimmed); nats-server adds the default port 7422
  only when it dials, and so does the runtime;
- a credentials file is not opened here (nats-server reads it when it dials), its path only
  has `$VARS` and `~` expanded; an nkey must be a user seed.

`remote_name` is nats-server's name of a remote (URLs, account, credentials or nkey), which
makes two remotes duplicates and which reload compares.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from typing import Any

from .conf import ConfigMap
from .conf.units import go_quote, go_type_name
from .config_cluster import normalize_compression, parse_compression, rtt_thresholds_problem
from .config_reader import (
    GoPanic,
    Reader,
    auth_timeout,
    conversion_text,
    element_position,
    go_atoi,
    go_listen,
    go_value,
    parse_url,
    permission_subjects,
)
from .config_tls import tls_block
from .nkey import PREFIX_ACCOUNT, PREFIX_USER, InvalidNkey, crc16, decode_public_key
from .options import LeafNodeOptions, LeafRemote, LeafUser, Options

NIL_DEREFERENCE = "runtime error: invalid memory address or nil pointer dereference"
DEFAULT_LEAF_TLS_TIMEOUT_S = 2.0
LEAF_COMPRESSION_ON = "s2_auto"  # what "on"/true means for leaf connections
DEFAULT_S2_AUTO_RTT_THRESHOLDS_S = (0.010, 0.050, 0.100)

Handler = Callable[[Reader, LeafNodeOptions, ConfigMap, str], None]


def parse_leafnodes(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"Expected map to define a leafnode, got {go_type_name(block)}")
        return
    leaf = o.leafnodes
    with r.recovering():
        for k in block:
            handler = LEAFNODES.get(k.lower())
            if handler is None:
                r.unknown_field(block, k)
            else:
                handler(r, leaf, block, k)


def _set(name: str, kind: str) -> Handler:
    def handle(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
        getter: dict[str, Callable[[ConfigMap, str], Any]] = {
            "int": r.expect_int,
            "bool": r.expect_bool,
            "str": r.expect_str,
        }
        setattr(leaf, name, getter[kind](m, key))

    return handle


def _duration(name: str, field: str) -> Handler:
    def handle(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
        setattr(leaf, name, r.go_duration(m, key, field))

    return handle


def _listen(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    listen = go_listen(m[key])
    if isinstance(listen, str):
        r.error(m, key, listen)
    else:
        leaf.host, leaf.port = listen


def _tls(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    parsed = tls_block(r, m, key, client_facing=True)
    if parsed is not None:
        leaf.tls = parsed.settings
        leaf.tls_handshake_first = parsed.handshake_first
        leaf.tls_handshake_first_fallback = parsed.handshake_first_fallback


def _min_version(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    version = r.expect_str(m, key)
    problem = min_version_problem(version)
    if problem:
        r.error(m, key, problem)
        return
    leaf.min_version = version


_SEMVER = re.compile(
    r"^v?([0-9]+)\.([0-9]+)\.([0-9]+)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def min_version_problem(version: str) -> str | None:
    """nats-server's `checkLeafMinVersionConfig`: a semantic version of at least 2.8.0.
    (Its pattern allows a leading `v`, but the check that follows does not.)"""
    match = _SEMVER.match(version)
    if match is None or version.startswith("v"):
        return "invalid leafnode's minimum version: invalid semver"
    parts: list[int] = []
    for text in match.groups()[:3]:
        number = go_atoi(text)
        if number is None or not -(1 << 63) <= number < (1 << 63):
            return (
                "invalid leafnode's minimum version: strconv.Atoi: parsing "
                f"{go_quote(text)}: value out of range"
            )
        parts.append(number)
    if tuple(parts) < (2, 8, 0):
        return "the minimum version should be at least 2.8.0"
    return None


def _compression(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    setting = parse_compression(r, m, key, on=LEAF_COMPRESSION_ON)
    if setting is None:
        return
    if setting.text is not None:
        leaf.compression = _leaf_mode(setting.text)
        leaf.compression_text = setting.text
    leaf.compression_rtt_thresholds = setting.rtt_thresholds


def _leaf_mode(text: str) -> str:
    """The mode kept for a leaf compression text: nats-server's name when it knows it, the
    text otherwise (refused at start-up); empty stays unset (the default, s2_auto)."""
    if not text:
        return ""
    return normalize_compression(text, LEAF_COMPRESSION_ON) or text


def _write_timeout(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    policy = r.expect_str(m, key)
    if policy not in ("default", "close", "retry"):
        r.error(m, key, "write_timeout must be 'default', 'close' or 'retry'")
        policy = "default"
    leaf.write_timeout = policy


# -- authorization {} --------------------------------------------------------------------------


def _authorization(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    """nats-server's `parseLeafAuthorization`, then `validateLeafNodeAuthOptions` (reported
    at `authorization`). A type error inside the block is reported where it happened, and
    then once more as the nil dereference nats-server's caller hits (which also ends the
    leafnodes block)."""
    try:
        auth = _leaf_authorization(r, m, key)
    except GoPanic as p:
        r.error_at(p.position, p.text)
        raise r.panic(m, key, NIL_DEREFERENCE) from None
    if auth is None:
        return
    leaf.username = auth.username
    leaf.password = auth.password
    leaf.proxy_required = auth.proxy_required
    leaf.auth_timeout = auth.auth_timeout
    leaf.account = auth.account
    leaf.users = auth.users
    leaf.nkey = auth.nkey
    problem = auth_problem(leaf)
    if problem:
        r.error(m, key, problem)


def _leaf_authorization(r: Reader, m: ConfigMap, key: str) -> LeafNodeOptions | None:
    """The authorization block's values (in a scratch LeafNodeOptions), or None when
    nats-server's parser returned an error (a bad timeout)."""
    block = r.expect_map(m, key)
    auth = LeafNodeOptions()
    for k in block:
        lk = k.lower()
        if lk in ("user", "username"):
            auth.username = r.expect_str(block, k)
        elif lk in ("pass", "password"):
            auth.password = r.expect_str(block, k)
        elif lk == "nkey":
            auth.nkey = r.expect_str(block, k)
            if not is_public_key(auth.nkey, PREFIX_USER):
                r.error(block, k, "Not a valid public nkey for leafnode authorization")
        elif lk == "timeout":
            seconds = auth_timeout(r, block, k, "leafnode authorization")
            if seconds is None:
                return None
            auth.auth_timeout = seconds
        elif lk == "users":
            auth.users = _leaf_users(r, block, k)
        elif lk == "account":
            auth.account = r.expect_str(block, k)
        elif lk == "proxy_required":
            auth.proxy_required = r.expect_bool(block, k)
        else:
            r.unknown_field(block, k)
    return auth


def _leaf_users(r: Reader, m: ConfigMap, key: str) -> list[LeafUser]:
    """nats-server's `parseLeafUsers`: user, password, account (and proxy_required) per
    entry; a type error drops the whole list."""
    value = m[key]
    if not isinstance(value, list):
        r.error(m, key, f"Expected users field to be an array, got {go_value(value)}")
        return []
    users: list[LeafUser] = []
    try:
        for i, entry in enumerate(value):
            if not isinstance(entry, ConfigMap):
                r.error_at(
                    element_position(value, i),
                    f"Expected user entry to be a map/struct, got {go_value(entry)}",
                )
                continue
            user = LeafUser()
            for k in entry:
                lk = k.lower()
                if lk in ("user", "username"):
                    user.username = r.expect_str(entry, k)
                elif lk in ("pass", "password"):
                    user.password = r.expect_str(entry, k)
                elif lk == "account":
                    user.account = r.expect_str(entry, k)
                elif lk == "proxy_required":
                    r.expect_bool(entry, k)
                else:
                    r.unknown_field(entry, k)
            users.append(user)
    except GoPanic as p:
        r.error_at(p.position, p.text)
        return []
    return users


def auth_problem(leaf: LeafNodeOptions) -> str | None:
    """nats-server's `validateLeafNodeAuthOptions`: a users list goes alone, each name once."""
    if not leaf.users:
        return None
    if leaf.username:
        return "can not have a single user/pass and a users array"
    if leaf.nkey:
        return "can not have a single nkey and a users array"
    seen: set[str] = set()
    for user in leaf.users:
        if user.username in seen:
            return f"duplicate user {go_quote(user.username)} detected in leafnode authorization"
        seen.add(user.username)
    return None


# -- remotes [...] -----------------------------------------------------------------------------


def _remotes(r: Reader, leaf: LeafNodeOptions, m: ConfigMap, key: str) -> None:
    """nats-server's `parseRemoteLeafNodes`. A type error ends the list (and leaves no
    remotes, as nats-server's parser then returns none); a remote with an error is left out;
    a remote named like an earlier one is a `duplicate remote`."""
    value = m[key]
    if not isinstance(value, list):
        r.error(m, key, f"Expected remotes field to be an array, got {go_type_name(value)}")
        return
    remotes: list[LeafRemote] = []
    names: set[str] = set()
    try:
        for i, entry in enumerate(value):
            if not isinstance(entry, ConfigMap):
                r.error_at(
                    element_position(value, i),
                    f"Expected remote leafnode entry to be a map/struct, got {go_value(entry)}",
                )
                continue
            remote = _remote(r, entry)
            if remote is None:
                continue
            name = remote_name(remote)
            if name in names:
                r.error_at(
                    _last_position(entry, element_position(value, i)),
                    f"duplicate remote {remote_name(remote, redacted=True)}",
                )
                continue
            names.add(name)
            remotes.append(remote)
    except GoPanic as p:
        r.error_at(p.position, p.text)
        remotes = []
    leaf.remotes = remotes


def _last_position(entry: ConfigMap, fallback: Any) -> Any:
    """The place of the last token nats-server read in a remote: its last key (or, when
    that is a proxy map, the proxy's last key), else the entry itself."""
    if not entry:
        return fallback
    last = list(entry)[-1]
    value = entry[last]
    if last.lower() == "proxy" and isinstance(value, ConfigMap) and value:
        return value.position(list(value)[-1])
    return entry.position(last)


def _remote(r: Reader, m: ConfigMap) -> LeafRemote | None:
    """One remote, None when its proxy settings are refused. A key with an error is left
    unset (nats-server keeps the remote: the errors refuse the file anyway)."""
    remote = LeafRemote()
    proxy_place = None
    for k in m:
        lk = k.lower()
        if lk in ("no_randomize", "dont_randomize"):
            remote.no_randomize = r.expect_bool(m, k)
        elif lk in ("url", "urls"):
            urls = _remote_urls(r, m, k)
            if urls is not None:  # a list replaces, a string adds (as nats-server's parser)
                remote.urls = urls if isinstance(m[k], list) else [*remote.urls, *urls]
        elif lk in ("account", "local"):
            remote.account = r.expect_str(m, k)
        elif lk in ("creds", "credentials"):
            path = expand_path(r.expect_str(m, k))
            if isinstance(path, Exception):
                r.error(m, k, str(path))
            elif remote.nkey:
                r.error(m, k, "Remote leafnode can not have both creds and nkey defined")
            else:
                remote.credentials = path
        elif lk in ("nkey", "seed"):
            seed = r.expect_str(m, k)
            if not is_user_seed(seed):
                r.error(m, k, f"Remote leafnode nkey is not a valid seed: {go_quote(seed)}")
            elif remote.credentials:
                r.error(m, k, "Remote leafnode can not have both creds and nkey defined")
            else:
                remote.nkey = seed
        elif lk == "tls":
            parsed = tls_block(r, m, k, client_facing=True)
            if parsed is not None:
                remote.tls = parsed.settings
                if remote.tls.timeout <= 0:
                    remote.tls.timeout = DEFAULT_LEAF_TLS_TIMEOUT_S
                remote.tls_handshake_first = parsed.handshake_first
        elif lk == "hub":
            remote.hub = r.expect_bool(m, k)
        elif lk in ("deny_imports", "deny_import", "deny_exports", "deny_export"):
            subjects = _perm_subjects(r, m, k)
            if subjects is not None and lk.startswith("deny_import"):
                remote.deny_imports = subjects
            elif subjects is not None:
                remote.deny_exports = subjects
        elif lk in ("ws_compress", "ws_compression", "websocket_compress", "websocket_compression"):
            remote.ws_compression = r.expect_bool(m, k)
        elif lk in ("ws_no_masking", "websocket_no_masking"):
            remote.ws_no_masking = r.expect_bool(m, k)
        elif lk in ("jetstream_cluster_migrate", "js_cluster_migrate"):
            _cluster_migrate(r, remote, m, k)
        elif lk in ("isolate_leafnode_interest", "isolate"):
            remote.isolate = r.expect_bool(m, k)
        elif lk == "request_isolation":
            remote.request_isolation = r.expect_bool(m, k)
        elif lk == "compression":
            setting = parse_compression(r, m, k, on=LEAF_COMPRESSION_ON)
            if setting is not None:
                if setting.text is not None:
                    remote.compression = _leaf_mode(setting.text)
                    remote.compression_text = setting.text
                remote.compression_rtt_thresholds = setting.rtt_thresholds
        elif lk == "first_info_timeout":
            remote.first_info_timeout = r.go_duration(m, k, k)
        elif lk == "dial_timeout":
            remote.dial_timeout = r.go_duration(m, k, "dial_timeout")
        elif lk == "disabled":
            remote.disabled = r.expect_bool(m, k)
        elif lk == "proxy":
            if not isinstance(m[k], ConfigMap):
                r.error(m, k, f"Expected proxy to be a map, got {go_type_name(m[k])}")
                continue
            proxy_place = m.position(k)
            _proxy(r, remote, m[k])
        elif lk == "ignore_discovered_servers":
            remote.ignore_discovered_servers = r.expect_bool(m, k)
        else:
            r.unknown_field(m, k)
    problem = proxy_problem(remote)
    if problem:
        r.error_at(proxy_place, problem)
        return None
    return remote


def _remote_urls(r: Reader, m: ConfigMap, key: str) -> list[str] | None:
    """`url: "..."` or `urls: [...]`: each must parse as a URL (Go's rules, after trimming);
    a repeated one is warned about and dropped. None when one failed."""
    value = m[key]
    if isinstance(value, str):
        url = value.strip()
        try:
            parse_url(url)
        except ValueError:
            r.error(m, key, f"error parsing leafnode url [{go_quote(url)}]")
            return None
        return [url]
    if not isinstance(value, list):
        r.error(
            m,
            key,
            f"Expected remote leafnode url to be an array or string, got {go_value(value)}",
        )
        return None
    urls: list[str] = []
    seen: set[str] = set()
    failed = False
    for i, item in enumerate(value):
        where = element_position(value, i)
        if not isinstance(item, str):
            r.error_at(where, conversion_text(item, "string"))
            return None
        if item in seen:
            r.warn_at(where, f'invalid use of field "{item}": Duplicate leafnode entry detected')
            continue
        seen.add(item)
        url = item.strip()
        try:
            parse_url(url)
        except ValueError:
            r.error_at(where, f"error parsing leafnode url [{go_quote(url)}]")
            continue
        urls.append(url)
    return None if failed else urls


def _perm_subjects(r: Reader, m: ConfigMap, key: str) -> list[str] | None:
    """nats-server's `parsePermSubjects` for deny_imports/deny_exports."""
    value = m[key]
    if not isinstance(value, (str, list)):
        r.error(
            m,
            key,
            "Expected subject permissions to be a subject, or array of subjects, "
            f"got {go_type_name(value)}",
        )
        return None
    return permission_subjects(r, value, m.position(key))


def _cluster_migrate(r: Reader, remote: LeafRemote, m: ConfigMap, key: str) -> None:
    value = m[key]
    if isinstance(value, bool):
        remote.jetstream_cluster_migrate = value
    elif isinstance(value, ConfigMap):
        remote.jetstream_cluster_migrate = True
        if "leader_migrate_delay" in value:
            remote.jetstream_cluster_migrate_delay = r.go_duration(
                value, "leader_migrate_delay", "leader_migrate_delay"
            )
    else:  # nats-server has no place for this one
        r.error_at(
            None,
            f"Expected boolean or map for jetstream_cluster_migrate, got {go_type_name(value)}",
        )


def _proxy(r: Reader, remote: LeafRemote, block: ConfigMap) -> None:
    for k in block:
        lk = k.lower()
        if lk == "url":
            remote.proxy_url = r.expect_str(block, k)
        elif lk == "username":
            remote.proxy_username = r.expect_str(block, k)
        elif lk == "password":
            remote.proxy_password = r.expect_str(block, k)
        elif lk == "timeout":
            remote.proxy_timeout = r.go_duration(block, k, "proxy timeout")
        else:
            r.unknown_field(block, k)


def proxy_problem(remote: LeafRemote) -> str | None:
    """nats-server's `validateLeafNodeProxyOptions` (an HTTP CONNECT proxy for websocket
    remotes)."""
    if not remote.proxy_url:
        return None
    try:
        url = parse_url(remote.proxy_url)
    except ValueError as e:
        return f"invalid proxy URL: {e}"
    if url.scheme not in ("http", "https"):
        return f"proxy URL scheme must be http or https, got: {url.scheme}"
    if not url.host:
        return "proxy URL must specify a host"
    if remote.proxy_timeout < 0:
        return "proxy timeout must be >= 0"
    if bool(remote.proxy_username) != bool(remote.proxy_password):
        return "proxy username and password must both be specified or both be empty"
    for text in remote.urls:
        if _scheme(text) == "wss" and remote.tls is None:
            return (
                f"proxy is configured but remote URL {go_url_string(text)} requires TLS and "
                "no TLS configuration is provided. When using proxy with TLS endpoints, ensure "
                "TLS is properly configured for the leafnode remote"
            )
    return None


LEAFNODES: dict[str, Handler] = {
    "listen": _listen,
    "port": _set("port", "int"),
    "host": _set("host", "str"),
    "net": _set("host", "str"),
    "authorization": _authorization,
    "remotes": _remotes,
    "reconnect": _duration("reconnect_delay", "reconnect"),
    "reconnect_delay": _duration("reconnect_delay", "reconnect"),
    "reconnect_interval": _duration("reconnect_delay", "reconnect"),
    "tls": _tls,
    "leafnode_advertise": _set("advertise", "str"),
    "advertise": _set("advertise", "str"),
    "no_advertise": _set("no_advertise", "bool"),
    "min_version": _min_version,
    "minimum_version": _min_version,
    "compression": _compression,
    "isolate_leafnode_interest": _set("isolate_leafnode_interest", "bool"),
    "isolate": _set("isolate_leafnode_interest", "bool"),
    "write_deadline": _duration("write_deadline", "write_deadline"),
    "write_timeout": _write_timeout,
    "dial_timeout": _duration("dial_timeout", "dial_timeout"),
}


# -- names, keys, paths --------------------------------------------------------------------------


def remote_name(remote: LeafRemote, *, redacted: bool = False) -> str:
    """nats-server's `RemoteLeafOpts.name()` (`safeName()` when redacted): the URLs, the
    local account ($G when none) and the credentials file or nkey."""
    account = remote.account or "$G"
    extra = ""
    if remote.credentials:
        extra = f", credentials={go_quote(remote.credentials)}"
    elif remote.nkey:
        extra = ', nkey="[REDACTED]"' if redacted else f", nkey={go_quote(remote.nkey)}"
    urls = " ".join(go_quote(go_url_string(u, redacted=redacted)) for u in remote.urls)
    return f"urls=[{urls}], account={go_quote(account)}{extra}"


def go_url_string(text: str, *, redacted: bool = False) -> str:
    """A URL as Go's `url.URL.String()` writes it back (the scheme in lower case), with the
    password shown as `xxxxx` when redacted (nats-server's `redactURLList`)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at and redacted:
        user, colon, _ = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:xxxxx"
    return f"{scheme.lower()}://{userinfo}{at}{host}{slash}{path}"


def _scheme(text: str) -> str:
    return text.partition("://")[0].lower() if "://" in text else ""


def is_websocket_url(text: str) -> bool:
    return _scheme(text) in ("ws", "wss")


_ENV_VARIABLE = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+|[*#$@!?\-]))")


def expand_path(path: str) -> str | Exception:
    """Go's `os.ExpandEnv` then a leading `~` as $HOME (nats-server's `expandPath`)."""
    expanded = _ENV_VARIABLE.sub(lambda m: os.environ.get(m.group(1) or m.group(2) or "", ""), path)
    if not expanded.startswith("~"):
        return expanded
    home = os.environ.get("HOME", "")
    if not home:
        return ValueError("failed to get home dir, require $HOME")
    return os.path.normpath(os.path.join(home, expanded[1:].lstrip("/")) or ".")


def is_user_seed(text: str) -> bool:
    """nats-server's check of a remote's nkey: an nkey seed (`S...`) of a user key."""
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, TypeError):
        return False
    if len(raw) < 4 or crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        return False
    if raw[0] & 0xF8 != 18 << 3:  # the seed prefix
        return False
    return ((raw[0] & 0x07) << 5 | (raw[1] & 0xF8) >> 3) == PREFIX_USER


def is_public_key(text: str, prefix: int) -> bool:
    try:
        kind, _ = decode_public_key(text)
    except InvalidNkey:
        return False
    return kind == prefix


# -- start-up checks ---------------------------------------------------------------------------

OPERATOR_MODE_REMOTES = (
    "operator mode requires account nkeys in remotes. Please add an `account` key to each "
    "remote in your `leafnodes` section, to assign it to an account. Each account value "
    "should be a 56 character public key, starting with the letter 'A'"
)


def leafnode_problem(opts: Options) -> str | None:
    """What nats-server's `validateLeafNode` refuses when the server starts (or reloads):
    accounts the block names that do not exist (or, in operator mode, that are not account
    keys), unknown compression modes or bad RTT thresholds, a remote mixing websocket and
    plain URLs."""
    leaf = opts.leafnodes
    problem = auth_problem(leaf)
    if problem:
        return problem
    if not opts.trusted_operators:
        known = set(opts.accounts) | {"$G", ""}
        if not opts.system_account and not opts.no_system_account:
            known.add("$SYS")
        wanted = [(leaf.account, "authorization")]
        wanted += [(u.account, "authorization") for u in leaf.users if u.account]
        wanted += [(remote.account or "$G", "remote") for remote in leaf.remotes]
        for name, where in wanted:
            if name not in known:
                return f"cannot find local account {go_quote(name)} specified in leafnode {where}"
    else:
        if leaf.users:
            return "operator mode does not allow specifying users in leafnode config"
        for remote in leaf.remotes:
            if not is_public_key(remote.account, PREFIX_ACCOUNT):
                return OPERATOR_MODE_REMOTES
        if leaf.port != 0 and leaf.account and not is_public_key(leaf.account, PREFIX_ACCOUNT):
            return "operator mode and non account nkeys are incompatible"
    problem = compression_problem(
        leaf.compression, leaf.compression_text, leaf.compression_rtt_thresholds
    )
    if problem:
        return problem
    for remote in leaf.remotes:
        problem = proxy_problem(remote)
        if problem:
            return problem
        if len(remote.urls) >= 2:
            kinds = {is_websocket_url(u) for u in remote.urls}
            if len(kinds) > 1:
                listing = " ".join(go_quote(go_url_string(u, redacted=True)) for u in remote.urls)
                return (
                    "remote leaf node configuration cannot have a mix of websocket and "
                    f"non-websocket urls: [{listing}]"
                )
        problem = compression_problem(
            remote.compression, remote.compression_text, remote.compression_rtt_thresholds
        )
        if problem:
            return problem
    if leaf.port != 0 and leaf.min_version:
        return min_version_problem(leaf.min_version)
    return None


def compression_problem(mode: str, text: str, thresholds: list[float]) -> str | None:
    """nats-server's `validateAndNormalizeCompressionOption` for a leaf setting ("" is
    unset: the default, s2_auto)."""
    if not mode:
        return None
    normalized = normalize_compression(mode, LEAF_COMPRESSION_ON)
    if normalized is None:
        return f"unsupported compression mode {go_quote(mode)}"
    if normalized == "s2_auto" and thresholds:
        return rtt_thresholds_problem(text or mode, thresholds)
    return None
