"""
Tests for the benchmark harness's pure parts (L{bench}): wrk's output,
the schedule, the medians, ratios and tables, the configurations and the
command line.  Nothing here starts a process or runs a benchmark.
"""

from __future__ import annotations

import io
import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from bench.cli import FULL, QUICK, default_baseline_label, git_describe, settings_from
from bench.facts import from_tree, parse_probe
from bench.plan import (
    LARGE_SIZE,
    Scenario,
    Subject,
    baseline_subject,
    default_scenarios,
    estimate_seconds,
    interleave,
)
from bench.report import (
    Measurement,
    RoundRatio,
    baseline_rows,
    markdown_report,
    ratio,
    ratio_columns,
    ratio_rows,
    round_ratios,
    summarize,
)
from bench.servers import (
    TLSFiles,
    haproxy_config,
    lbproxy_config,
    nginx_backend_config,
    nginx_proxy_config,
    stock_proxy_command,
)
from bench.settings import REPO_ROOT, Settings
from bench.subjects import Lineup
from bench.wrk import (
    WrkOutputError,
    parse_count,
    parse_size,
    parse_time,
    parse_wrk,
    wrk_command,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


FAST = """\
Running 10s test @ http://127.0.0.1:8080/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.53us  305.21us  12.04ms   91.37%
    Req/Sec    61.04k     2.14k   64.21k    80.00%
  Latency Distribution
     50%  762.00us
     75%  850.00us
     90%    1.01ms
     99%    1.73ms
  607325 requests in 10.00s, 93.25MB read
Requests/sec:  60717.86
Transfer/sec:      9.32MB
"""

SLOW_WITH_ERRORS = """\
Running 2s test @ http://127.0.0.1:8000/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21s   402.11ms   1.99s    70.00%
    Req/Sec    35.00     12.11    60.00     75.00%
  Latency Distribution
     50%    1.20s$
     75%    1.50s$
     90%    1.80s$
     99%    1.99s$
  70 requests in 2.01s, 10.53KB read
  Socket errors: connect 0, read 3, write 0, timeout 12
  Non-2xx or 3xx responses: 5
Requests/sec:     34.83
Transfer/sec:      5.24KB
""".replace("$", " ")  # wrk pads short units with a space

LARGE = """\
Running 1m test @ https://127.0.0.1:8443/1m
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.82ms    3.01ms  40.11ms   88.10%
    Req/Sec   632.10     40.02   700.00     71.00%
  Latency Distribution
     50%   15.10ms
     75%   16.90ms
     90%   19.02ms
     99%   28.33ms
  37926 requests in 1.00m, 37.04GB read
Requests/sec:    632.09
Transfer/sec:    632.13MB
"""

NOTHING = """\
Running 1s test @ http://127.0.0.1:9/small
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 1, read 0, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
"""

NO_LATENCY_FLAG = """\
Running 5s test @ http://127.0.0.1:8080/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  200.00us   5.00ms   90.00%
    Req/Sec    48.20k     1.00k   50.00k    70.00%
  240000 requests in 5.00s, 36.85MB read
Requests/sec:  47999.50
Transfer/sec:      7.37MB
"""


class UnitTests(SynchronousTestCase):
    """
    wrk's number formats.
    """

    def test_times(self) -> None:
        self.assertAlmostEqual(parse_time("762.00us"), 762e-6)
        self.assertAlmostEqual(parse_time("1.73ms"), 1.73e-3)
        self.assertAlmostEqual(parse_time("1.99s"), 1.99)
        self.assertAlmostEqual(parse_time("1.00m"), 60.0)
        self.assertAlmostEqual(parse_time("2.50h"), 9000.0)
        self.assertAlmostEqual(parse_time(" 1.20s "), 1.2)

    def test_counts(self) -> None:
        self.assertAlmostEqual(parse_count("935.00"), 935.0)
        self.assertAlmostEqual(parse_count("61.04k"), 61040.0)
        self.assertAlmostEqual(parse_count("1.20M"), 1.2e6)
        self.assertAlmostEqual(parse_count("3.00G"), 3e9)

    def test_sizes(self) -> None:
        self.assertEqual(parse_size("512.00B"), 512.0)
        self.assertAlmostEqual(parse_size("10.53KB"), 10.53 * 1024)
        self.assertAlmostEqual(parse_size("9.32MB"), 9.32 * 1024**2)
        self.assertAlmostEqual(parse_size("37.04GB"), 37.04 * 1024**3)
        self.assertAlmostEqual(parse_size("1.50TB"), 1.5 * 1024**4)

    def test_malformed(self) -> None:
        for parse, text in (
            (parse_time, "12"),
            (parse_time, "-nan"),
            (parse_time, "3.0ns"),
            (parse_count, "61.04x"),
            (parse_size, "9.32MiB"),
            (parse_size, "100"),
        ):
            self.assertRaises(WrkOutputError, parse, text)


class ParseWrkTests(SynchronousTestCase):
    """
    L{parse_wrk} on whole reports.
    """

    def test_fast(self) -> None:
        result = parse_wrk(FAST)
        self.assertEqual(result.requests, 607325)
        self.assertAlmostEqual(result.duration, 10.0)
        self.assertAlmostEqual(result.bytes_read, 93.25 * 1024**2)
        self.assertAlmostEqual(result.requests_per_sec, 60717.86)
        self.assertAlmostEqual(result.bytes_per_sec, 9.32 * 1024**2)
        self.assertAlmostEqual(result.latency_avg, 812.53e-6)
        self.assertAlmostEqual(result.latency_max, 12.04e-3)
        self.assertEqual(sorted(result.percentiles), [50.0, 75.0, 90.0, 99.0])
        self.assertAlmostEqual(result.percentile(50), 762e-6)
        self.assertAlmostEqual(result.percentile(90), 1.01e-3)
        self.assertAlmostEqual(result.percentile(99), 1.73e-3)
        self.assertEqual((result.socket_errors, result.non_2xx), (0, 0))

    def test_seconds_and_errors(self) -> None:
        result = parse_wrk(SLOW_WITH_ERRORS)
        self.assertEqual(result.requests, 70)
        self.assertAlmostEqual(result.percentile(50), 1.2)
        self.assertAlmostEqual(result.percentile(99), 1.99)
        self.assertAlmostEqual(result.latency_avg, 1.21)
        self.assertEqual(
            (result.connect_errors, result.read_errors, result.write_errors, result.timeouts),
            (0, 3, 0, 12),
        )
        self.assertEqual(result.socket_errors, 15)
        self.assertEqual(result.non_2xx, 5)
        self.assertAlmostEqual(result.bytes_per_sec, 5.24 * 1024)

    def test_minutes_and_gigabytes(self) -> None:
        result = parse_wrk(LARGE)
        self.assertAlmostEqual(result.duration, 60.0)
        self.assertAlmostEqual(result.bytes_read, 37.04 * 1024**3)
        self.assertAlmostEqual(result.bytes_per_sec / 2**20, 632.13)
        self.assertAlmostEqual(result.percentile(99), 28.33e-3)

    def test_no_responses(self) -> None:
        """
        A run that got nothing parses, with zero rates and the connect
        errors; the C{-nan} fields do not break it.
        """
        result = parse_wrk(NOTHING)
        self.assertEqual(result.requests, 0)
        self.assertEqual(result.requests_per_sec, 0.0)
        self.assertEqual(result.bytes_per_sec, 0.0)
        self.assertEqual(result.connect_errors, 1)

    def test_without_latency_flag(self) -> None:
        result = parse_wrk(NO_LATENCY_FLAG)
        self.assertEqual(result.percentiles, {})
        self.assertIsNone(result.percentile(99))
        self.assertAlmostEqual(result.latency_avg, 1.02e-3)
        self.assertAlmostEqual(result.requests_per_sec, 47999.5)

    def test_failure(self) -> None:
        """
        What wrk prints when it cannot connect at all is not a report.
        """
        error = self.assertRaises(
            WrkOutputError, parse_wrk, "unable to connect to 127.0.0.1:1 Connection refused\n"
        )
        self.assertIn("Connection refused", str(error))
        self.assertRaises(WrkOutputError, parse_wrk, "")
        truncated = FAST.split("Requests/sec")[0]
        error = self.assertRaises(WrkOutputError, parse_wrk, truncated)
        self.assertIn("Requests/sec", str(error))

    def test_command(self) -> None:
        self.assertEqual(
            wrk_command("http://127.0.0.1:1/small", 10, 50),
            [
                "wrk",
                "-t1",
                "-c50",
                "-d10s",
                "--timeout=5s",
                "--latency",
                "http://127.0.0.1:1/small",
            ],
        )
        command = wrk_command("https://127.0.0.1:1/1m", 0.2, 10, threads=2, wrk="/usr/bin/wrk")
        self.assertEqual(command[:4], ["/usr/bin/wrk", "-t2", "-c10", "-d1s"])


SMALL = Scenario("http-small", False, "/small", 13, 50)
BIG = Scenario("http-large", False, "/1m", LARGE_SIZE, 10)
SMALL_TLS = Scenario("tls-small", True, "/small", 13, 50)
BIG_TLS = Scenario("tls-large", True, "/1m", LARGE_SIZE, 10)
SUBJECTS = [
    Subject("direct", "backend direct (nginx)", "backend"),
    Subject("nginx", "nginx proxy", "nginx"),
    Subject("twisted", "Twisted ReverseProxyResource", "twisted"),
    Subject("lbproxy", "lbproxy", "lbproxy"),
]


def small(subject: str, rate: float, p99: float, round: int = 1, **kw) -> Measurement:
    return Measurement(
        round,
        subject,
        SMALL.name,
        requests_per_sec=rate,
        mib_per_sec=rate / 1e4,
        p50=p99 / 4,
        p99=p99,
        requests=int(rate),
        **kw,
    )


class PlanTests(SynchronousTestCase):
    """
    Scenarios and the interleaved schedule.
    """

    def test_scenarios(self) -> None:
        scenarios = default_scenarios(50, 10)
        self.assertEqual(
            [s.name for s in scenarios], ["http-small", "http-large", "tls-small", "tls-large"]
        )
        self.assertEqual([s.connections for s in scenarios], [50, 10, 50, 10])
        self.assertEqual([s.scheme for s in scenarios], ["http", "http", "https", "https"])
        self.assertEqual([s.large for s in scenarios], [False, True, False, True])
        self.assertEqual(len(default_scenarios(tls=False)), 2)

    def test_interleave(self) -> None:
        """
        Every round measures every subject in every scenario; the subjects
        of a scenario are adjacent and their order rotates per round.
        """
        order = interleave(["a", "b", "c"], [SMALL, BIG], 3)
        self.assertEqual(len(order), 18)
        self.assertEqual(
            [(r, s.name, n) for r, s, n in order[:6]],
            [
                (1, "http-small", "a"),
                (1, "http-small", "b"),
                (1, "http-small", "c"),
                (1, "http-large", "a"),
                (1, "http-large", "b"),
                (1, "http-large", "c"),
            ],
        )
        firsts = [order[i][2] for i in (0, 6, 12)]
        self.assertEqual(firsts, ["a", "b", "c"])
        self.assertEqual([n for _, _, n in order[6:9]], ["b", "c", "a"])
        self.assertEqual(interleave([], [SMALL], 2), [])


class ReportTests(SynchronousTestCase):
    """
    Medians, ratios and tables.
    """

    def test_median_of_rounds(self) -> None:
        summaries = summarize(
            [
                small("lbproxy", 1000, 0.030, 1),
                small("lbproxy", 3000, 0.010, 2),
                small("lbproxy", 2000, 0.020, 3),
            ]
        )
        summary = summaries[("lbproxy", "http-small")]
        self.assertEqual(summary.requests_per_sec, 2000)
        self.assertAlmostEqual(summary.p99, 0.020)
        self.assertEqual(summary.rounds, 3)
        self.assertTrue(summary.clean)

    def test_failures_and_errors(self) -> None:
        """
        Failed rounds are left out of the median but counted; errors are
        summed; a pair with no good round has no summary.
        """
        summaries = summarize(
            [
                small("lbproxy", 1000, 0.030, 1, socket_errors=2),
                Measurement(2, "lbproxy", SMALL.name, error="wrk did not finish"),
                small("lbproxy", 3000, 0.010, 3, non_2xx=4),
                Measurement(1, "twisted", SMALL.name, error="incomplete"),
            ]
        )
        summary = summaries[("lbproxy", "http-small")]
        self.assertEqual(summary.requests_per_sec, 2000)
        self.assertEqual((summary.rounds, summary.failed), (2, 1))
        self.assertEqual((summary.socket_errors, summary.non_2xx), (2, 4))
        self.assertFalse(summary.clean)
        self.assertNotIn(("twisted", "http-small"), summaries)

    def test_ratio(self) -> None:
        summaries = summarize(
            [
                small("lbproxy", 5000, 0.020),
                small("nginx", 50000, 0.002),
                small("twisted", 2000, 0.080),
                small("zero", 0, 0.0),
            ]
        )
        self.assertAlmostEqual(
            ratio(summaries, "lbproxy", "nginx", SMALL.name, "requests_per_sec"), 0.1
        )
        self.assertAlmostEqual(
            ratio(summaries, "lbproxy", "twisted", SMALL.name, "requests_per_sec"), 2.5
        )
        self.assertAlmostEqual(ratio(summaries, "lbproxy", "twisted", SMALL.name, "p99"), 0.25)
        self.assertAlmostEqual(ratio(summaries, "lbproxy", "nginx", SMALL.name, "p99"), 10.0)
        self.assertIsNone(ratio(summaries, "lbproxy", "haproxy", SMALL.name, "requests_per_sec"))
        self.assertIsNone(ratio(summaries, "lbproxy", "nginx", BIG.name, "mib_per_sec"))
        self.assertIsNone(ratio(summaries, "lbproxy", "zero", SMALL.name, "requests_per_sec"))

    def _measurements(self):
        return [
            small("direct", 60000, 0.001),
            small("nginx", 40000, 0.004),
            small("twisted", 2000, 0.060),
            small("lbproxy", 5000, 0.024),
            Measurement(1, "nginx", BIG.name, requests_per_sec=800, mib_per_sec=800.0, p99=0.05),
            Measurement(1, "twisted", BIG.name, requests_per_sec=400, mib_per_sec=400.0, p99=0.05),
            Measurement(1, "lbproxy", BIG.name, requests_per_sec=600, mib_per_sec=600.0, p99=0.05),
            Measurement(1, "nginx", SMALL_TLS.name, requests_per_sec=30000, p99=0.005),
            Measurement(1, "twisted", SMALL_TLS.name, requests_per_sec=500, p99=0.1),
        ]

    def test_ratio_rows(self) -> None:
        """
        One row per lbproxy subject and metric; columns for nginx and stock
        Twisted over HTTP and TLS; missing sides are L{None}.
        """
        scenarios = [SMALL, BIG, SMALL_TLS, BIG_TLS]
        summaries = summarize(self._measurements())
        self.assertEqual(
            ratio_columns(SUBJECTS, scenarios),
            [("nginx", "http"), ("nginx", "https"), ("twisted", "http"), ("twisted", "https")],
        )
        rows = ratio_rows(summaries, SUBJECTS, scenarios)
        self.assertEqual(
            [row.label for row in rows],
            [
                "lbproxy: req/s, small",
                "lbproxy: p99 latency, small (lower is better)",
                "lbproxy: MiB/s, 1 MiB",
            ],
        )
        rate, p99, mib = rows
        self.assertAlmostEqual(rate.values[("nginx", "http")], 0.125)
        self.assertAlmostEqual(rate.values[("twisted", "http")], 2.5)
        self.assertIsNone(rate.values[("twisted", "https")])
        self.assertAlmostEqual(p99.values[("nginx", "http")], 6.0)
        self.assertAlmostEqual(p99.values[("twisted", "http")], 0.4)
        self.assertAlmostEqual(mib.values[("nginx", "http")], 0.75)
        self.assertAlmostEqual(mib.values[("twisted", "http")], 1.5)

    def test_no_denominators(self) -> None:
        """
        Without nginx and stock Twisted there is nothing to divide by.
        """
        subjects = [SUBJECTS[0], SUBJECTS[3]]
        summaries = summarize(self._measurements())
        self.assertEqual(ratio_columns(subjects, [SMALL]), [])
        self.assertEqual(ratio_rows(summaries, subjects, [SMALL]), [])

    def test_markdown(self) -> None:
        measurements = self._measurements() + [
            small("lbproxy", 5000, 0.024, 2, socket_errors=3),
        ]
        text = markdown_report(
            SUBJECTS, [SMALL, BIG, SMALL_TLS, BIG_TLS], summarize(measurements), notes=["a note"]
        )
        lines = text.splitlines()
        self.assertIn("**Small responses (13 bytes), 50 connections**", lines)
        self.assertIn("**1 MiB responses, 10 connections**", lines)
        self.assertIn(
            "| subject | HTTP req/s | p50 ms | p99 ms | CPU % | TLS req/s | p50 ms | p99 ms | CPU % |",
            lines,
        )
        self.assertIn("| nginx proxy | 40,000 | 1.00 | 4.00 | – | 30,000 | – | 5.00 | – |", lines)
        self.assertIn("| lbproxy | 5,000 (!) | 6.00 | 24.0 | – | – | – | – | – |", lines)
        self.assertIn("| nginx proxy | 800 | – | – | – |", lines)
        self.assertIn(
            "| ratio | / nginx HTTP | / nginx TLS | / stock Twisted HTTP | / stock Twisted TLS |",
            lines,
        )
        self.assertIn("| lbproxy: req/s, small | 0.12× | – | 2.50× | – |", lines)
        self.assertIn("| lbproxy: MiB/s, 1 MiB | 0.75× | – | 1.50× | – |", lines)
        self.assertIn("- lbproxy, http-small: 3 socket errors/timeouts", lines)
        self.assertEqual(lines[-1], "- a note")

    def test_markdown_http_only(self) -> None:
        text = markdown_report(SUBJECTS, [SMALL], summarize(self._measurements()))
        self.assertNotIn("TLS", text)
        self.assertNotIn("1 MiB responses", text)
        self.assertIn("| lbproxy: req/s, small | 0.12× | 2.50× |", text.splitlines())


TLS = TLSFiles("/run/x/cert.pem", "/run/x/key.pem", "/run/x/combined.pem")


class ServerConfigTests(SynchronousTestCase):
    """
    The generated configurations listen on 127.0.0.1 only and say what
    the documentation says they do.
    """

    def test_lbproxy(self) -> None:
        document = tomllib.loads(lbproxy_config(8000, 9000))
        self.assertEqual(
            document,
            {
                "server": {
                    "listen": "tcp:8000:interface=127.0.0.1",
                    "access_log": False,
                    "default_pool": "backend",
                },
                "pools": {"backend": {"targets": ["127.0.0.1:9000"]}},
            },
        )

    def test_lbproxy_everything(self) -> None:
        document = tomllib.loads(
            lbproxy_config(
                8000, 9000, access_log="/tmp/a b/access.log", tls_port=8443, tls=TLS, workers=2
            )
        )
        self.assertEqual(document["server"]["access_log"], "/tmp/a b/access.log")
        self.assertEqual(document["server"]["workers"], 2)
        self.assertEqual(
            document["tls"],
            {
                "listen": ["tcp:8443:interface=127.0.0.1"],
                "certificates": [{"cert": TLS.cert, "key": TLS.key}],
            },
        )

    def test_lbproxy_config_is_valid(self) -> None:
        """
        lbproxy's own loader accepts the configuration, with and without
        the access log and TLS.
        """
        from lbproxy.config import load_config

        for text in (
            lbproxy_config(8000, 9000),
            lbproxy_config(8000, 9000, access_log="access.log"),
            lbproxy_config(8000, 9000, tls_port=8443, tls=TLS),
        ):
            path = self.mktemp()
            with open(path, "w") as f:
                f.write(text)
            config = load_config(path)
            self.assertEqual(config.server.default_pool, "backend")

    def test_nginx(self) -> None:
        backend = nginx_backend_config("/run/x", 9000, "/run/x/www", 9443, TLS, user="root root")
        self.assertIn("user root root;", backend)
        self.assertIn("worker_processes 1;", backend)
        self.assertIn("listen 127.0.0.1:9000;", backend)
        self.assertIn("listen 127.0.0.1:9443 ssl;", backend)
        self.assertIn("ssl_protocols TLSv1.2 TLSv1.3;", backend)
        self.assertIn('return 200 "Hello, World!";', backend)
        self.assertIn("pid /run/x/backend.pid;", backend)
        proxy = nginx_proxy_config("/run/x", 8000, 9000)
        self.assertNotIn("user ", proxy)
        self.assertNotIn("ssl", proxy)
        self.assertIn("server 127.0.0.1:9000;", proxy)
        self.assertIn("keepalive 64;", proxy)
        self.assertIn('proxy_set_header Connection "";', proxy)
        self.assertEqual(backend.count("{"), backend.count("}"))
        self.assertEqual(proxy.count("{"), proxy.count("}"))

    def test_haproxy(self) -> None:
        config = haproxy_config(8000, 9000, 8443, TLS)
        self.assertIn("    nbthread 1", config.splitlines())
        self.assertIn("    bind 127.0.0.1:8000", config.splitlines())
        self.assertIn("    bind 127.0.0.1:8443 ssl crt /run/x/combined.pem", config.splitlines())
        self.assertIn("    server b1 127.0.0.1:9000", config.splitlines())
        self.assertNotIn("ssl crt", haproxy_config(8000, 9000))

    def test_stock_proxy(self) -> None:
        self.assertEqual(
            stock_proxy_command("py", "s.py", 8000, 9000),
            ["py", "s.py", "--backend-port", "9000", "--listen", "tcp:8000:interface=127.0.0.1"],
        )
        command = stock_proxy_command("py", "s.py", 8000, 9000, 8443, TLS)
        self.assertEqual(
            command[-1],
            "ssl:8443:interface=127.0.0.1:privateKey=/run/x/key.pem:certKey=/run/x/cert.pem",
        )


class CommandLineTests(SynchronousTestCase):
    """
    L{settings_from}: defaults, C{--quick} and CPU pinning.
    """

    def test_defaults(self) -> None:
        settings = settings_from([], cpus={0, 1})
        self.assertEqual(
            (settings.duration, settings.rounds, settings.warmup),
            (FULL["duration"], FULL["rounds"], FULL["warmup"]),
        )
        self.assertEqual((settings.connections, settings.large_connections), (50, 10))
        self.assertTrue(settings.tls)
        self.assertTrue(settings.pin)
        self.assertEqual((settings.proxy_cpus, settings.load_cpus), ({0}, {1}))
        self.assertIsNone(settings.only)
        self.assertEqual(settings.command, "bash bench/run")

    def test_default_run_is_bounded(self) -> None:
        """
        The default run with the six default subjects takes well under 15
        minutes of measuring; --quick about two.
        """
        pairs = 6 * 4
        for values, limit in ((FULL, 10 * 60), (QUICK, 2.25 * 60)):
            seconds = estimate_seconds(
                pairs * values["rounds"], values["duration"], pairs, values["warmup"]
            )
            self.assertLess(seconds, limit)
        self.assertEqual(estimate_seconds(10, 2, 0, 0), 21)
        self.assertEqual(estimate_seconds(10, 2, 5, 1), 26)

    def test_quick_and_options(self) -> None:
        settings = settings_from(
            [
                "--quick",
                "--rounds",
                "3",
                "--no-tls",
                "--only",
                "lbproxy, twisted",
                "--python",
                "/usr/bin/pypy3",
                "--workers",
                "2",
                "--proxy-cpus",
                "2-3",
                "--load-cpus",
                "0,1",
            ],
            cpus={0, 1, 2, 3},
        )
        self.assertTrue(settings.quick)
        self.assertEqual(
            (settings.duration, settings.rounds, settings.warmup),
            (QUICK["duration"], 3, QUICK["warmup"]),
        )
        self.assertFalse(settings.tls)
        self.assertEqual(settings.only, ["lbproxy", "twisted"])
        self.assertEqual(settings.pythons, ["/usr/bin/pypy3"])
        self.assertEqual(settings.workers, [2])
        self.assertEqual((settings.proxy_cpus, settings.load_cpus), ({2, 3}, {0, 1}))
        self.assertIn("--only 'lbproxy, twisted'", settings.command)
        self.assertEqual(settings.lbproxy_root, REPO_ROOT)
        other = settings_from(["--lbproxy-root", "/srv/lbproxy-old/"], cpus={0, 1})
        self.assertEqual(other.lbproxy_root, "/srv/lbproxy-old")

    def test_one_cpu(self) -> None:
        """
        With one CPU there is nothing to pin apart.
        """
        settings = settings_from([], cpus={3})
        self.assertFalse(settings.pin)
        self.assertFalse(settings_from(["--no-pin"], cpus={0, 1}).pin)


class BaselineOptionTests(SynchronousTestCase):
    """
    C{--baseline-root} and C{--baseline-label}.
    """

    def setUp(self) -> None:
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def tree(self, name: str = "lbproxy-base") -> str:
        """
        A directory C{name} with an (empty) lbproxy package in it.
        """
        root = os.path.join(os.path.abspath(self.mktemp()), name)
        os.makedirs(os.path.join(root, "lbproxy"))
        with open(os.path.join(root, "lbproxy", "__init__.py"), "w"):
            pass
        return root

    def test_none(self) -> None:
        settings = settings_from([], cpus={0, 1})
        self.assertIsNone(settings.baseline_root)

    def test_root_and_default_label(self) -> None:
        """
        The tree's directory name without C{lbproxy-} names it (an export
        has no git to describe), and the path is made absolute.
        """
        root = self.tree()
        relative = os.path.relpath(root)
        settings = settings_from(["--baseline-root", relative + "/"], cpus={0, 1})
        self.assertEqual(settings.baseline_root, root)
        self.assertEqual(settings.baseline_label, "base")
        self.assertIn("--baseline-root " + relative + "/", settings.command)

    def test_label(self) -> None:
        root = self.tree()
        settings = settings_from(
            ["--baseline-root", root, "--baseline-label", "main-8ae4846"], cpus={0, 1}
        )
        self.assertEqual(settings.baseline_label, "main-8ae4846")

    def test_refused(self) -> None:
        """
        A label without a root, a label that cannot be part of a subject
        name, and a directory without lbproxy are usage errors.
        """
        root = self.tree()
        for argv in (
            ["--baseline-label", "old"],
            ["--baseline-root", root, "--baseline-label", "a,b"],
            ["--baseline-root", root, "--baseline-label", "a@b"],
            ["--baseline-root", root, "--baseline-label", "-x"],
            ["--baseline-root", os.path.dirname(root)],
        ):
            self.assertRaises(SystemExit, settings_from, argv, {0, 1})
        self.assertIn("--baseline-label needs --baseline-root", self.stderr.getvalue())
        self.assertIn("no lbproxy/__init__.py there", self.stderr.getvalue())

    def test_default_label(self) -> None:
        """
        C{git describe} if the tree is a checkout, else its directory's
        name, less C{lbproxy-}, with what cannot be in a name replaced.
        """
        self.assertEqual(default_baseline_label("/x/lbproxy-base", lambda r: None), "base")
        self.assertEqual(default_baseline_label("/x/old main/", lambda r: None), "old-main")
        self.assertEqual(default_baseline_label("/x/lbproxy-", lambda r: None), "lbproxy-")
        self.assertEqual(default_baseline_label("/x/@", lambda r: None), "base")
        self.assertEqual(
            default_baseline_label("/x/lbproxy-base", lambda r: "v1.0-2-g8ae4846-dirty"),
            "v1.0-2-g8ae4846-dirty",
        )
        self.assertEqual(default_baseline_label("/x/y", lambda r: "a/b"), "a-b")

    def test_describe_needs_a_checkout(self) -> None:
        """
        A directory that is not the top of a checkout is not described
        (git would describe the checkout around it).
        """
        self.assertIsNone(git_describe(self.tree()))


def interpreter(tag: str, root: str = "/new") -> dict:
    return {
        "tag": tag,
        "python": tag,
        "twisted": "25.5.0",
        "lbproxy": "yes",
        "lbproxy_dir": f"{root}/lbproxy",
        "plugin": "lbproxy.tap",
        "plugin_file": f"{root}/twisted/plugins/lbproxy_plugin.py",
        "tap_file": f"{root}/lbproxy/tap.py",
        "path": f"/usr/bin/{tag}",
    }


class BaselineSubjectTests(SynchronousTestCase):
    """
    The subjects of a run with a baseline, and where their imports come
    from.  No process is started.
    """

    def lineup(self, baseline: bool = True, **kw) -> Lineup:
        settings = Settings(lbproxy_root="/new", **kw)
        if baseline:
            settings.baseline_root = "/old"
            settings.baseline_label = "base"
        main, pypy = interpreter("cpython3.11"), interpreter("pypy3.9")
        baselines = [interpreter("cpython3.11", "/old"), interpreter("pypy3.9", "/old")]
        return Lineup(settings, "/nonexistent", None, None, [main, pypy], baselines)

    def test_names(self) -> None:
        self.assertEqual(baseline_subject("base"), ("lbproxy@base", "lbproxy@base"))
        self.assertEqual(
            baseline_subject("base", "pypy3.9"),
            ("lbproxy@base@pypy3.9", "lbproxy@base (pypy3.9)"),
        )

    def test_subjects(self) -> None:
        """
        The baseline runs under every interpreter, each right after the
        new tree's lbproxy under the same interpreter, and with the access
        log on right after lbproxy-log.
        """
        self.assertEqual(
            self.lineup(workers=[2]).names(),
            [
                "nginx",
                "haproxy",
                "twisted",
                "twisted@pypy3.9",
                "lbproxy",
                "lbproxy@base",
                "lbproxy-log",
                "lbproxy-log@base",
                "lbproxy@pypy3.9",
                "lbproxy@base@pypy3.9",
                "lbproxy-w2",
            ],
        )
        self.assertNotIn("lbproxy@base", self.lineup(baseline=False).names())

    def test_only(self) -> None:
        """
        C{--only} takes the baseline's names; a name no subject has is
        noted (nothing is started here: every subject is filtered out).
        """
        self.patch(sys, "stdout", io.StringIO())
        settings = settings_from(["--only", "lbproxy@base,lbproxy@base@pypy3.9"], cpus={0, 1})
        lineup = self.lineup()
        self.assertTrue(set(settings.only) <= set(lineup.names()))
        lineup = self.lineup(only=["lbproxy@bsae"])
        lineup.start_subjects()
        self.assertEqual(lineup.running, [])
        self.assertEqual(len(lineup.notes), 1)
        self.assertIn("no subject called lbproxy@bsae", lineup.notes[0])

    def test_probe(self) -> None:
        """
        The probe's C{bench-probe:} lines are read; others (warnings) are
        ignored.
        """
        output = (
            "bench-probe: tag=pypy3.9\n"
            "some warning = noise\n"
            "bench-probe: lbproxy_dir=/old/lbproxy\n"
            "bench-probe: plugin=lbproxy.tap\n"
        )
        self.assertEqual(
            parse_probe(output),
            {"tag": "pypy3.9", "lbproxy_dir": "/old/lbproxy", "plugin": "lbproxy.tap"},
        )

    def test_from_tree(self) -> None:
        """
        lbproxy, its twistd plugin and the plugin's module must all come
        from the tree.
        """
        self.assertIsNone(from_tree(interpreter("pypy3.9", "/old"), "/old"))
        self.assertIsNone(from_tree(interpreter("pypy3.9", "/old"), "/old/"))
        facts = interpreter("pypy3.9", "/old")
        facts["lbproxy_dir"] = "/work/main/lbproxy"
        self.assertEqual(
            from_tree(facts, "/old"), "lbproxy is imported from /work/main/lbproxy, not from /old"
        )
        facts = interpreter("pypy3.9", "/old")
        facts["plugin_file"] = "/work/main/twisted/plugins/lbproxy_plugin.py"
        self.assertIn("the twistd plugin is imported from /work/main", from_tree(facts, "/old"))
        self.assertIn("not from /ol", from_tree(interpreter("pypy3.9", "/old"), "/ol"))
        facts = interpreter("pypy3.9", "/old")
        del facts["tap_file"]
        facts["plugin_error"] = "No module named 'lbproxy.app'"
        self.assertEqual(
            from_tree(facts, "/old"),
            "the plugin's module not found: No module named 'lbproxy.app'",
        )


NEW = Subject("lbproxy", "lbproxy", "lbproxy", root="/new")
BASE = Subject("lbproxy@base", "lbproxy@base", "lbproxy", baseline_for="lbproxy", root="/old")


class BaselineReportTests(SynchronousTestCase):
    """
    lbproxy against its baseline, round by round.
    """

    def measurements(self):
        return [
            small("lbproxy", 9000, 0.5, 0),  # a warm-up: left out
            small("lbproxy", 8000, 0.010, 1),
            small("lbproxy@base", 10000, 0.008, 1),
            small("lbproxy@base", 6000, 0.012, 2),
            small("lbproxy", 6600, 0.012, 2),
            small("lbproxy", 5000, 0.020, 3),
            Measurement(3, "lbproxy@base", SMALL.name, error="wrk did not finish"),
            Measurement(1, "lbproxy", BIG.name, mib_per_sec=900.0),
            Measurement(1, "lbproxy@base", BIG.name, mib_per_sec=1000.0),
            small("nginx", 50000, 0.002, 1),
        ]

    def test_round_ratio(self) -> None:
        self.assertAlmostEqual(RoundRatio(1, 8000.0, 10000.0).ratio, 0.8)
        self.assertIsNone(RoundRatio(1, 8000.0, None).ratio)
        self.assertIsNone(RoundRatio(1, None, 10000.0).ratio)
        self.assertIsNone(RoundRatio(1, 8000.0, 0.0).ratio)

    def test_round_ratios(self) -> None:
        """
        Both figures of every round, warm-ups left out, a failed round
        without a figure.
        """
        rounds = round_ratios(
            self.measurements(), "lbproxy", "lbproxy@base", SMALL.name, "requests_per_sec"
        )
        self.assertEqual(
            [(r.round, r.new, r.baseline) for r in rounds],
            [(1, 8000, 10000), (2, 6600, 6000), (3, 5000, None)],
        )
        self.assertEqual([r.ratio for r in rounds][2], None)
        p99 = round_ratios(self.measurements(), "lbproxy", "lbproxy@base", SMALL.name, "p99")
        self.assertAlmostEqual(p99[0].ratio, 1.25)
        self.assertAlmostEqual(p99[1].ratio, 1.0)

    def test_rows(self) -> None:
        """
        req/s and p99 for small responses, MiB/s for 1 MiB ones, over each
        scheme measured; the median of the rounds' ratios.
        """
        rows = baseline_rows(
            self.measurements(), SUBJECTS + [BASE], [SMALL, BIG, SMALL_TLS, BIG_TLS]
        )
        self.assertEqual(
            [row.label for row in rows],
            [
                "lbproxy / lbproxy@base: HTTP req/s, small",
                "lbproxy / lbproxy@base: HTTP p99 ms, small (lower is better)",
                "lbproxy / lbproxy@base: HTTP MiB/s, 1 MiB",
            ],
        )
        rate, p99, mib = rows
        self.assertEqual(
            (rate.new, rate.baseline, rate.metric), ("lbproxy", "lbproxy@base", "requests_per_sec")
        )
        self.assertAlmostEqual(rate.median, (0.8 + 1.1) / 2)
        self.assertAlmostEqual(p99.median, (1.25 + 1.0) / 2)
        self.assertAlmostEqual(mib.median, 0.9)
        self.assertEqual(
            rate.as_dict()["rounds"][2], {"round": 3, "new": 5000, "baseline": None, "ratio": None}
        )
        self.assertAlmostEqual(rate.as_dict()["median_ratio"], 0.95)

    def test_no_baseline(self) -> None:
        """
        Without a baseline subject, or without its new-tree subject, there
        are no rows and no table.
        """
        measurements = self.measurements()
        self.assertEqual(baseline_rows(measurements, SUBJECTS, [SMALL, BIG]), [])
        self.assertEqual(baseline_rows(measurements, [BASE], [SMALL, BIG]), [])
        text = markdown_report(SUBJECTS, [SMALL, BIG], summarize(measurements), (), measurements)
        self.assertNotIn("baseline", text)

    def test_markdown(self) -> None:
        """
        The table has a column per round with both figures and their
        ratio, and the median ratio; the other tables stay.
        """
        measurements = self.measurements()
        subjects = [NEW, BASE]
        text = markdown_report(
            subjects, [SMALL, BIG], summarize(measurements), ["a note"], measurements
        )
        lines = text.splitlines()
        self.assertIn("**Small responses (13 bytes), 50 connections**", lines)
        self.assertIn("| lbproxy@base | 8,000 (!) | 2.50 | 10.0 | – |", lines)
        self.assertIn("- lbproxy@base, http-small: 1 failed round(s)", lines)
        self.assertIn("**Against the baseline, round by round** (new / baseline = ratio)", lines)
        self.assertIn("| new / baseline | round 1 | round 2 | round 3 | median ratio |", lines)
        self.assertIn(
            "| lbproxy / lbproxy@base: HTTP req/s, small | 8,000 / 10,000 = 0.80× "
            "| 6,600 / 6,000 = 1.10× | 5,000 / – = – | 0.95× |",
            lines,
        )
        self.assertIn(
            "| lbproxy / lbproxy@base: HTTP p99 ms, small (lower is better) "
            "| 10.0 / 8.00 = 1.25× | 12.0 / 12.0 = 1.00× | 20.0 / – = – | 1.12× |",
            lines,
        )
        self.assertIn(
            "| lbproxy / lbproxy@base: HTTP MiB/s, 1 MiB "
            "| 900 / 1,000 = 0.90× | – | – | 0.90× |",
            lines,
        )
        self.assertEqual(lines[-1], "- a note")
