# -*- test-case-name: tests.test_bench -*-
"""
wrk's command line and its report, parsed into numbers.

Pure: text in, values out.  wrk prints human units (C{635.91us},
C{56.20k}, C{91.80MB}); everything here is converted to seconds, counts
and bytes.  The formats are those of wrk 4 (C{src/units.c}): times in
C{us}, C{ms}, C{s}, C{m}, C{h}; counts with the metric suffixes C{k},
C{M}, C{G}, C{T}, C{P} (powers of 1000); sizes with C{K}, C{M}, C{G},
C{T}, C{P} before C{B} (powers of 1024).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = [
    "WrkOutputError",
    "WrkResult",
    "parse_count",
    "parse_size",
    "parse_time",
    "parse_wrk",
    "wrk_command",
]

_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_COUNT_UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_TIME = re.compile(r"^(%s)(us|ms|s|m|h)$" % _NUMBER)
_COUNT = re.compile(r"^(%s)([kMGTP]?)$" % _NUMBER)
_SIZE = re.compile(r"^(%s)([KMGTP]?)B$" % _NUMBER)

_LATENCY = re.compile(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)")
_PERCENTILE = re.compile(r"^\s*(%s)%%\s+(\S+)\s*$" % _NUMBER)
_TOTALS = re.compile(r"^\s*([0-9]+) requests in (\S+), (\S+) read\s*$")
_SOCKET_ERRORS = re.compile(
    r"^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)\s*$"
)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses: ([0-9]+)\s*$")
_RATE = re.compile(r"^\s*Requests/sec:\s+(%s)\s*$" % _NUMBER)
_TRANSFER = re.compile(r"^\s*Transfer/sec:\s+(\S+)\s*$")


class WrkOutputError(ValueError):
    """
    wrk's output is not a complete report (wrk failed, or printed something
    this parser does not know).
    """


def parse_time(text: str) -> float:
    """
    A wrk duration (C{"635.91us"}, C{"12.92ms"}, C{"1.00s"}, C{"2.00m"})
    in seconds.
    """
    match = _TIME.match(text.strip())
    if match is None:
        raise WrkOutputError(f"not a wrk time: {text!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_count(text: str) -> float:
    """
    A wrk count with an optional metric suffix (C{"935.00"}, C{"56.20k"},
    C{"1.20M"}).
    """
    match = _COUNT.match(text.strip())
    if match is None:
        raise WrkOutputError(f"not a wrk count: {text!r}")
    return float(match.group(1)) * _COUNT_UNITS[match.group(2)]


def parse_size(text: str) -> float:
    """
    A wrk byte size (C{"512.00B"}, C{"91.80MB"}, C{"1.02GB"}) in bytes;
    wrk's C{K}, C{M} and C{G} are powers of 1024.
    """
    match = _SIZE.match(text.strip())
    if match is None:
        raise WrkOutputError(f"not a wrk size: {text!r}")
    return float(match.group(1)) * _SIZE_UNITS[match.group(2)]


@dataclass(frozen=True)
class WrkResult:
    """
    One wrk run's report.

    @ivar requests: Responses completed.
    @ivar duration: The run's length as wrk measured it, in seconds.
    @ivar bytes_read: Bytes read from the server, headers included.
    @ivar requests_per_sec: wrk's C{Requests/sec}.
    @ivar bytes_per_sec: wrk's C{Transfer/sec}, in bytes per second.
    @ivar latency_avg: Mean latency in seconds, or L{None} when wrk could
        not compute it (no response).
    @ivar latency_max: Maximum latency in seconds, or L{None}.
    @ivar percentiles: Latency percentiles in seconds, keyed by percent
        (C{50.0}, C{75.0}, C{90.0}, C{99.0}); empty without C{--latency}.
    @ivar connect_errors: Socket errors while connecting.
    @ivar read_errors: Socket errors while reading.
    @ivar write_errors: Socket errors while writing.
    @ivar timeouts: Requests that got no response within wrk's timeout.
    @ivar non_2xx: Responses with a status outside 2xx and 3xx.
    """

    requests: int
    duration: float
    bytes_read: float
    requests_per_sec: float
    bytes_per_sec: float
    latency_avg: Optional[float] = None
    latency_max: Optional[float] = None
    percentiles: Dict[float, float] = field(default_factory=dict)
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    non_2xx: int = 0

    @property
    def socket_errors(self) -> int:
        """
        All socket errors and timeouts together.
        """
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    def percentile(self, percent: float) -> Optional[float]:
        """
        The latency at C{percent} in seconds, or L{None} if not reported.
        """
        return self.percentiles.get(float(percent))


def _time_or_none(text: str) -> Optional[float]:
    # A run without responses prints "0.00us" or "-nan" style fields.
    try:
        return parse_time(text)
    except WrkOutputError:
        return None


def parse_wrk(output: str) -> WrkResult:
    """
    Parse wrk's standard output (with or without C{--latency}).

    @raise WrkOutputError: When the report's totals, C{Requests/sec} or
        C{Transfer/sec} line is missing, which is what wrk prints when it
        cannot connect or is killed.
    """
    totals = rate = transfer = None
    latency_avg = latency_max = None
    percentiles: Dict[float, float] = {}
    errors = (0, 0, 0, 0)
    non_2xx = 0
    in_distribution = False
    for line in output.splitlines():
        if line.strip() == "Latency Distribution":
            in_distribution = True
            continue
        if in_distribution:
            match = _PERCENTILE.match(line)
            if match:
                percentiles[float(match.group(1))] = parse_time(match.group(2))
                continue
            in_distribution = False
        match = _LATENCY.match(line)
        if match:
            latency_avg = _time_or_none(match.group(1))
            latency_max = _time_or_none(match.group(3))
            continue
        match = _TOTALS.match(line)
        if match:
            totals = (int(match.group(1)), parse_time(match.group(2)), parse_size(match.group(3)))
            continue
        match = _SOCKET_ERRORS.match(line)
        if match:
            errors = tuple(int(group) for group in match.groups())  # type: ignore[assignment]
            continue
        match = _NON_2XX.match(line)
        if match:
            non_2xx = int(match.group(1))
            continue
        match = _RATE.match(line)
        if match:
            rate = float(match.group(1))
            continue
        match = _TRANSFER.match(line)
        if match:
            transfer = parse_size(match.group(1))
    missing = [
        name
        for name, value in (("totals", totals), ("Requests/sec", rate), ("Transfer/sec", transfer))
        if value is None
    ]
    if missing:
        first = output.strip().splitlines()[:1]
        raise WrkOutputError(
            "incomplete wrk report (no %s line)%s"
            % (", ".join(missing), f": {first[0]!r}" if first else "")
        )
    assert totals is not None and rate is not None and transfer is not None
    requests, duration, bytes_read = totals
    return WrkResult(
        requests=requests,
        duration=duration,
        bytes_read=bytes_read,
        requests_per_sec=rate,
        bytes_per_sec=transfer,
        latency_avg=latency_avg,
        latency_max=latency_max,
        percentiles=percentiles,
        connect_errors=errors[0],
        read_errors=errors[1],
        write_errors=errors[2],
        timeouts=errors[3],
        non_2xx=non_2xx,
    )


def wrk_command(
    url: str,
    duration: float,
    connections: int,
    threads: int = 1,
    timeout: float = 5.0,
    wrk: str = "wrk",
) -> List[str]:
    """
    The wrk command line for one measurement, always with C{--latency}.

    @param duration: Seconds; wrk takes whole seconds, so at least 1.
    """
    seconds = max(1, int(round(duration)))
    return [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={max(1, int(round(timeout)))}s",
        "--latency",
        url,
    ]
