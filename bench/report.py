# -*- test-case-name: tests.test_bench -*-
"""
From measurements to a report: medians over rounds, ratios, Markdown
tables, CSV and JSON files and a PNG chart.

Everything but L{draw_chart} and the file writers is pure.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from bench.plan import Scenario, Subject

__all__ = [
    "BASELINE_METRICS",
    "DENOMINATORS",
    "BaselineRow",
    "Measurement",
    "RoundRatio",
    "Summary",
    "baseline_rows",
    "draw_chart",
    "markdown_report",
    "ratio",
    "ratio_columns",
    "ratio_rows",
    "round_ratios",
    "summarize",
    "write_csv",
    "write_json",
]

MIB = float(1 << 20)

#: The subjects every lbproxy subject is compared with, by name.
DENOMINATORS: Tuple[Tuple[str, str], ...] = (("nginx", "nginx"), ("twisted", "stock Twisted"))


@dataclass(frozen=True)
class Measurement:
    """
    One wrk run against one subject.

    @ivar round: The round it belongs to, from 1.
    @ivar subject: L{Subject.name}.
    @ivar scenario: L{Scenario.name}.
    @ivar requests_per_sec: wrk's C{Requests/sec}.
    @ivar mib_per_sec: wrk's C{Transfer/sec} in MiB (2**20 bytes) per
        second, headers included.
    @ivar p50: Median latency in seconds, or L{None}.
    @ivar p99: 99th percentile latency in seconds, or L{None}.
    @ivar requests: Responses completed.
    @ivar socket_errors: wrk's socket errors and timeouts.
    @ivar non_2xx: Responses outside 2xx/3xx.
    @ivar cpu_percent: CPU used by the subject's processes during the run,
        in percent of one CPU, or L{None} when not measured.
    @ivar error: Why the run gave no numbers, or L{None}.
    """

    round: int
    subject: str
    scenario: str
    requests_per_sec: float = 0.0
    mib_per_sec: float = 0.0
    p50: Optional[float] = None
    p99: Optional[float] = None
    requests: int = 0
    socket_errors: int = 0
    non_2xx: int = 0
    cpu_percent: Optional[float] = None
    error: Optional[str] = None

    def as_row(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Summary:
    """
    The median of one subject's rounds in one scenario.

    @ivar rounds: Rounds that gave numbers.
    @ivar failed: Rounds that gave none.
    @ivar socket_errors: Summed over the rounds.
    @ivar non_2xx: Summed over the rounds.
    """

    subject: str
    scenario: str
    requests_per_sec: float
    mib_per_sec: float
    p50: Optional[float]
    p99: Optional[float]
    cpu_percent: Optional[float]
    rounds: int
    failed: int = 0
    socket_errors: int = 0
    non_2xx: int = 0

    @property
    def clean(self) -> bool:
        """
        Whether every response was a success.
        """
        return self.socket_errors == 0 and self.non_2xx == 0 and self.failed == 0


def _median(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(measurements: Iterable[Measurement]) -> Dict[Tuple[str, str], Summary]:
    """
    Medians over the rounds, keyed by C{(subject, scenario)}.  A pair
    whose every round failed is left out.
    """
    groups: Dict[Tuple[str, str], List[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault((measurement.subject, measurement.scenario), []).append(measurement)
    summaries = {}
    for key, group in groups.items():
        good = [m for m in group if m.error is None]
        if not good:
            continue
        summaries[key] = Summary(
            subject=key[0],
            scenario=key[1],
            requests_per_sec=_median(m.requests_per_sec for m in good) or 0.0,
            mib_per_sec=_median(m.mib_per_sec for m in good) or 0.0,
            p50=_median(m.p50 for m in good),
            p99=_median(m.p99 for m in good),
            cpu_percent=_median(m.cpu_percent for m in good),
            rounds=len(good),
            failed=len(group) - len(good),
            socket_errors=sum(m.socket_errors for m in good),
            non_2xx=sum(m.non_2xx for m in good),
        )
    return summaries


def _metric(summary: Summary, metric: str) -> Optional[float]:
    return getattr(summary, metric)


def ratio(
    summaries: Dict[Tuple[str, str], Summary],
    numerator: str,
    denominator: str,
    scenario: str,
    metric: str,
) -> Optional[float]:
    """
    C{numerator}'s C{metric} over C{denominator}'s in C{scenario}, or
    L{None} when either is missing or the denominator is zero.

    @param metric: A L{Summary} field: C{"requests_per_sec"},
        C{"mib_per_sec"}, C{"p50"} or C{"p99"}.
    """
    top = summaries.get((numerator, scenario))
    bottom = summaries.get((denominator, scenario))
    if top is None or bottom is None:
        return None
    a, b = _metric(top, metric), _metric(bottom, metric)
    if a is None or not b:
        return None
    return a / b


@dataclass(frozen=True)
class RatioRow:
    """
    One line of the ratio table.

    @ivar label: The lbproxy subject and the metric.
    @ivar values: Ratios keyed by C{(denominator, scheme)}, e.g.
        C{("nginx", "https")}; L{None} where either side is missing.
    """

    label: str
    values: Dict[Tuple[str, str], Optional[float]]


#: The metrics of the ratio table: label, large responses?, Summary field.
RATIO_METRICS: Tuple[Tuple[str, bool, str], ...] = (
    ("req/s, small", False, "requests_per_sec"),
    ("p99 latency, small (lower is better)", False, "p99"),
    ("MiB/s, 1 MiB", True, "mib_per_sec"),
)


def _scenario_for(scenarios: Sequence[Scenario], large: bool, scheme: str) -> Optional[Scenario]:
    for scenario in scenarios:
        if scenario.large == large and scenario.scheme == scheme:
            return scenario
    return None


def ratio_columns(
    subjects: Sequence[Subject], scenarios: Sequence[Scenario]
) -> List[Tuple[str, str]]:
    """
    The C{(denominator, scheme)} columns of the ratio table: each subject
    of L{DENOMINATORS} that was measured, over HTTP and (if measured) TLS.
    """
    names = {subject.name for subject in subjects}
    schemes = [s for s in ("http", "https") if any(c.scheme == s for c in scenarios)]
    return [(name, scheme) for name, _ in DENOMINATORS if name in names for scheme in schemes]


def ratio_rows(
    summaries: Dict[Tuple[str, str], Summary],
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
) -> List[RatioRow]:
    """
    For every lbproxy subject: its requests per second and p99 latency
    for small responses and its MiB/s for 1 MiB responses, divided by
    those of each subject in L{DENOMINATORS}, over HTTP and TLS.
    """
    columns = ratio_columns(subjects, scenarios)
    rows = []
    for subject in subjects:
        if subject.kind != "lbproxy":
            continue
        for label, large, metric in RATIO_METRICS:
            values: Dict[Tuple[str, str], Optional[float]] = {}
            for denominator, scheme in columns:
                scenario = _scenario_for(scenarios, large, scheme)
                values[(denominator, scheme)] = (
                    None
                    if scenario is None
                    else ratio(summaries, subject.name, denominator, scenario.name, metric)
                )
            if any(value is not None for value in values.values()):
                rows.append(RatioRow(f"{subject.label}: {label}", values))
    return rows


#: What lbproxy is compared with its baseline in: label, large
#: responses?, L{Measurement} field.
BASELINE_METRICS: Tuple[Tuple[str, bool, str], ...] = (
    ("req/s, small", False, "requests_per_sec"),
    ("p99 ms, small (lower is better)", False, "p99"),
    ("MiB/s, 1 MiB", True, "mib_per_sec"),
)


@dataclass(frozen=True)
class RoundRatio:
    """
    One round of lbproxy against its baseline in one scenario and metric.

    @ivar new: The new tree's figure, or L{None} if it gave none.
    @ivar baseline: The baseline's figure, or L{None}.
    """

    round: int
    new: Optional[float]
    baseline: Optional[float]

    @property
    def ratio(self) -> Optional[float]:
        """
        C{new / baseline}, or L{None} when either is missing or the
        baseline is zero.
        """
        if self.new is None or not self.baseline:
            return None
        return self.new / self.baseline


@dataclass(frozen=True)
class BaselineRow:
    """
    One line of the table of lbproxy against its baseline.

    @ivar label: The two subjects, the scheme and the metric.
    @ivar new: The new tree's subject name.
    @ivar baseline: The baseline's subject name.
    @ivar metric: A L{Measurement} field.
    @ivar rounds: Every round either side was measured in, in order.
    """

    label: str
    new: str
    baseline: str
    scenario: str
    metric: str
    rounds: Tuple[RoundRatio, ...]

    @property
    def median(self) -> Optional[float]:
        """
        The median of the rounds' ratios (rounds without one left out).
        """
        return _median(r.ratio for r in self.rounds)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "label": self.label,
            "new": self.new,
            "baseline": self.baseline,
            "scenario": self.scenario,
            "metric": self.metric,
            "rounds": [
                {"round": r.round, "new": r.new, "baseline": r.baseline, "ratio": r.ratio}
                for r in self.rounds
            ],
            "median_ratio": self.median,
        }


def _value(measurement: Optional[Measurement], metric: str) -> Optional[float]:
    if measurement is None or measurement.error is not None:
        return None
    return getattr(measurement, metric)


def round_ratios(
    measurements: Iterable[Measurement], new: str, baseline: str, scenario: str, metric: str
) -> List[RoundRatio]:
    """
    C{new}'s and C{baseline}'s C{metric} in C{scenario} in every round
    (warm-ups, round 0, left out), with their ratio.
    """
    by_round: Dict[int, Dict[str, Measurement]] = {}
    for m in measurements:
        if m.round >= 1 and m.scenario == scenario and m.subject in (new, baseline):
            by_round.setdefault(m.round, {})[m.subject] = m
    return [
        RoundRatio(
            number,
            _value(by_round[number].get(new), metric),
            _value(by_round[number].get(baseline), metric),
        )
        for number in sorted(by_round)
    ]


def baseline_rows(
    measurements: Sequence[Measurement],
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
) -> List[BaselineRow]:
    """
    For every baseline subject (L{Subject.baseline_for}) whose new-tree
    subject was measured too: round by round, requests per second and p99
    latency for small responses and MiB/s for 1 MiB responses, over HTTP
    and (if measured) TLS.
    """
    by_name = {subject.name: subject for subject in subjects}
    rows = []
    for base in subjects:
        new = by_name.get(base.baseline_for) if base.baseline_for else None
        if new is None:
            continue
        for scheme in ("http", "https"):
            for label, large, metric in BASELINE_METRICS:
                scenario = _scenario_for(scenarios, large, scheme)
                if scenario is None:
                    continue
                rounds = round_ratios(measurements, new.name, base.name, scenario.name, metric)
                if not any(r.new is not None or r.baseline is not None for r in rounds):
                    continue
                name = "HTTP" if scheme == "http" else "TLS"
                rows.append(
                    BaselineRow(
                        f"{new.label} / {base.label}: {name} {label}",
                        new.name,
                        base.name,
                        scenario.name,
                        metric,
                        tuple(rounds),
                    )
                )
    return rows


def _number(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ms(value: Optional[float]) -> str:
    if value is None:
        return "–"
    milliseconds = value * 1000
    return f"{milliseconds:.2f}" if milliseconds < 10 else f"{milliseconds:.1f}"


def _times(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _problems(summary: Summary) -> List[str]:
    problems = []
    if summary.failed:
        problems.append(f"{summary.failed} failed round(s)")
    if summary.socket_errors:
        problems.append(f"{summary.socket_errors} socket errors/timeouts")
    if summary.non_2xx:
        problems.append(f"{summary.non_2xx} non-2xx responses")
    return problems


def _cells(summary: Optional[Summary], large: bool) -> List[str]:
    if summary is None:
        return ["–"] * (2 if large else 4)
    cpu = _number(summary.cpu_percent)
    mark = "" if summary.clean else " (!)"
    if large:
        return [_number(summary.mib_per_sec) + mark, cpu]
    return [_number(summary.requests_per_sec) + mark, _ms(summary.p50), _ms(summary.p99), cpu]


def _results_table(
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
    summaries: Dict[Tuple[str, str], Summary],
    large: bool,
    problems: List[str],
) -> List[str]:
    """
    The table of small (or large) responses, HTTP and TLS side by side;
    what went wrong in a cell is appended to C{problems}.
    """
    present = [
        scenario
        for scheme in ("http", "https")
        for scenario in [_scenario_for(scenarios, large, scheme)]
        if scenario is not None
    ]
    if not present:
        return []
    header = ["subject"]
    for scenario in present:
        name = "HTTP" if scenario.scheme == "http" else "TLS"
        if large:
            header += [f"{name} MiB/s", "CPU %"]
        else:
            header += [f"{name} req/s", "p50 ms", "p99 ms", "CPU %"]
    rows = []
    for subject in subjects:
        row = [subject.label]
        for scenario in present:
            summary = summaries.get((subject.name, scenario.name))
            row += _cells(summary, large)
            if summary is not None and not summary.clean:
                problems.append(
                    f"{subject.label}, {scenario.name}: " + ", ".join(_problems(summary))
                )
        rows.append(row)
    sample = present[0]
    if large:
        title = f"1 MiB responses, {sample.connections} connections"
    else:
        title = f"Small responses ({sample.size} bytes), {sample.connections} connections"
    return [f"**{title}**", ""] + _table(header, rows) + [""]


def _ratio_table(
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
    summaries: Dict[Tuple[str, str], Summary],
) -> List[str]:
    columns = ratio_columns(subjects, scenarios)
    labels = dict(DENOMINATORS)
    rows = [
        [row.label] + [_times(row.values.get(column)) for column in columns]
        for row in ratio_rows(summaries, subjects, scenarios)
    ]
    if not rows:
        return []
    header = ["ratio"] + [
        f"/ {labels[name]} {'HTTP' if scheme == 'http' else 'TLS'}" for name, scheme in columns
    ]
    return ["**Ratios**", ""] + _table(header, rows) + [""]


def _figure(value: Optional[float], metric: str) -> str:
    return _ms(value) if metric in ("p50", "p99") else _number(value)


def _baseline_table(
    measurements: Sequence[Measurement],
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
) -> List[str]:
    rows = baseline_rows(measurements, subjects, scenarios)
    if not rows:
        return []
    numbers = sorted({r.round for row in rows for r in row.rounds})
    lines = []
    for row in rows:
        cells = {r.round: r for r in row.rounds}
        line = [row.label]
        for number in numbers:
            r = cells.get(number)
            if r is None:
                line.append("–")
            else:
                line.append(
                    f"{_figure(r.new, row.metric)} / {_figure(r.baseline, row.metric)}"
                    f" = {_times(r.ratio)}"
                )
        lines.append(line + [_times(row.median)])
    header = ["new / baseline"] + [f"round {n}" for n in numbers] + ["median ratio"]
    title = "**Against the baseline, round by round** (new / baseline = ratio)"
    return [title, ""] + _table(header, lines) + [""]


def markdown_report(
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
    summaries: Dict[Tuple[str, str], Summary],
    notes: Sequence[str] = (),
    measurements: Sequence[Measurement] = (),
) -> str:
    """
    The tables of a run as Markdown (readable as plain text too): small
    responses (req/s, p50, p99, CPU), 1 MiB responses (MiB/s, CPU), the
    ratios, and with a baseline (and C{measurements}) lbproxy against it
    round by round, then a list of problems and C{notes}.  A cell marked
    C{(!)} had errors; the list says which.
    """
    problems: List[str] = []
    out: List[str] = []
    for large in (False, True):
        out += _results_table(subjects, scenarios, summaries, large, problems)
    out += _ratio_table(subjects, scenarios, summaries)
    out += _baseline_table(measurements, subjects, scenarios)
    for line in problems + list(notes):
        out.append(f"- {line}")
    return "\n".join(out).rstrip() + "\n"


def write_csv(path: str, measurements: Sequence[Measurement]) -> None:
    """
    One row per measurement.
    """
    fields = list(Measurement.__dataclass_fields__)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for measurement in measurements:
            writer.writerow(measurement.as_row())


def write_json(path: str, document: Dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write("\n")


def draw_chart(
    path: str,
    subjects: Sequence[Subject],
    scenarios: Sequence[Scenario],
    summaries: Dict[Tuple[str, str], Summary],
    title: str,
) -> Optional[str]:
    """
    Write a PNG with three panels (requests per second and p99 latency for
    small responses, MiB/s for 1 MiB responses), HTTP and TLS bars side by
    side for each subject.

    @return: L{None}, or why no chart was drawn (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"no chart: matplotlib is not installed ({e})"

    panels = [
        ("requests/s, small (higher is better)", False, "requests_per_sec", 1.0),
        ("p99 latency ms, small (lower is better)", False, "p99", 1000.0),
        ("MiB/s, 1 MiB (higher is better)", True, "mib_per_sec", 1.0),
    ]
    labels = [subject.label for subject in subjects]
    positions = list(range(len(subjects)))
    height = 0.38
    figure, axes = plt.subplots(
        1, len(panels), figsize=(13, 0.45 * len(subjects) + 1.6), sharey=True
    )
    colours = {"http": "#4c72b0", "https": "#dd8452"}
    for axis, (panel_title, large, metric, scale) in zip(axes, panels):
        for offset, scheme in ((-height / 2, "http"), (height / 2, "https")):
            scenario = _scenario_for(scenarios, large, scheme)
            if scenario is None:
                continue
            values = []
            for subject in subjects:
                summary = summaries.get((subject.name, scenario.name))
                value = None if summary is None else _metric(summary, metric)
                values.append(0.0 if value is None else value * scale)
            bars = axis.barh(
                [p + offset for p in positions],
                values,
                height=height,
                color=colours[scheme],
                label="HTTP" if scheme == "http" else "TLS",
            )
            for bar, value in zip(bars, values):
                if value:
                    text = f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
                    axis.text(
                        bar.get_width(),
                        bar.get_y() + bar.get_height() / 2,
                        " " + text,
                        va="center",
                        fontsize=7,
                    )
        axis.set_title(panel_title, fontsize=9)
        axis.tick_params(labelsize=8)
        axis.margins(x=0.25)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions)
    axes[0].set_yticklabels(labels)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return None
