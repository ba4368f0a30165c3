"""
The benchmark harness: lbproxy against nginx, HAProxy and Twisted's stock
reverse proxy, measured with wrk on 127.0.0.1.

Not a test suite: nothing here runs in CI.  C{bash bench/run} installs
what it needs and runs L{bench.cli}; C{docs/performance.md} describes a
run and its results.

    - L{bench.cli}: the command line
    - L{bench.runner}: one run, from start-up to report
    - L{bench.plan}: scenarios, subjects and the interleaved schedule
    - L{bench.servers}: configuration files of the servers (pure)
    - L{bench.harness}: processes, ports, certificates, CPU time
    - L{bench.wrk}: wrk's command line and output parsing (pure)
    - L{bench.report}: medians, ratios, tables, chart
    - L{bench.facts}: machine facts and versions
    - C{bench/stock_proxy.py}: Twisted's C{ReverseProxyResource}, the baseline
"""
