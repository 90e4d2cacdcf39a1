"""The layout shows the architecture and keeps its rules (docs/architecture.md#layout):

- no import cycle among the package's modules, counting function-level imports and the package
  ``__init__`` every import of a submodule runs first;
- a function-level import says, in a comment, why it is deferred (a measured import cost);
- ``defs/`` (Dagster objects) sits over ``lib/`` (Dagster-free engines): nothing under ``lib/``
  imports Dagster or ``defs/``;
- nothing outside ``settings.py`` reads or writes ``os.environ``;
- no citation of documents a user of the project does not have.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from dagster_project.settings import REPO_ROOT

PACKAGE = REPO_ROOT / "dagster_project"
ROOTS = ("dagster_project", "dbt", "expectations")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING")


def imports(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported package module, line, function-level) for every import of the package in a file;
    ``if TYPE_CHECKING:`` blocks never run and are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else []))
                # ``from pkg import sub`` runs pkg.sub; ``from pkg import name`` runs pkg's __init__
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names]
            for name in names:
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name and name != this:
                    out.append((name, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules its imports run: the imported module itself (a package's
    ``__init__`` when names are imported from the package) and every package ``__init__`` on its
    path (``import a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``) — except the importer's own enclosing
    packages, which are already running when it runs."""
    mods = modules()
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _, _ in imports(path, known):
            graph[name].add(target)
            parts = target.split(".")
            for i in range(1, len(parts)):
                prefix = ".".join(parts[:i])
                if prefix in known and not name.startswith(prefix + "."):
                    graph[name].add(prefix)
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_a_cycle_through_a_package_init():
    graph = {"p": {"p.a"}, "p.a": {"p.b", "p"}, "p.b": set(), "q": {"p.b"}}
    assert cycles(graph) == [["p", "p.a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


DEFERRED = re.compile(r"#.*\b(deferred|import cost|costs?\b.*\bs\b)", re.I)


def test_function_level_imports_say_why_they_are_deferred():
    """Only where a measured import cost justifies it, said in a comment on the import or just above."""
    mods = modules()
    undocumented = []
    for name, path in mods.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    context = "\n".join(lines[max(inner.lineno - 3, 0):inner.end_lineno])
                    if not DEFERRED.search(context):
                        undocumented.append(f"{path.relative_to(REPO_ROOT)}:{inner.lineno}")
    assert sorted(set(undocumented)) == [], "function-level imports without a reason:\n" + "\n".join(sorted(set(undocumented)))


def test_engines_under_lib_do_not_import_dagster_or_defs():
    mods = modules()
    offenders = []
    for name, path in mods.items():
        if not name.startswith("dagster_project.lib"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for target in targets:
                if target.split(".")[0] in ("dagster", "dagster_dbt") or target.startswith(("dagster_project.defs",
                                                                                           "dagster_project.cli")):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {target}")
    assert offenders == []


def test_only_the_settings_module_touches_the_environment():
    offenders = []
    for name, path in modules().items():
        if name == "dagster_project.settings":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv") \
                    and getattr(node.value, "id", None) == "os":
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} os.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                    {a.name for a in node.names} & {"environ", "getenv", "putenv"}:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} from os import ...")
    assert offenders == []


def test_no_citation_of_documents_outside_the_repository():
    """The issue's own grep: code, yml and published comments cite the repository's docs/ only."""
    result = subprocess.run(["grep", "-rn", r"DESIGN §\|metrics-research\|issue [0-9]", *ROOTS],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    hits = [line for line in result.stdout.splitlines() if "/target/" not in line and "/logs/" not in line]
    assert hits == [], "\n".join(hits[:40])


def test_docs_the_code_cites_exist():
    """Every ``docs/<file>.md`` a module, model or suite cites is in the repository."""
    cited = set()
    for root in ROOTS:
        for path in (REPO_ROOT / root).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sql", ".yml", ".json", ".yaml") and "target" not in path.parts:
                cited |= set(re.findall(r"docs/([a-z_-]+\.md)", path.read_text(encoding="utf-8", errors="ignore")))
    missing = sorted(c for c in cited if not (REPO_ROOT / "docs" / c).exists())
    assert missing == [], missing
