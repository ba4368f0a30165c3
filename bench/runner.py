"""
One benchmark run: start the backend and every subject, measure them in
an interleaved schedule, stop everything, write the report.

Every process is started through L{bench.harness.Processes} and stopped by
its process id in a C{finally}; every wrk run has a fixed duration.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Set

from bench import facts as machine
from bench.harness import (
    Processes,
    ServerGone,
    make_certificate,
    pinning,
    tree_cpu_seconds,
)
from bench.plan import Scenario, default_scenarios, estimate_seconds, interleave
from bench.report import (
    Measurement,
    baseline_rows,
    draw_chart,
    markdown_report,
    summarize,
    write_csv,
    write_json,
)
from bench.settings import Settings
from bench.subjects import Lineup, Running, child_env, write
from bench.wrk import WrkOutputError, parse_wrk, wrk_command

__all__ = ["measure", "run"]

#: Log bytes of each server kept with the results.
LOG_TAIL = 64 * 1024


def measure(
    running: Running,
    scenario: Scenario,
    number: int,
    duration: int,
    wrk: str,
    cpus: Optional[Set[int]],
) -> Measurement:
    """
    One wrk run of C{duration} seconds against C{running}, wrk pinned to
    C{cpus}, with the CPU time the subject's processes used meanwhile.

    @param number: The round (0 for a warm-up).
    """
    url = running.url(scenario)
    assert url is not None
    command = wrk_command(url, duration, scenario.connections, wrk=wrk)
    pid = running.started.pid
    cpu_before = tree_cpu_seconds(pid)
    began = time.monotonic()
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=duration + 30,
            preexec_fn=pinning(cpus),
        )
    except subprocess.TimeoutExpired:
        return Measurement(number, running.subject.name, scenario.name, error="wrk did not finish")
    wall = time.monotonic() - began
    cpu = 100.0 * (tree_cpu_seconds(pid) - cpu_before) / wall
    try:
        result = parse_wrk(done.stdout.decode("utf-8", "replace"))
    except WrkOutputError as e:
        return Measurement(number, running.subject.name, scenario.name, error=str(e))
    return Measurement(
        round=number,
        subject=running.subject.name,
        scenario=scenario.name,
        requests_per_sec=result.requests_per_sec,
        mib_per_sec=result.bytes_per_sec / (1 << 20),
        p50=result.percentile(50),
        p99=result.percentile(99),
        requests=result.requests,
        socket_errors=result.socket_errors,
        non_2xx=result.non_2xx,
        cpu_percent=cpu,
    )


def _describe(measurement: Measurement) -> str:
    if measurement.error:
        return f"FAILED: {measurement.error}"
    text = f"{measurement.requests_per_sec:10,.0f} req/s {measurement.mib_per_sec:8.1f} MiB/s"
    if measurement.p99 is not None:
        text += f"  p99 {measurement.p99 * 1000:7.2f} ms"
    if measurement.cpu_percent is not None:
        text += f"  cpu {measurement.cpu_percent:3.0f}%"
    if measurement.socket_errors or measurement.non_2xx:
        text += f"  errors {measurement.socket_errors} non-2xx {measurement.non_2xx}"
    return text


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(settings: Settings) -> int:
    """
    Do a whole run; the exit status: 0 when something was measured.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = os.path.join(settings.results, stamp)
    os.makedirs(out, exist_ok=True)
    temp = tempfile.mkdtemp(prefix="lbproxy-bench-")
    processes = Processes(temp)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(settings, temp, out, processes)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping every server", flush=True)
        return 130
    except ServerGone as e:
        print(f"bench: the backend did not start: {e}", flush=True)
        return 1
    finally:
        _keep_logs(processes, temp, out)
        processes.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if settings.keep_temp:
            print(f"bench: temporary files kept in {temp}")
        else:
            shutil.rmtree(temp, ignore_errors=True)


