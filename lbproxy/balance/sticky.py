# -*- test-case-name: tests.test_sticky -*-
"""
Sticky sessions (a pool's C{sticky = { cookie, ttl, secret }}): a signed
cookie names the target a client was sent to, and later requests that
carry it go to the same target while it is usable.

The cookie's value is C{TOKEN.ISSUED.MAC}: C{TOKEN} is a keyed digest of
the target's URL (opaque: it does not reveal the address, and it is the
same in every process with the same secret and after any reload or
change of weights), C{ISSUED} the time it was issued (base 36 seconds)
and C{MAC} an HMAC-SHA256 of both under the secret.  A forged, altered or
expired cookie, or one naming a target the pool no longer has, is
ignored: the pool's own strategy chooses, and the answer sets a new
cookie.

L{Sticky} wraps the pool's strategy (only pools with C{sticky} pay for
it); the route's L{lbproxy.stages.sticky.StickyStage} puts a
L{StickyMark} on each request's context and writes the cookie.

Pure: no Twisted, no I/O, no clock (the time is passed in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Collection, Dict, Optional, Tuple

from zope.interface import implementer

from lbproxy.balance.context import read_cookie
from lbproxy.balance.strategy import IStrategy

if TYPE_CHECKING:
    from lbproxy.balance.members import Member

__all__ = ["Sticky", "StickyCodec", "StickyMark"]

#: Seconds a cookie's issue time may be ahead of this process's clock
#: (another instance's clock).
CLOCK_SKEW = 60


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class StickyCodec:
    """
    Makes and reads one pool's sticky cookies.

    @ivar name: the cookie's name (bytes).
    @ivar ttl: seconds a cookie is valid.
    """

    def __init__(
        self,
        members,
        name: str,
        ttl: int,
        secret: bytes,
        secure: bool = False,
        httpOnly: bool = True,
    ) -> None:
        """
        @param members: the pool's members.
        @param secret: the signing key.
        """
        self.name = name.encode("ascii")
        self.ttl = ttl
        self._secret = secret
        self._byToken: Dict[bytes, Member] = {}
        self._tokens: Dict[Member, bytes] = {}
        for member in members:
            token = self.token(member.target.url)
            self._byToken[token] = member
            self._tokens[member] = token
        self._attributes = b"; Max-Age=%d; Path=/%s%s; SameSite=Lax" % (
            ttl,
            b"; Secure" if secure else b"",
            b"; HttpOnly" if httpOnly else b"",
        )

    def token(self, url: str) -> bytes:
        """
        The opaque name of the target at C{url}.
        """
        digest = hmac.new(self._secret, b"target:" + url.encode("utf-8"), hashlib.sha256)
        return _b64(digest.digest()[:9])

    def _mac(self, signed: bytes) -> bytes:
        return _b64(hmac.new(self._secret, signed, hashlib.sha256).digest()[:12])

    def value(self, member: Member, now: float) -> bytes:
        """
        The cookie value pinning a client to C{member}, issued at C{now}.
        """
        signed = self._tokens[member] + b"." + _base36(int(now))
        return signed + b"." + self._mac(signed)

    def setCookie(self, member: Member, now: float) -> bytes:
        """
        The C{Set-Cookie} header value for C{member}.
        """
        return self.name + b"=" + self.value(member, now) + self._attributes

    def read(self, value: Optional[bytes], now: float) -> Tuple[Optional[Member], bool]:
        """
        The member a cookie value names, and whether it is fresh (issued
        less than half its lifetime ago: no need to set it again).

        @return: C{(None, False)} for no cookie, a forged, altered or
            expired one, or one naming a target this pool does not have.
        """
        if not value or value.count(b".") != 2:
            return None, False
        token, issued, mac = value.split(b".")
        if not hmac.compare_digest(mac, self._mac(token + b"." + issued)):
            return None, False
        try:
            when = int(issued, 36)
        except ValueError:
            return None, False
        age = now - when
        if age >= self.ttl or age < -CLOCK_SKEW:
            return None, False
        return self._byToken.get(token), age < self.ttl / 2


def _base36(number: int) -> bytes:
    digits = b"0123456789abcdefghijklmnopqrstuvwxyz"
    out = bytearray()
    while True:
        number, rest = divmod(number, 36)
        out.append(digits[rest])
        if not number:
            return bytes(reversed(out))


class StickyMark:
    """
    One request's sticky session, on its context (C{context.sticky}).

    @ivar codec: the L{StickyCodec} of the pool that read the cookie, once
        a pool did.
    @ivar pinned: the member the request's cookie names, or L{None}.
    @ivar fresh: whether that cookie needs no renewing.
    @ivar chosen: the member chosen last, or L{None}.
    @ivar now: when it was chosen.
    """

    __slots__ = ("codec", "pinned", "fresh", "chosen", "now")

    def __init__(self) -> None:
        self.codec: Optional[StickyCodec] = None
        self.pinned: Optional[Member] = None
        self.fresh = False
        self.chosen: Optional[Member] = None
        self.now = 0.0

    def setCookie(self) -> Optional[bytes]:
        """
        The C{Set-Cookie} value the answer needs, or L{None}: none when
        the request went where its fresh cookie said, or nowhere.
        """
        chosen = self.chosen
        if chosen is None or self.codec is None:
            return None
        if chosen is self.pinned and self.fresh:
            return None
        return self.codec.setCookie(chosen, self.now)


@implementer(IStrategy)
class Sticky:
    """
    A pool's strategy with sticky sessions: the member a request's valid
    cookie names when it is up and not excluded (even with weight 0, the
    way to retire a target without breaking sessions), else the wrapped
    strategy's choice.  A pinned member that is only full
    (C{max_inflight}) makes the request wait for room rather than move.
    """

    def __init__(self, inner: IStrategy, codec: StickyCodec, limit: int = 0) -> None:
        self.inner = inner
        self.codec = codec
        self._limit = limit

    def pick(self, exclude: Collection[Member], now: float, context=None) -> Optional[Member]:
        mark = getattr(context, "sticky", None)
        if mark is None:
            return self.inner.pick(exclude, now, context)
        if mark.codec is not self.codec:
            mark.codec = self.codec
            mark.pinned, mark.fresh = self.codec.read(
                read_cookie(context.request.requestHeaders, self.codec.name), now
            )
        pinned = mark.pinned
        chosen = None
        if pinned is not None and pinned.state.up and not (exclude and pinned in exclude):
            if self._limit and pinned.state.inflight >= self._limit:
                mark.chosen = None
                return None
            chosen = pinned
        else:
            chosen = self.inner.pick(exclude, now, context)
        mark.chosen = chosen
        mark.now = now
        return chosen
