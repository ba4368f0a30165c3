# -*- test-case-name: tests.test_bench -*-
"""
What is measured and in which order.

Pure: the scenarios (small or large body, HTTP or TLS), the subjects
(the servers under test) and the interleaved schedule of one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

__all__ = [
    "LARGE_SIZE",
    "SMALL_BODY",
    "Scenario",
    "Subject",
    "baseline_subject",
    "default_scenarios",
    "estimate_seconds",
    "interleave",
]

#: The small response body the backend serves at C{/small} (13 bytes).
SMALL_BODY = b"Hello, World!"

#: Size of the file the backend serves at C{/1m}.
LARGE_SIZE = 1 << 20


@dataclass(frozen=True)
class Scenario:
    """
    One kind of measurement.

    @ivar name: Short key used in files, e.g. C{"http-small"}.
    @ivar tls: Whether the client speaks TLS to the subject.
    @ivar path: Request path on the backend (and through every proxy).
    @ivar size: Response body size in bytes.
    @ivar connections: wrk's C{-c}.
    """

    name: str
    tls: bool
    path: str
    size: int
    connections: int

    @property
    def large(self) -> bool:
        return self.size >= LARGE_SIZE

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def default_scenarios(
    small_connections: int = 50, large_connections: int = 10, tls: bool = True
) -> Tuple[Scenario, ...]:
    """
    Small and large responses over HTTP, and over TLS unless C{tls} is off.
    """
    scenarios = [
        Scenario("http-small", False, "/small", len(SMALL_BODY), small_connections),
        Scenario("http-large", False, "/1m", LARGE_SIZE, large_connections),
    ]
    if tls:
        scenarios += [
            Scenario("tls-small", True, "/small", len(SMALL_BODY), small_connections),
            Scenario("tls-large", True, "/1m", LARGE_SIZE, large_connections),
        ]
    return tuple(scenarios)


@dataclass(frozen=True)
class Subject:
    """
    A server under test.

    @ivar name: Short key, e.g. C{"lbproxy"}, C{"lbproxy-log"},
        C{"twisted@pypy3.9"}.
    @ivar label: What the table and chart call it.
    @ivar kind: C{"backend"}, C{"nginx"}, C{"haproxy"}, C{"twisted"} or
        C{"lbproxy"}; ratios are computed for every C{"lbproxy"} subject.
    @ivar baseline_for: For lbproxy run from the baseline tree
        (C{--baseline-root}), the name of the subject that runs the new
        tree under the same interpreter, which is compared with it round
        by round; else empty.
    @ivar root: For lbproxy, the source tree it runs from; else empty.
    """

    name: str
    label: str
    kind: str
    baseline_for: str = ""
    root: str = ""


def baseline_subject(label: str, tag: str = "") -> Tuple[str, str]:
    """
    The name and the table label of lbproxy run from the baseline tree
    called C{label}: C{("lbproxy@base", "lbproxy@base")} under the main
    interpreter, C{("lbproxy@base@pypy3.9", "lbproxy@base (pypy3.9)")}
    under the one tagged C{pypy3.9}.
    """
    name = f"lbproxy@{label}"
    if not tag:
        return name, name
    return f"{name}@{tag}", f"{name} ({tag})"


def interleave(
    subjects: Sequence[str], scenarios: Sequence[Scenario], rounds: int
) -> List[Tuple[int, Scenario, str]]:
    """
    The order of one run's measurements: C{(round, scenario, subject)}.

    Each round measures every subject in every scenario.  Within a round
    the subjects of one scenario are measured one after the other, so that
    subjects compared with each other are measured close together, and the
    order of the subjects rotates from round to round, so that no subject
    is always first (or always after the same neighbour).

    @param rounds: Rounds, numbered from 1.
    """
    order: List[Tuple[int, Scenario, str]] = []
    count = len(subjects)
    for number in range(1, rounds + 1):
        shift = (number - 1) % count if count else 0
        rotated = list(subjects[shift:]) + list(subjects[:shift])
        for scenario in scenarios:
            for subject in rotated:
                order.append((number, scenario, subject))
    return order


def estimate_seconds(measurements: int, duration: int, warmups: int, warmup: int) -> int:
    """
    A rough length of a run's measuring: measurements and warm-ups, plus
    about 0.1 s of wrk start-up each.
    """
    return int(round(measurements * (duration + 0.1) + (warmups * (warmup + 0.1) if warmup else 0)))
