"""The server's dependency set (deploy/server-requirements.txt) covers every module winspectserv can
import, at module level or inside a function, and leaves the client's dependencies out of the image."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support.deploy import REPO

SERVER_ENTRY = "winspect.server.main"
CLIENT_ONLY = {"click", "lightkube", "cryptography", "httpx", "anyio", "distlib", "cffi"}
# Environment markers as the Windows image's Python evaluates them, and as this one does.
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "extra": ""}


def server_requirements() -> list[Requirement]:
    lines = (REPO / "deploy" / "server-requirements.txt").read_text().splitlines()
    return [Requirement(ln.split("#", 1)[0]) for ln in lines if ln.split("#", 1)[0].strip()]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> list[str]:
    """Names imported anywhere in `tree` (functions included), outside `if TYPE_CHECKING:` blocks."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_by(*entries: str) -> tuple[set[str], set[str]]:
    """(winspect modules reachable from `entries`, top-level names of everything else they import)."""
    seen: set[str] = set()
    outside: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue  # `from winspect.x import function`: the module itself is queued too
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
        for imported in _imports(ast.parse(Path(spec.origin).read_text(encoding="utf-8")), package):
            top = imported.split(".")[0]
            if top == "winspect":
                todo.append(imported)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                outside.add(top)
    return seen, outside


def closure(requirements: list[Requirement]) -> set[str]:
    """Distributions the requirements bring (installed metadata), with markers of Windows or here."""
    here = {**default_environment(), "extra": ""}
    found: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        if req.marker is not None and not (req.marker.evaluate(WINDOWS) or req.marker.evaluate(here)):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        found.add(name)
        todo.extend(Requirement(r) for r in importlib.metadata.requires(name) or [])
    return found


def test_every_module_the_server_imports_comes_from_the_server_set() -> None:
    modules, outside = imported_by(SERVER_ENTRY)
    # the scan follows the server into the node backend and sees imports inside functions
    assert {
        "winspect.server.app",
        "winspect.node.windows.capture",
        "winspect.server.auth_kube_config",
    } <= modules
    assert "yaml" in outside  # imported only inside a function (winspectserv --kubeconfig)
    shipped = closure(server_requirements())
    providers = importlib.metadata.packages_distributions()
    missing = {
        top: providers.get(top)
        for top in outside
        if not {canonicalize_name(d) for d in providers.get(top, [])} & shipped
    }
    assert not missing, (
        f"the server imports modules that deploy/server-requirements.txt does not bring: {missing}"
    )
    assert not {canonicalize_name(d) for d in CLIENT_ONLY} & shipped


def test_server_set_has_the_same_bounds_as_the_package() -> None:
    declared = {
        canonicalize_name(r.name): r.specifier
        for r in map(Requirement, importlib.metadata.requires("winspect") or [])
        if r.marker is None
    }
    for req in server_requirements():
        name = canonicalize_name(req.name)
        assert name in declared, f"{req.name} is in the server set but not a dependency of winspect"
        assert req.specifier == declared[name], (req, declared[name])


def test_the_scan_finds_what_the_client_imports() -> None:
    """The same scan from the CLI finds the client's dependencies: the check above can fail."""
    _, outside = imported_by("winspect.cli.main", "winspect.client.security", "winspect.kube.cluster")
    assert {"click", "lightkube", "cryptography", "grpc"} <= outside
