"""
The source tree's shape: imports between lbproxy's modules flow one way
(no import cycles, lazy imports included), no module is over
L{MAX_LINES} lines, every package is declared in C{setup.cfg}, and the
Twisted plugin directory stays a plain directory.

These read the files (with L{ast}); nothing is imported.
"""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

#: The checkout: the directory holding C{setup.cfg}, C{lbproxy/} and
#: C{twisted/plugins/}.
ROOT = Path(__file__).resolve().parent.parent

#: The most lines a module under lbproxy/ may have.
MAX_LINES = 500

# No module is over the limit and no import is left out of the cycle
# search; a later exception belongs here, with its reason, and the test
# fails once it is no longer needed.
OVERSIZED_ALLOWED: FrozenSet[str] = frozenset()
#: Imports (importer, imported) left out of the cycle search.
BACK_EDGES_ALLOWED: FrozenSet[Tuple[str, str]] = frozenset()


def find_modules(root: Path, package: str = "lbproxy") -> Dict[str, Path]:
    """
    Every module of C{package} under C{root}, by dotted name; a package's
    C{__init__.py} is named for the package.
    """
    modules: Dict[str, Path] = {}
    for directory, dirnames, filenames in os.walk(root / package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        parts = Path(directory).relative_to(root).parts
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            stem = filename[:-3]
            name = ".".join(parts if stem == "__init__" else parts + (stem,))
            modules[name] = Path(directory) / filename
    return modules


def imported_modules(
    source: str, name: str, isPackage: bool, known: Iterable[str]
) -> Set[str]:
    """
    The modules among C{known} that the module C{name} imports, wherever
    the import statement is (module level, in a function, under
    C{if TYPE_CHECKING:}, in a C{try:}).

    C{from a.b import c} imports the module C{a.b.c} if there is one,
    else (C{c} being a name defined in it) C{a.b}.  Relative imports are
    resolved against C{name}.

    @param isPackage: Whether C{name} is a package (its C{__init__.py}).
    """
    known = set(known)
    tree = ast.parse(source)
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # "import a.b.c" imports a.b.c (and its parents, which are
                # packages and not counted).
                if alias.name in known:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if isPackage else name.split(".")[:-1]
                if node.level > 1:
                    package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def import_graph(root: Path) -> Dict[str, Set[str]]:
    """
    lbproxy's modules, each with the lbproxy modules it imports.
    """
    modules = find_modules(root)
    return {
        name: imported_modules(
            path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules
        )
        for name, path in modules.items()
    }


def cycles(graph: Mapping[str, Iterable[str]]) -> List[List[str]]:
    """
    One cycle for each group of modules that import each other (a
    strongly connected component with more than one module, or a module
    importing itself), as the modules along it with the first repeated at
    the end; sorted.
    """
    edges = {node: sorted(set(targets) & set(graph)) for node, targets in graph.items()}
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    onStack: Set[str] = set()
    components: List[List[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iteratively (no recursion limit to meet).
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        onStack.add(start)
        while work:
            node, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    onStack.add(target)
                    work.append((target, iter(edges[target])))
                    advanced = True
                    break
                if target in onStack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    onStack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(_cycle_through(edges, component) for component in components)


def _cycle_through(edges: Mapping[str, List[str]], component: List[str]) -> List[str]:
    """
    The shortest cycle from the first module of C{component} back to it,
    within the component.
    """
    first = component[0]
    members = set(component)
    previous: Dict[str, Optional[str]] = {first: None}
    queue = [first]
    for node in queue:
        for target in edges[node]:
            if target == first:
                path = []
                step: Optional[str] = node
                while step is not None:
                    path.append(step)
                    step = previous[step]
                return list(reversed(path)) + [first]
            if target in members and target not in previous:
                previous[target] = node
                queue.append(target)
    raise AssertionError(f"no cycle through {first}")  # pragma: no cover


def line_counts(root: Path) -> Dict[str, int]:
    """
    The number of lines of each lbproxy module.
    """
    return {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in find_modules(root).items()
    }


def declared_packages(setupCfg: Path) -> List[str]:
    """
    The packages C{setup.cfg} lists in C{[options] packages}.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(setupCfg, encoding="utf-8")
    value = parser.get("options", "packages", fallback="")
    return [line.strip() for line in value.splitlines() if line.strip()]


class ImportGraphTests(SynchronousTestCase):
    """
    The helpers, on made-up modules.
    """

    known = ["p", "p.a", "p.b", "p.sub", "p.sub.c"]

    def test_importForms(self) -> None:
        """
        Plain, from-module, from-package-import-module, relative and lazy
        imports all count; names that are not modules count as their
        module; outside modules do not count.
        """
        source = (
            "import os\n"
            "import p.a\n"
            "from p.sub import c\n"
            "from p import helper\n"
            "def f():\n"
            "    from .b import thing\n"
            "if False:\n"
            "    from . import sub\n"
        )
        self.assertEqual(
            imported_modules(source, "p.x", False, self.known),
            {"p.a", "p.sub.c", "p", "p.b", "p.sub"},
        )

    def test_relativeInPackage(self) -> None:
        """
        In a package's C{__init__}, C{.} is the package itself; C{..} its
        parent.
        """
        self.assertEqual(imported_modules("from . import c\n", "p.sub", True, self.known),
                         {"p.sub.c"})
        self.assertEqual(imported_modules("from .. import a\n", "p.sub", True, self.known),
                         {"p.a"})
        self.assertEqual(imported_modules("from ..b import x\n", "p.sub.c", False, self.known),
                         {"p.b"})

    def test_cycles(self) -> None:
        """
        Each group of modules importing each other is one cycle, listed
        along its imports; modules only importing others are not.
        """
        graph = {
            "a": {"b"},
            "b": {"c"},
            "c": {"a", "d"},
            "d": set(),
            "e": {"f", "a"},
            "f": {"e"},
            "g": {"g"},
        }
        self.assertEqual(cycles(graph), [["a", "b", "c", "a"], ["e", "f", "e"], ["g", "g"]])
        self.assertEqual(cycles({"a": {"b"}, "b": set()}), [])

    def test_shortestCycle(self) -> None:
        graph = {"a": {"b", "c"}, "b": {"c"}, "c": {"a"}}
        self.assertEqual(cycles(graph), [["a", "c", "a"]])

    def test_deep(self) -> None:
        """
        A long chain does not meet Python's recursion limit.
        """
        graph = {str(i): {str(i + 1)} for i in range(5000)}
        graph["5000"] = {"0"}
        (cycle,) = cycles(graph)
        self.assertEqual(len(cycle), 5002)


class LayoutTests(SynchronousTestCase):
    """
    lbproxy's own tree.
    """

    def setUp(self) -> None:
        if not (ROOT / "setup.cfg").exists() or not (ROOT / "lbproxy").is_dir():
            raise SkipTest("not run from a checkout")

    def test_noImportCycles(self) -> None:
        """
        No lbproxy module imports, directly or through others, a module
        that imports it: imports flow one way.  Lazy imports (in functions)
        and C{TYPE_CHECKING} imports count too.
        """
        graph = import_graph(ROOT)
        for importer, imported in BACK_EDGES_ALLOWED:
            self.assertIn(imported, graph.get(importer, set()),
                          f"allowed import {importer} -> {imported} is gone: "
                          "remove it from BACK_EDGES_ALLOWED")
            graph[importer].discard(imported)
        found = cycles(graph)
        if found:
            self.fail("import cycles:\n"
                      + "\n".join("  " + " -> ".join(cycle) for cycle in found))

    def test_moduleSize(self) -> None:
        """
        No module under lbproxy/ is over L{MAX_LINES} lines.
        """
        counts = line_counts(ROOT)
        over = {name: count for name, count in counts.items() if count > MAX_LINES}
        for name in sorted(OVERSIZED_ALLOWED):
            self.assertIn(name, over, f"{name} is within {MAX_LINES} lines now: "
                          "remove it from OVERSIZED_ALLOWED")
        offenders = sorted(set(over) - OVERSIZED_ALLOWED)
        if offenders:
            self.fail(f"modules over {MAX_LINES} lines:\n"
                      + "\n".join(f"  {name}: {over[name]}" for name in offenders))

    def test_packagesDeclared(self) -> None:
        """
        Every package under lbproxy/ (each directory with Python files,
        which must have an C{__init__.py}) is listed in C{setup.cfg}, and
        nothing listed there is missing.
        """
        packages = set()
        missingInit = []
        for directory, dirnames, filenames in os.walk(ROOT / "lbproxy"):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            if not any(f.endswith(".py") for f in filenames):
                continue
            name = ".".join(Path(directory).relative_to(ROOT).parts)
            packages.add(name)
            if "__init__.py" not in filenames:
                missingInit.append(name)
        self.assertEqual(missingInit, [], "directories without __init__.py")
        declared = set(declared_packages(ROOT / "setup.cfg"))
        self.assertEqual(sorted(packages - declared), [],
                         "packages missing from setup.cfg [options] packages")
        listed = {p for p in declared if p == "lbproxy" or p.startswith("lbproxy.")}
        self.assertEqual(sorted(listed - packages), [],
                         "setup.cfg lists packages that do not exist")
        self.assertIn("twisted.plugins", declared)

    def test_pluginDirectory(self) -> None:
        """
        twisted/plugins has no C{__init__.py} (Twisted's plugin system
        collects every twisted/plugins directory on the path; an
        C{__init__.py} would hide Twisted's own), and no C{dropin.cache}
        (written by Twisted at run time) is tracked.
        """
        plugins = ROOT / "twisted" / "plugins"
        self.assertTrue((plugins / "lbproxy_plugin.py").exists())
        self.assertFalse((plugins / "__init__.py").exists())
        self.assertFalse((ROOT / "twisted" / "__init__.py").exists())
        if not (ROOT / ".git").exists():
            raise SkipTest("not a git checkout")
        try:
            tracked = subprocess.run(
                ["git", "ls-files", "--", "twisted"],
                cwd=ROOT, capture_output=True, text=True, check=True,
            ).stdout.split()
        except (OSError, subprocess.CalledProcessError) as e:
            raise SkipTest(f"git ls-files: {e}")
        self.assertEqual([path for path in tracked if Path(path).name == "dropin.cache"], [])
        self.assertNotIn("twisted/plugins/__init__.py", tracked)