def _keep_logs(processes: Processes, temp: str, out: str) -> None:
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    for name in sorted(os.listdir(temp)):
        if not name.endswith(".log") or name.endswith("-access.log"):
            continue
        with open(os.path.join(temp, name), "rb") as source:
            source.seek(0, os.SEEK_END)
            source.seek(max(0, source.tell() - LOG_TAIL))
            data = source.read()
        with open(os.path.join(logs, name), "wb") as target:
            target.write(data)


def _interpreters(settings: Settings, root: Optional[str] = None) -> List[Dict[str, str]]:
    """
    The main interpreter and those of C{--python}, each with a distinct
    tag, their imports tried as lbproxy's processes will make them: from
    C{root} (default: the tree lbproxy runs from).
    """
    root = root or settings.lbproxy_root
    env = child_env(root)
    interpreters = [machine.interpreter_facts(settings.python, root, env)]
    for python in settings.pythons:
        interpreter = machine.interpreter_facts(shutil.which(python) or python, root, env)
        tags = {i["tag"] for i in interpreters[1:]}
        base, number = interpreter["tag"], 2
        while interpreter["tag"] in tags:
            interpreter["tag"], number = f"{base}-{number}", number + 1
        interpreters.append(interpreter)
    return interpreters


def _baseline_interpreters(
    settings: Settings, interpreters: List[Dict[str, str]]
) -> Optional[List[Dict[str, str]]]:
    """
    With C{--baseline-root}: the same interpreters (and tags), their
    imports tried from the baseline tree.
    """
    if not settings.baseline_root:
        return None
    baselines = _interpreters(settings, settings.baseline_root)
    for interpreter, baseline in zip(interpreters, baselines):
        baseline["tag"] = interpreter["tag"]
    return baselines


