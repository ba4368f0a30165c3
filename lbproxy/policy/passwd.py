# -*- test-case-name: tests.test_access -*-
"""
Password hashes for basic authentication (C{access.basic_auth.users}).

A hash is one line in a self-describing format::

    pbkdf2_sha256$<iterations>$<salt>$<hash>

C{<iterations>} is a decimal number (no sign, no leading zero), C{<salt>}
and C{<hash>} are standard base64 (RFC 4648 section 4, with C{"="}
padding) of the salt (at least 8 bytes; 16 random bytes are generated) and
of the derived key (16 to 64 bytes; 32 are generated), computed as
C{hashlib.pbkdf2_hmac("sha256", password, salt, iterations, len(hash))}.
The password is the UTF-8 encoding of its Unicode Normalization Form C, as
RFC 7617 section 2.1 asks for credentials sent with C{charset="UTF-8"}.

The first field names the algorithm, so that another one (say
C{scrypt$...}) can be added later without ambiguity.

Run C{python -m lbproxy.policy.passwd} to hash a password: it prompts for it (or
reads one line from standard input when that is not a terminal) and prints
the line to paste into the configuration.

Everything but L{main} is pure.  The KDF is deliberately slow: verifying
costs one KDF (about 25 ms at the default 100,000 iterations), so callers
cache successful verifications (see L{lbproxy.policy.access.BasicAuth}).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import os
import sys
import unicodedata
from dataclasses import dataclass
from typing import IO, List, Optional, Sequence

__all__ = [
    "ALGORITHM",
    "DEFAULT_ITERATIONS",
    "MAX_ITERATIONS",
    "MIN_ITERATIONS",
    "PasswordHash",
    "hash_password",
    "main",
    "parse_hash",
    "verify_password",
]

#: The algorithm name, the first field of a hash line.
ALGORITHM = "pbkdf2_sha256"

#: Iterations used by L{hash_password} unless told otherwise.  A trade-off:
#: verification runs on the event loop, so every wrong password a client
#: sends costs this much CPU there (about 25 ms).
DEFAULT_ITERATIONS = 100_000

#: The fewest iterations a configured hash may use.
MIN_ITERATIONS = 10_000

#: The most iterations a configured hash may use: more would stall the
#: event loop for seconds per verification.
MAX_ITERATIONS = 2_000_000

_MIN_SALT = 8
_MAX_SALT = 64
_MIN_KEY = 16
_MAX_KEY = 64
_SALT_BYTES = 16
_KEY_BYTES = 32


@dataclass(frozen=True)
class PasswordHash:
    """
    A parsed hash line.

    @ivar iterations: PBKDF2 iterations.
    @ivar salt: The salt.
    @ivar key: The derived key; its length is the one derived again when
        verifying.
    """

    iterations: int
    salt: bytes
    key: bytes

    def format(self) -> str:
        """
        The hash line, as L{parse_hash} reads it.
        """
        return "$".join(
            [
                ALGORITHM,
                str(self.iterations),
                base64.b64encode(self.salt).decode("ascii"),
                base64.b64encode(self.key).decode("ascii"),
            ]
        )


def _password_bytes(password: str) -> bytes:
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _b64(text: str, what: str) -> bytes:
    if not text:
        raise ValueError(f"empty {what}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not valid base64") from None


def parse_hash(text: str) -> PasswordHash:
    """
    Parse and check a hash line.

    @param text: C{"pbkdf2_sha256$ITERATIONS$SALT$HASH"}.
    @return: The parsed hash.
    @raise ValueError: With a reason for an operator, when C{text} is not a
        valid hash line (unknown algorithm, iterations out of
        L{MIN_ITERATIONS}..L{MAX_ITERATIONS}, bad base64, salt or hash of
        a wrong length).
    """
    fields = text.split("$")
    if fields[0] != ALGORITHM:
        raise ValueError(
            f'expected a password hash "{ALGORITHM}$ITERATIONS$SALT$HASH" '
            "(make one with: python -m lbproxy.policy.passwd)"
        )
    if len(fields) != 4:
        raise ValueError(
            f'expected 4 "$"-separated fields ({ALGORITHM}$ITERATIONS$SALT$HASH), '
            f"got {len(fields)}"
        )
    count = fields[1]
    if not (count.isascii() and count.isdigit()) or count.startswith("0"):
        raise ValueError(f"iterations must be a decimal number, got {count!r}")
    iterations = int(count)
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(
            f"iterations must be from {MIN_ITERATIONS} to {MAX_ITERATIONS}, "
            f"got {iterations}"
        )
    salt = _b64(fields[2], "salt")
    if not _MIN_SALT <= len(salt) <= _MAX_SALT:
        raise ValueError(
            f"salt must be {_MIN_SALT} to {_MAX_SALT} bytes, got {len(salt)}"
        )
    key = _b64(fields[3], "hash")
    if not _MIN_KEY <= len(key) <= _MAX_KEY:
        raise ValueError(f"hash must be {_MIN_KEY} to {_MAX_KEY} bytes, got {len(key)}")
    return PasswordHash(iterations=iterations, salt=salt, key=key)


def hash_password(
    password: str, iterations: int = DEFAULT_ITERATIONS, salt: Optional[bytes] = None
) -> str:
    """
    Hash a password for the configuration.

    @param password: The password.
    @param iterations: PBKDF2 iterations.
    @param salt: The salt; 16 bytes from C{os.urandom} when not given.
    @return: The hash line.
    """
    if salt is None:
        salt = os.urandom(_SALT_BYTES)
    key = hashlib.pbkdf2_hmac(
        "sha256", _password_bytes(password), salt, iterations, _KEY_BYTES
    )
    return PasswordHash(iterations=iterations, salt=salt, key=key).format()


def verify_password(password: str, stored: PasswordHash) -> bool:
    """
    Check a password against a hash, comparing in constant time.

    @param password: The password as sent (normalized to NFC here).
    @param stored: The parsed hash line.
    """
    key = hashlib.pbkdf2_hmac(
        "sha256", _password_bytes(password), stored.salt, stored.iterations, len(stored.key)
    )
    return hmac.compare_digest(key, stored.key)


_USAGE = """\
usage: python -m lbproxy.policy.passwd [--iterations N]

