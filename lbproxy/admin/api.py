# -*- test-case-name: tests.test_admin -*-
"""
C{/api}: the admin API.

  - C{GET /api/status}: the proxy's state (L{status_snapshot}); no token
    unless C{[admin] protect_reads}.
  - C{GET /api/pools/{pool}/targets} and C{.../targets/{address}}: one
    pool's targets, one target; no token either.
  - With C{Authorization: Bearer <token>}:
      - C{POST /api/reload}: reload the configuration file;
      - C{POST /api/pools/{pool}/targets} C{{"address": "host:port", "weight": N}};
      - C{DELETE /api/pools/{pool}/targets/{address}};
      - C{POST /api/pools/{pool}/targets/{address}/drain} and C{.../enable};
      - C{PUT /api/pools/{pool}/targets/{address}} C{{"weight": N}};
      - C{POST /api/cache/purge} C{{"prefix": "https://host/path"}}: drop
        the cached responses under a URL prefix.

Errors are JSON (C{{"error": ..., "field": ...}}): 400 for a bad body
(naming the field), 401 without the right token, 404 for an unknown
path, pool or target, 405 for a method the path does not take (with
C{Allow}).  The token is checked before the body is read: a caller
without it learns nothing about pools and targets but that they need it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Tuple
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from lbproxy.admin import changes
from lbproxy.admin.auth import may_change, may_read
from lbproxy.admin.jsonapi import ApiError, answer, error, read_json
from lbproxy.admin.status import status_snapshot, target_status

__all__ = ["ApiResource"]

log = Logger()

#: What a handler returns: a status and a JSON body, or a Deferred of that.
Result = Tuple[int, Any]


def _segments(request) -> List[str]:
    # postpath is what follows /api, undecoded; a trailing slash is ignored.
    parts = [unquote(part.decode("utf-8", "replace")) for part in request.postpath]
    while parts and parts[-1] == "":
        parts.pop()
    return parts


class ApiResource(Resource):
    """
    C{/api}, and below it the children in C{extra}.
    """

    def __init__(self, core, reactor, extra: Mapping[bytes, Callable] = {}) -> None:
        Resource.__init__(self)
        self._core = core
        self._reactor = reactor
        for segment, factory in extra.items():
            self.putChild(segment, factory(core, reactor))

    def getChild(self, path, request):
        # Everything not in the extra children is this resource's: give
        # back the segment Twisted took, and answer here.
        request.postpath.insert(0, path)
        request.prepath.pop()
        return _Call(self)

    def render(self, request):
        return error(request, ApiError(404, "no such API path"))

    # -- routing ---------------------------------------------------------------

    def route(self, segments: List[str]) -> Dict[str, Callable]:
        """
        The handlers of a path by method (C{GET} reads, the others change
        something).

        @raise ApiError: 404 for an unknown path.
        """
        n = len(segments)
        if segments == ["status"]:
            return {"GET": lambda r: (200, self.status())}
        if segments == ["reload"]:
            return {"POST": lambda r: self.reload()}
        if segments == ["cache", "purge"]:
            return {"POST": lambda r: (200, self.purge(read_json(r, ("prefix",), ("prefix",))))}
        if n >= 3 and segments[0] == "pools" and segments[2] == "targets":
            pool = segments[1]
            core = self._core
            if n == 3:
                return {
                    "GET": lambda r: (200, self.targets(pool)),
                    "POST": lambda r: (201, changes.add_target(
                        core, pool, read_json(r, ("address", "weight"), ("address",)))),
                }
            address = segments[3]
            if n == 4:
                return {
                    "GET": lambda r: (200, self.target(pool, address)),
                    "PUT": lambda r: (200, changes.set_weight(
                        core, pool, address, read_json(r, ("weight",), ("weight",)))),
                    "DELETE": lambda r: (200, changes.remove_target(core, pool, address)),
                }
            if n == 5 and segments[4] == "drain":
                return {"POST": lambda r: (200, changes.drain_target(core, pool, address))}
            if n == 5 and segments[4] == "enable":
                return {"POST": lambda r: (200, changes.enable_target(core, pool, address))}
        raise ApiError(404, "no such API path")

    # -- reads -----------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        return status_snapshot(self._core, self._reactor.seconds())

    def targets(self, pool: str) -> Dict[str, Any]:
        return self.status()["pools"].get(pool) or _no_pool(pool)

    def target(self, pool: str, address: str) -> Dict[str, Any]:
        runtime_pool = self._core.runtime.pools.get(pool)
        if runtime_pool is None:
            _no_pool(pool)
        marks = self._core.overrides.marks(pool)
        for member in runtime_pool.members:
            if member.target.address == address:
                return target_status(member, self._reactor.seconds(), marks.get(address))
        raise ApiError(404, f"pool {pool!r} has no target {address!r}", "address")

    def reload(self) -> Deferred:
        reloader = self._core.reloader
        if reloader is None:
            raise ApiError(503, "reload is not available in this process")

        def done(outcome: Dict[str, Any]) -> Result:
            return (200 if outcome.get("applied") else 422), outcome

        return reloader("admin API").addCallback(done)


    def purge(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """
        Remove the cached responses whose URL (C{scheme://host/target})
        starts with C{body["prefix"]}.
        """
        prefix = body["prefix"]
        if not isinstance(prefix, str) or not prefix.startswith(("http://", "https://")):
            raise ApiError(
                400, 'expected a URL prefix such as "https://www.example.com/static/"', "prefix"
            )
        cache = self._core.services.cache
        if cache is None:
            raise ApiError(404, "no route has a cache", "prefix")
        # Keys have the scheme and host in lower case (cache.key).
        scheme, _, rest = prefix.partition("://")
        host, slash, target = rest.partition("/")
        key = (scheme.lower() + "://" + host.lower() + slash + target).encode("utf-8")
        removed = cache.purge(key)
        log.info("admin API: cache: purged {removed} entries under {prefix}",
                 removed=removed, prefix=prefix)
        return {"prefix": prefix, "purged": removed}


def _no_pool(pool: str):
    raise ApiError(404, f"no pool named {pool!r}", "pool")


class _Call(Resource):
    """
    One API request: route it, check method and token, run its handler.
    """

    isLeaf = True

    def __init__(self, api: ApiResource) -> None:
        Resource.__init__(self)
        self._api = api

    def render(self, request):
        api = self._api
        try:
            handlers = api.route(_segments(request))
            method = request.method.decode("ascii", "replace")
            if method == "HEAD" and "GET" in handlers:
                method = "GET"
            handler = handlers.get(method)
            if handler is None:
                allow = ", ".join(sorted(handlers))
                raise ApiError(405, f"method {method} not allowed (allowed: {allow})",
                               headers=[(b"Allow", allow.encode("ascii"))])
            # Reads are open unless [admin] protect_reads; changes need the
            # token.
            allowed = may_read if method == "GET" else may_change
            if not allowed(request, api._core.config):
                raise ApiError(401, "a valid bearer token is required",
                               headers=[(b"WWW-Authenticate", b'Bearer realm="lbproxy"')])
            result = handler(request)
        except ApiError as e:
            if e.code == 401:
                log.warn("admin API: {method} {path}: refused (no valid token) from {peer}",
                         method=request.method.decode("ascii", "replace"),
                         path=request.uri.decode("utf-8", "replace"),
                         peer=getattr(request.getClientAddress(), "host", "-"))
            return error(request, e)
        if isinstance(result, Deferred):
            result.addCallback(self._finish, request)
            result.addErrback(self._failed, request)
            return NOT_DONE_YET
        code, body = result
        return answer(request, code, body)

    def _finish(self, result: Result, request) -> None:
        code, body = result
        if not request._disconnected:
            request.write(answer(request, code, body))
            request.finish()

    def _failed(self, failure, request) -> None:
        log.failure("admin API: {path} failed", failure,
                    path=request.uri.decode("utf-8", "replace"))
        if not request._disconnected:
            request.write(error(request, ApiError(500, "internal error")))
            request.finish()

