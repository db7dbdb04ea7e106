"""`nats server passwd` (aliases `mkpasswd`, `pass`, `password`): bcrypt a password for the
`users` block of a server configuration, as natscli does.

The password comes from `-p/--pass` (or $PASSWORD), `-g/--generate` (22 random characters,
printed first), or two prompts on a terminal. It must be at least 22 characters long; the cost
(`-c/--cost`, default 11) is bcrypt's 4..31. Output: the hash alone, or with --generate the
lines `Generated password: ...` and `       bcrypt hash: ...`.
"""

from __future__ import annotations

import getpass
import secrets
import string

import click

from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import out
from pynats.cli.ui.prompt import NO_TERMINAL, can_prompt

BCRYPT_MIN_COST = 4
BCRYPT_MAX_COST = 31
DEFAULT_COST = 11
MIN_PASSWORD_LENGTH = 22
GENERATED_ALPHABET = string.ascii_letters + string.digits + "!#%&()*+,-.:;<=>?@[]^_{|}~"


def register(server: click.Group) -> None:
    @server.command(
        "passwd",
        aliases=["mkpasswd", "pass", "password"],
        help="Creates encrypted passwords for use in NATS Server",
    )
    @click.option(
        "-p",
        "--pass",
        "password",
        default="",
        envvar="PASSWORD",
        help="The password to encrypt (PASSWORD)",
    )
    @click.option(
        "-c",
        "--cost",
        default=DEFAULT_COST,
        type=click.IntRange(min=0),
        help="The cost to use in the bcrypt argument",
    )
    @click.option(
        "-g", "--generate", is_flag=True, help="Generates a secure passphrase and encrypt it"
    )
    def passwd(password: str, cost: int, generate: bool) -> None:
        if not BCRYPT_MIN_COST <= cost <= BCRYPT_MAX_COST:
            raise CliError(f"bcrypt cost should be between {BCRYPT_MIN_COST} and {BCRYPT_MAX_COST}")
        if not password and generate:
            password = "".join(
                secrets.choice(GENERATED_ALPHABET) for _ in range(MIN_PASSWORD_LENGTH)
            )
            out(f"Generated password: {password}")
        elif not password:
            password = ask_password()
        if len(password) < MIN_PASSWORD_LENGTH:
            raise CliError(f"password should be at least {MIN_PASSWORD_LENGTH} characters long")
        hashed = bcrypt_hash(password, cost)
        out(f"       bcrypt hash: {hashed}" if generate else hashed)


def bcrypt_hash(password: str, cost: int) -> str:
    """A `$2a$` hash as Go's bcrypt writes it (nats-server accepts `$2a$`, `$2b$`, `$2y$`)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost, prefix=b"2a"))
    return hashed.decode()


def ask_password() -> str:
    if not can_prompt():
        raise CliError(f"could not read password: {NO_TERMINAL}")
    first = getpass.getpass("? Enter password ")
    out()
    second = getpass.getpass("? Reenter password ")
    out()
    if first != second:
        raise CliError(f"passwords do not match ({first} != {second})")
    return first
