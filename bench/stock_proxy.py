"""
Twisted's stock reverse proxy, the baseline lbproxy is compared with.

    python bench/stock_proxy.py --backend-port 8081 --listen tcp:8000:interface=127.0.0.1

A C{twisted.web.proxy.ReverseProxyResource} for the whole site, served by
a plain C{twisted.web.server.Site} on each C{--listen} endpoint (an
C{ssl:} endpoint terminates TLS).  Nothing else: the Site's access log is
switched off, as lbproxy's is in the main measurement.  Stops on SIGTERM.
"""

import argparse

from twisted.internet import endpoints, reactor
from twisted.web import proxy, server


class QuietSite(server.Site):
    """
    A Site that writes no access log.
    """

    def log(self, request):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--backend-host", default="127.0.0.1")
    parser.add_argument("--backend-port", type=int, required=True)
    parser.add_argument("--listen", action="append", required=True, help="server endpoint string")
    args = parser.parse_args()
    resource = proxy.ReverseProxyResource(args.backend_host, args.backend_port, b"")
    site = QuietSite(resource)
    for description in args.listen:
        d = endpoints.serverFromString(reactor, description).listen(site)
        d.addErrback(failed, description)
    reactor.run()


def failed(failure, description):
    print("stock_proxy: cannot listen on %s: %s" % (description, failure.getErrorMessage()))
    reactor.stop()


if __name__ == "__main__":
    main()
