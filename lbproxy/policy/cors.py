# -*- test-case-name: tests.test_cors -*-
"""
Cross-origin resource sharing per route, following the CORS protocol of
the Fetch standard (U{https://fetch.spec.whatwg.org/#http-cors-protocol}).

Pure: no Twisted, no I/O.  Header names and values are bytes.

Preflights (C{OPTIONS} with C{Origin} and C{Access-Control-Request-Method})
are answered by the proxy without a backend:

  - allowed origin, method and headers: C{204} with
    C{Access-Control-Allow-Origin} (the origin, or C{*} for a wildcard
    policy without credentials), C{-Allow-Methods}, C{-Allow-Headers},
    C{-Max-Age} and, with credentials, C{-Allow-Credentials: true};
  - anything else: C{403} without any C{Access-Control-*} header, which is
    what the Fetch standard suggests ("the 403 status can be used, coupled
    with omitting the relevant headers", under "HTTP responses" of the CORS
    protocol, U{https://fetch.spec.whatwg.org/#http-responses}): the browser
    fails the preflight, and a person looking at the response sees why.

Both carry C{Vary: Origin, Access-Control-Request-Method,
Access-Control-Request-Headers}, since the answer depends on them.

Actual requests are forwarded; L{CorsPolicy.responseHeaders} gives the
headers to add to the backend's response.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

from lbproxy.wire.http1 import is_token

__all__ = ["CORS_HEADERS", "CorsPolicy", "SAFELISTED_METHODS"]

Header = Tuple[bytes, bytes]

#: Response headers that are the policy's own on a CORS route: a backend's
#: are dropped by L{CorsPolicy.applyResponse}.
CORS_HEADERS = frozenset(
    [
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-allow-methods",
        b"access-control-allow-headers",
        b"access-control-expose-headers",
        b"access-control-max-age",
    ]
)

#: Methods a browser sends cross-origin without a preflight.
SAFELISTED_METHODS = (b"GET", b"HEAD", b"POST")

_PREFLIGHT_VARY = (
    b"Vary",
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
)
_VARY_ORIGIN = (b"Vary", b"Origin")


def _encode(items: Iterable[str]) -> Tuple[bytes, ...]:
    return tuple(item.encode("ascii") for item in items)


class CorsPolicy:
    """
    The CORS rules of one route.

    @ivar origins: Allowed origins, exact (C{b"https://app.example"}:
        scheme, host and a port other than the scheme's default, lower
        case, as browsers send them), or C{(b"*",)} for any origin.
    @ivar methods: Methods a preflight may ask for, or C{(b"*",)} for any.
    @ivar headers: Request headers a preflight may ask for (compared
        case-insensitively), or C{(b"*",)} for any but C{Authorization},
        which must be listed by name (as with Fetch's own wildcard).
    @ivar credentials: Whether credentialed requests (cookies, HTTP
        authentication) may be shared.
    @ivar maxAge: Seconds a browser may cache a preflight's answer.
    @ivar exposeHeaders: Response headers scripts may read besides the
        safelisted ones.
    """

    def __init__(
        self,
        origins: Sequence[str],
        methods: Sequence[str] = ("GET", "HEAD", "POST"),
        headers: Sequence[str] = (),
        credentials: bool = False,
        maxAge: int = 600,
        exposeHeaders: Sequence[str] = (),
    ) -> None:
        """
        @raise ValueError: For C{"*"} among other origins, or C{"*"} with
            C{credentials} (Fetch never shares a credentialed response with
            a wildcard).
        """
        if not origins:
            raise ValueError("at least one origin is required")
        if "*" in origins and len(origins) > 1:
            raise ValueError('"*" cannot be combined with other origins')
        self.wildcard = origins[0] == "*"
        if self.wildcard and credentials:
            raise ValueError('origin "*" is not allowed with credentials')
        self.origins = _encode(origins)
        self.methods = _encode(methods)
        self.headers = _encode(headers)
        self.credentials = credentials
        self.maxAge = maxAge
        self.exposeHeaders = _encode(exposeHeaders)

        self._origins = frozenset(self.origins)
        self._anyMethod = b"*" in self.methods
        self._methods = frozenset(self.methods)
        self._anyHeader = b"*" in self.headers
        self._headers = frozenset(h.lower() for h in self.headers)

        common: List[Header] = []
        if credentials:
            common.append((b"Access-Control-Allow-Credentials", b"true"))
        self._preflightCommon: List[Header] = list(common)
        if not self._anyMethod:
            self._preflightCommon.append(
                (b"Access-Control-Allow-Methods", b", ".join(self.methods))
            )
        if self.headers and not self._anyHeader:
            self._preflightCommon.append(
                (b"Access-Control-Allow-Headers", b", ".join(self.headers))
            )
        self._preflightCommon.append((b"Access-Control-Max-Age", str(maxAge).encode()))
        self._preflightCommon.append(_PREFLIGHT_VARY)

        self._responseCommon = list(common)
        if self.exposeHeaders:
            self._responseCommon.append(
                (b"Access-Control-Expose-Headers", b", ".join(self.exposeHeaders))
            )
        self._wildcardResponse: List[Header] = [(b"Access-Control-Allow-Origin", b"*")]
        self._wildcardResponse.extend(self._responseCommon)

    @staticmethod
    def isPreflight(method: bytes, headers: Iterable[Header]) -> bool:
        """
        Whether a request is a CORS preflight: C{OPTIONS} with both
        C{Origin} and C{Access-Control-Request-Method}.  Any other
        C{OPTIONS} request is an ordinary one, for the backend.

        @param method: The request method.
        @param headers: The request's C{(name, value)} pairs.
        """
        if method != b"OPTIONS":
            return False
        origin = requested = False
        for name, _ in headers:
            lower = name.lower()
            if lower == b"origin":
                origin = True
            elif lower == b"access-control-request-method":
                requested = True
        return origin and requested

    def allowsOrigin(self, origin: Optional[bytes]) -> bool:
        """
        Whether C{origin} (an C{Origin} header value) may share responses.
        """
        if origin is None:
            return False
        return self.wildcard or origin in self._origins

    def preflight(
        self, origin: bytes, requestMethod: bytes, requestHeaders: Optional[bytes]
    ) -> Tuple[int, List[Header]]:
        """
        Answer a preflight.

        @param origin: The C{Origin} value.
        @param requestMethod: The C{Access-Control-Request-Method} value.
        @param requestHeaders: The C{Access-Control-Request-Headers} value
            (several joined with C{b","}), or L{None}.
        @return: C{(status, headers)}: C{204} and the CORS headers when
            allowed, else C{403} and only C{Vary} (see the module
            docstring).  The caller adds C{Content-Length: 0}.
        """
        denied = (403, [_PREFLIGHT_VARY])
        if not self.allowsOrigin(origin):
            return denied
        method = requestMethod.strip(b" \t")
        if not is_token(method):
            return denied
        if not self._anyMethod and method not in self._methods:
            return denied
        echoed: List[bytes] = []
        if requestHeaders:
            for item in requestHeaders.split(b","):
                name = item.strip(b" \t")
                if not name:
                    continue
                if not is_token(name):
                    return denied
                lower = name.lower()
                if lower in self._headers:
                    pass
                elif self._anyHeader and lower != b"authorization":
                    echoed.append(lower)
                else:
                    return denied
        headers: List[Header] = [
            (b"Access-Control-Allow-Origin", b"*" if self.wildcard else origin)
        ]
        if self._anyMethod:
            headers.append((b"Access-Control-Allow-Methods", method))
        if self._anyHeader:
            listed = [h for h in self.headers if h != b"*"] + echoed
            if listed:
                headers.append((b"Access-Control-Allow-Headers", b", ".join(listed)))
        headers.extend(self._preflightCommon)
        return 204, headers

    def responseHeaders(self, origin: Optional[bytes]) -> List[Header]:
        """
        The CORS headers for the response to an actual (not preflight)
        request.

        @param origin: The request's C{Origin} value, or L{None}.
        @return: For an allowed origin, C{Access-Control-Allow-Origin} (the
            origin itself, or C{*} for a wildcard policy),
            C{-Allow-Credentials} and C{-Expose-Headers} as configured, and
            C{Vary: Origin} unless the policy is a wildcard (the answer
            then does not depend on the origin).  Otherwise only C{Vary:
            Origin} (or nothing, for a wildcard policy): the browser then
            refuses to share the response.
        """
        if self.wildcard:
            return list(self._wildcardResponse)
        if origin is None or origin not in self._origins:
            return [_VARY_ORIGIN]
        headers = [(b"Access-Control-Allow-Origin", origin)]
        headers.extend(self._responseCommon)
        headers.append(_VARY_ORIGIN)
        return headers

    def applyResponse(
        self, pairs: Iterable[Header], origin: Optional[bytes]
    ) -> List[Header]:
        """
        The backend's response headers with the policy's CORS headers: any
        C{Access-Control-*} header of L{CORS_HEADERS} the backend sent is
        dropped, L{responseHeaders} are appended, and C{Vary: Origin} is
        left out when a C{Vary} header already names C{Origin} or C{*}.

        @param pairs: The response's C{(name, value)} pairs.
        @param origin: The request's C{Origin} value, or L{None}.
        """
        kept: List[Header] = []
        varied = False
        for name, value in pairs:
            lower = name.lower()
            if lower in CORS_HEADERS:
                continue
            if lower == b"vary" and not varied:
                for item in value.split(b","):
                    item = item.strip(b" \t").lower()
                    if item == b"origin" or item == b"*":
                        varied = True
            kept.append((name, value))
        for header in self.responseHeaders(origin):
            if varied and header[0] == b"Vary":
                continue
            kept.append(header)
        return kept
