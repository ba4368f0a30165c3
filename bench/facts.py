"""
Facts about the machine and the software versions of a run, recorded
with its results.
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Dict, List, Optional, Sequence

__all__ = [
    "from_tree",
    "interpreter_facts",
    "load_average",
    "machine_facts",
    "parse_probe",
    "tool_version",
]

#: Prints C{bench-probe: KEY=VALUE} lines (anything else the imports print
#: is ignored): the interpreter's tag and version, Twisted's version,
#: whether lbproxy imports and from where, and which module and file
#: C{twistd lbproxy} would take the plugin's service maker from.
_INTERPRETER_PROBE = (
    "import os, platform, sys\n"
    "def out(key, value):\n"
    "    sys.stdout.write('bench-probe: %s=%s\\n' % (key, value))\n"
    "    sys.stdout.flush()\n"
    "name = platform.python_implementation().lower()\n"
    "out('tag', '%s%d.%d' % ('pypy' if name == 'pypy' else 'cpython', *sys.version_info[:2]))\n"
    "extra = getattr(sys, 'pypy_version_info', None)\n"
    "extra = ' (PyPy %d.%d.%d)' % tuple(extra[:3]) if extra else ''\n"
    "out('python', platform.python_implementation() + ' ' + platform.python_version() + extra)\n"
    "try:\n"
    "    import twisted\n"
    "    out('twisted', twisted.__version__)\n"
    "except Exception as e:\n"
    "    out('twisted', '')\n"
    "try:\n"
    "    import lbproxy\n"
    "    out('lbproxy', 'yes')\n"
    "    out('lbproxy_dir', os.path.dirname(os.path.abspath(lbproxy.__file__)))\n"
    "except Exception as e:\n"
    "    out('lbproxy', 'no: %s' % (str(e).splitlines() or [type(e).__name__])[0])\n"
    "try:\n"
    "    from twisted.plugin import getPlugins\n"
    "    from twisted.application.service import IServiceMaker\n"
    "    found = [p for p in getPlugins(IServiceMaker) if getattr(p, 'tapname', '') == 'lbproxy']\n"
    "    if found:\n"
    "        plugin = sys.modules.get('twisted.plugins.lbproxy_plugin')\n"
    "        out('plugin', found[-1].module)\n"
    "        out('plugin_file', os.path.abspath(getattr(plugin, '__file__', '') or ''))\n"
    "        __import__(found[-1].module)\n"
    "        tap = sys.modules[found[-1].module]\n"
    "        out('tap_file', os.path.abspath(tap.__file__))\n"
    "except Exception as e:\n"
    "    out('plugin_error', (str(e).splitlines() or [type(e).__name__])[0])\n"
)


def _run(
    command: Sequence[str], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None
) -> Optional[str]:
    try:
        done = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace")


def lbproxy_revision(repo: str) -> str:
    """
    The commit lbproxy runs from, and whether its code differs from it
    (read-only git commands; no optional index lock is taken).
    """
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    commit = (_run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], env=env) or "").strip()
    if not commit or " " in commit or not os.path.exists(os.path.join(repo, ".git")):
        return f"unknown ({repo} is not a git checkout)"
    try:
        changed = subprocess.run(
            ["git", "-C", repo, "diff", "--quiet", "HEAD", "--", "lbproxy", "twisted"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            timeout=30,
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return commit
    return commit + (" with uncommitted changes to lbproxy/" if changed == 1 else "")


def tool_version(command: Sequence[str]) -> str:
    """
    The first line C{command} prints (C{nginx -v}, C{wrk -v}, ...), or
    C{"unavailable"}.
    """
    output = _run(command)
    if not output or not output.strip():
        return "unavailable"
    return output.strip().splitlines()[0].strip()


def parse_probe(output: str) -> Dict[str, str]:
    """
    The C{KEY=VALUE} pairs of the probe's C{bench-probe:} lines.
    """
    found: Dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith("bench-probe: ") and "=" in line:
            key, _, value = line[len("bench-probe: ") :].partition("=")
            found[key] = value.strip()
    return found


def interpreter_facts(
    python: str, cwd: str, env: Optional[Dict[str, str]] = None
) -> Dict[str, str]:
    """
    What C{python} is: C{tag} (C{"cpython3.11"}, C{"pypy3.9"}), C{python}
    (implementation and version), C{twisted} (its version, empty if it
    cannot import Twisted) and C{lbproxy} (C{"yes"} or why not), the
    imports tried from C{cwd} (the tree lbproxy runs from) with C{env}
    (the servers' environment); when lbproxy imports, C{lbproxy_dir}
    (where from), and C{plugin}, C{plugin_file} and C{tap_file}: the
    module C{twistd lbproxy} would make the service with, the twistd
    plugin file that names it and that module's file.
    """
    output = _run([python, "-c", _INTERPRETER_PROBE], cwd=cwd, env=env)
    found = parse_probe(output or "")
    if not all(key in found for key in ("tag", "python", "twisted", "lbproxy")):
        lines = [
            line for line in (output or "could not run it").strip().splitlines()
            if not line.startswith("bench-probe: ")
        ]
        reason = lines[-1:] or ["no output"]
        return {
            "tag": os.path.basename(python),
            "python": "unavailable",
            "twisted": "",
            "lbproxy": f"no: {reason[0]}",
            "path": python,
        }
    facts = {key: found[key] for key in ("tag", "python", "twisted", "lbproxy")}
    for key in ("lbproxy_dir", "plugin", "plugin_file", "tap_file", "plugin_error"):
        if key in found:
            facts[key] = found[key]
    facts["path"] = python
    return facts


def from_tree(facts: Dict[str, str], root: str) -> Optional[str]:
    """
    L{None} if the interpreter of C{facts} imports lbproxy, its twistd
    plugin and the plugin's service maker all from C{root}, else what
    comes from elsewhere.
    """
    top = os.path.join(os.path.realpath(root), "")
    for key, what in (
        ("lbproxy_dir", "lbproxy"),
        ("plugin_file", "the twistd plugin"),
        ("tap_file", "the plugin's module"),
    ):
        path = facts.get(key)
        if not path:
            if key == "lbproxy_dir" or "plugin_error" not in facts:
                return f"{what} not found"
            return f"{what} not found: {facts['plugin_error']}"
        if not os.path.join(os.path.realpath(path), "").startswith(top):
            return f"{what} is imported from {path}, not from {root}"
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return "%.1f GiB" % (int(line.split()[1]) / (1 << 20))
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def load_average() -> str:
    """
    The 1, 5 and 15 minute load averages, as C{uptime} prints them.
    """
    try:
        return "%.2f, %.2f, %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


def machine_facts(repo: str, nginx: str, haproxy: str, wrk: str) -> Dict[str, str]:
    """
    CPU, memory, kernel, OS, tool versions and lbproxy's commit.
    """
    facts: Dict[str, str] = {
        "cpu": _cpu_model(),
        "cpus": str(os.cpu_count()),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "os": _os_name(),
        "nginx": tool_version([nginx, "-v"]).replace("nginx version: ", ""),
        "haproxy": tool_version([haproxy, "-v"]).replace(" version ", " ").split(" - ")[0],
        "wrk": tool_version([wrk, "-v"]).split(" Copyright")[0],
        "openssl": tool_version(["openssl", "version"]).split(" (Library")[0],
        "lbproxy_commit": lbproxy_revision(repo),
    }
    return facts


def summary_lines(facts: Dict[str, str], interpreters: List[Dict[str, str]]) -> List[str]:
    """
    The facts as short C{key: value} lines for the report.
    """
    lines = [
        f"machine: {facts['cpu']}, {facts['cpus']} CPUs, {facts['memory']}",
        f"system: {facts['os']}, {facts['kernel']}",
        f"{facts['nginx']}; {facts['haproxy']}; {facts['wrk']}; {facts['openssl']}",
    ]
    for item in interpreters:
        twisted = item["twisted"] or "no Twisted"
        lines.append(f"{item['tag']}: {item['python']}; Twisted {twisted}")
    lines.append(f"lbproxy commit: {facts['lbproxy_commit']}")
    if facts.get("baseline_root"):
        lines.append(
            f"baseline lbproxy@{facts['baseline_label']}: {facts['baseline_root']}, "
            f"commit {facts['baseline_commit']}"
        )
    return lines