Read a password (prompted for twice on a terminal, else one line from
standard input) and print its hash line for access.basic_auth.users.
"""


def main(
    argv: Optional[Sequence[str]] = None,
    stdin: Optional[IO[str]] = None,
    stdout: Optional[IO[str]] = None,
    stderr: Optional[IO[str]] = None,
    prompt=getpass.getpass,
) -> int:
    """
    The C{python -m lbproxy.policy.passwd} command.

    @param argv: The arguments (without the program name); C{sys.argv[1:]}
        by default.
    @param stdin: Where a password is read from when it is not a terminal.
    @param prompt: Reads a password from the terminal without echo.
    @return: The exit status.
    """
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr

    iterations = DEFAULT_ITERATIONS
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            stdout.write(_USAGE)
            return 0
        if arg.startswith("--iterations="):
            value: Optional[str] = arg.split("=", 1)[1]
        elif arg == "--iterations":
            value = args.pop(0) if args else None
        else:
            stderr.write(f"unknown argument {arg!r}\n{_USAGE}")
            return 2
        if value is None or not (value.isascii() and value.isdigit()):
            stderr.write(f"--iterations needs a number\n{_USAGE}")
            return 2
        iterations = int(value)
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            stderr.write(
                f"--iterations must be from {MIN_ITERATIONS} to {MAX_ITERATIONS}\n"
            )
            return 2

    if stdin.isatty():
        password = prompt("Password: ")
        if prompt("Again: ") != password:
            stderr.write("the passwords differ\n")
            return 1
    else:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if password.endswith("\r"):
            password = password[:-1]
    if not password:
        stderr.write("empty password\n")
        return 1
    stdout.write(hash_password(password, iterations) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