def _run(settings: Settings, temp: str, out: str, processes: Processes) -> int:
    for program in (settings.nginx, settings.wrk):
        if not shutil.which(program):
            print(f"bench: {program} not found (bash bench/run installs it)", flush=True)
            return 1
    started_at = time.time()
    load_before = machine.load_average()
    facts = machine.machine_facts(
        settings.lbproxy_root, settings.nginx, settings.haproxy, settings.wrk
    )
    interpreters = _interpreters(settings)
    baselines = _baseline_interpreters(settings, interpreters)
    if settings.baseline_root:
        facts["baseline_root"] = settings.baseline_root
        facts["baseline_label"] = settings.baseline_label
        facts["baseline_commit"] = machine.lbproxy_revision(settings.baseline_root)
    for line in machine.summary_lines(facts, interpreters):
        print(f"bench: {line}")
    print(f"bench: load average before: {load_before}", flush=True)

    tls = make_certificate(temp) if settings.tls else None
    scenarios = default_scenarios(settings.connections, settings.large_connections, settings.tls)
    lineup = Lineup(settings, temp, processes, tls, interpreters, baselines)

    print("bench: starting the backend", flush=True)
    backend = lineup.start_backend()
    for scenario in scenarios:
        problem = lineup.check(backend, scenario)
        if problem:
            raise SystemExit(f"bench: the backend does not work ({scenario.name}): {problem}")
    lineup.start_subjects()

    available: Dict[str, Set[str]] = {}
    for running in lineup.running:
        for scenario in scenarios:
            problem = lineup.check(running, scenario)
            if problem is None:
                available.setdefault(running.subject.name, set()).add(scenario.name)
            elif problem != "no TLS listener":
                lineup.note(f"{running.subject.label}, {scenario.name} not measured: {problem}")
    by_name = {running.subject.name: running for running in lineup.running}
    names = [r.subject.name for r in lineup.running if r.subject.name in available]
    schedule = [
        item
        for item in interleave(names, scenarios, settings.rounds)
        if item[1].name in available[item[2]]
    ]
    warmups = [
        (name, scenario)
        for scenario in scenarios
        for name in names
        if settings.warmup and scenario.name in available[name]
    ]
    seconds = estimate_seconds(len(schedule), settings.duration, len(warmups), settings.warmup)
    print(
        f"bench: {len(schedule)} measurements of {settings.duration} s in {settings.rounds} "
        f"round(s), {len(warmups)} warm-ups of {settings.warmup} s: "
        f"about {seconds // 60} min {seconds % 60} s",
        flush=True,
    )
    load_cpus = lineup.load_cpus()
    for name, scenario in warmups:
        measure(by_name[name], scenario, 0, settings.warmup, settings.wrk, load_cpus)
    if warmups:
        print("bench: warmed up", flush=True)

    measurements: List[Measurement] = []
    for index, (number, scenario, name) in enumerate(schedule, 1):
        measurement = measure(
            by_name[name], scenario, number, settings.duration, settings.wrk, load_cpus
        )
        measurements.append(measurement)
        print(
            f"bench: [{index:3d}/{len(schedule)}] round {number} {scenario.name:10s} {name:20s} "
            + _describe(measurement),
            flush=True,
        )

    load_after = machine.load_average()
    for running in lineup.running:
        status = running.started.process.poll()
        if status is not None:
            lineup.note(f"{running.subject.label} exited during the run (status {status})")
    subjects = [r.subject for r in lineup.running if r.subject.name in available]
    summaries = summarize(measurements)
    elapsed = time.time() - started_at
    cpu_note = (
        "servers under test pinned to CPU %s, wrk and the backend to CPU %s"
        % (_cpu_list(settings.proxy_cpus), _cpu_list(settings.load_cpus))
        if settings.pin
        else "no CPU pinning"
    )
    header = [
        f"command: {settings.command}",
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started_at))}; "
        f"took {elapsed / 60:.1f} min; load average before {load_before}, after {load_after}",
        f"{settings.rounds} round(s) x {settings.duration} s per measurement, median of the rounds; "
        f"warm-up {settings.warmup} s; wrk -t1, {cpu_note}",
    ] + machine.summary_lines(facts, interpreters)
    if lineup.negotiated:
        header.append(f"TLS (as a Python client negotiates it): {_tls_summary(lineup.negotiated)}")
    table = markdown_report(subjects, scenarios, summaries, lineup.notes, measurements)
    text = "\n".join(f"    {line}" for line in header) + "\n\n" + table
    print()
    print(text)

    write(out, "table.md", text)
    write_csv(os.path.join(out, "results.csv"), measurements)
    write_json(
        os.path.join(out, "results.json"),
        {
            "command": settings.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at)),
            "seconds": round(elapsed, 1),
            "settings": {
                "duration": settings.duration,
                "rounds": settings.rounds,
                "warmup": settings.warmup,
                "connections": settings.connections,
                "large_connections": settings.large_connections,
                "tls": settings.tls,
                "quick": settings.quick,
                "pinning": cpu_note,
            },
            "load_average": {"before": load_before, "after": load_after},
            "machine": facts,
            "interpreters": interpreters,
            "baseline_interpreters": baselines,
            "subjects": [
                {
                    "name": s.name,
                    "label": s.label,
                    "kind": s.kind,
                    "root": s.root,
                    "baseline_for": s.baseline_for,
                }
                for s in subjects
            ],
            "scenarios": [s.__dict__ for s in scenarios],
            "notes": lineup.notes,
            "tls_negotiated": lineup.negotiated,
            "measurements": [m.as_row() for m in measurements],
            "summary": [s.__dict__ for s in summaries.values()],
            "against_baseline": [
                row.as_dict() for row in baseline_rows(measurements, subjects, scenarios)
            ],
        },
    )
    title = (
        f"{'quick ' if settings.quick else ''}bench: {facts['cpu']}, {facts['cpus']} CPUs; "
        f"{settings.rounds}x{settings.duration} s; {interpreters[0]['python']}, "
        f"Twisted {interpreters[0]['twisted']}"
    )
    problem = draw_chart(os.path.join(out, "bench.png"), subjects, scenarios, summaries, title)
    if problem:
        print(f"bench: {problem}")
    print(f"bench: results in {out}")
    return 0 if summaries else 1


def _cpu_list(cpus: Set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def _tls_summary(negotiated: Dict[str, str]) -> str:
    kinds = sorted(set(negotiated.values()))
    if len(kinds) == 1:
        return f"{kinds[0]} with every server"
    return "; ".join(f"{name} {value}" for name, value in negotiated.items())
