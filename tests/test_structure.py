"""The shape of src/winspect, read from its source (AST): which layer imports which, and sizes.

Layers: no import cycle between the top-level packages (cli, client, deploy,
sandbox, emulator, server, node, v1 and any new one) nor between modules;
`server` imports no `node.windows` module except in the one module that wires
the Windows backend in; `node` imports neither `client` nor `server`, nor
`client` either of them; `records` (the parsers of pktmon's packet records,
run by the node and by the client) imports no other winspect package than
`v1`; only `cli` imports click. Sizes: no module over 450 lines outside the emulator and
the generated code (v1); no function over 80 lines outside the emulator, and
none of 150 lines or more in it.

Every import counts, also one inside a function or under TYPE_CHECKING: a
deferred import hides a dependency from the interpreter, not from the reader.
Each check is first run on small module trees written here, so it is known to
find what it looks for.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "winspect"
ROOT = "winspect"

# The module that constructs the Windows backend for the server (its wiring, not its core).
WINDOWS_BACKEND_WIRING = frozenset({"winspect.server.app"})
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
EMULATOR_FUNCTION_LIMIT = 150  # emulator functions must stay under this
MODULE_SIZE_EXEMPT = ("emulator", "v1")  # emulated tools' fixtures-like output, generated protobuf


# ---------------------------------------------------------------- reading a tree


@dataclass(frozen=True)
class Module:
    name: str  # dotted: winspect.server.app
    path: Path
    tree: ast.Module
    lines: int

    @property
    def package(self) -> str:
        """The top-level package below the root ("server"); "" for the root module itself."""
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else ""

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def load_tree(root: Path) -> dict[str, Module]:
    """Every module under `root`, the directory of the root package, by dotted name."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name = ".".join(parts)
        modules[name] = Module(name, path, ast.parse(text, str(path)), len(text.splitlines()))
    return modules


def _resolve(name: str, known: Collection[str]) -> str:
    """The longest prefix of `name` that is a known module; `name` itself for other libraries."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return name


def imports(module: Module, known: Collection[str]) -> set[str]:
    """The modules `module` imports anywhere in its body: known modules resolved, others as written."""
    found: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name, known) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.name.split(".")
                if not module.is_package:
                    package = package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else _resolve(base, known))
    found.discard(module.name)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# ---------------------------------------------------------------- the rules


def _cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan), each sorted; edges: a -> {b: witness}."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(groups)


def _describe(groups: list[list[str]], edges: dict[str, dict[str, str]], what: str) -> list[str]:
    out = []
    for group in groups:
        inside = [f"{a} -> {b} ({edges[a][b]})" for a in group for b in sorted(edges[a]) if b in group]
        out.append(f"{what} cycle {' <-> '.join(group)}: " + "; ".join(inside))
    return out


def package_cycles(modules: dict[str, Module]) -> list[str]:
    """Cycles between top-level packages, each edge with one import that makes it."""
    edges: dict[str, dict[str, str]] = {}
    for m in modules.values():
        for target in sorted(imports(m, modules)):
            if target in modules and m.package and modules[target].package not in ("", m.package):
                edges.setdefault(m.package, {}).setdefault(
                    modules[target].package, f"{m.name} imports {target}"
                )
    return _describe(_cycles(edges), edges, "package")


def module_cycles(modules: dict[str, Module]) -> list[str]:
    """Cycles between modules (a package's __init__ counts as a module)."""
    edges: dict[str, dict[str, str]] = {}
    for m in modules.values():
        for target in sorted(imports(m, modules)):
            if target in modules:
                edges.setdefault(m.name, {})[target] = "imports"
    return _describe(_cycles(edges), edges, "module")


def forbidden_imports(
    modules: dict[str, Module], importer: str, imported: tuple[str, ...], allowed: Collection[str] = ()
) -> list[str]:
    """Imports of `imported` (dotted prefixes) by modules of package `importer`, except the `allowed` ones."""
    out = []
    for m in modules.values():
        if m.name in allowed or not _within(m.name, importer):
            continue
        for target in sorted(imports(m, modules)):
            if any(_within(target, p) for p in imported):
                out.append(f"{m.name} imports {target}")
    return out


def click_outside_cli(modules: dict[str, Module]) -> list[str]:
    return [
        f"{m.name} imports {target}"
        for m in modules.values()
        if m.package != "cli"
        for target in sorted(imports(m, modules))
        if _within(target, "click")
    ]


def long_modules(modules: dict[str, Module], limit: int = MAX_MODULE_LINES) -> list[str]:
    return [
        f"{m.name}: {m.lines} lines (at most {limit})"
        for m in modules.values()
        if m.package not in MODULE_SIZE_EXEMPT and m.lines > limit
    ]


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def long_functions(
    modules: dict[str, Module], limit: int = MAX_FUNCTION_LINES, emulator_limit: int = EMULATOR_FUNCTION_LIMIT
) -> list[str]:
    """Functions over `limit` lines outside the emulator, of `emulator_limit` lines or more in it."""
    out = []
    for m in modules.values():
        for fn in _functions(m.tree):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if m.package == "emulator":
                if length >= emulator_limit:
                    out.append(f"{m.name}.{fn.name}: {length} lines (emulator: under {emulator_limit})")
            elif length > limit:
                out.append(f"{m.name}.{fn.name}: {length} lines (at most {limit})")
    return out


def server_imports_of_node_windows(modules: dict[str, Module]) -> list[str]:
    return forbidden_imports(modules, "winspect.server", ("winspect.node.windows",), WINDOWS_BACKEND_WIRING)


def node_imports_of_client_or_server(modules: dict[str, Module]) -> list[str]:
    return forbidden_imports(modules, "winspect.node", ("winspect.client", "winspect.server"))


def client_imports_of_node_or_server(modules: dict[str, Module]) -> list[str]:
    return forbidden_imports(modules, "winspect.client", ("winspect.node", "winspect.server"))


def records_imports_beyond_the_api(modules: dict[str, Module]) -> list[str]:
    """Imports of other winspect packages than `v1` by `records`, which node and client share."""
    others = {f"winspect.{m.package}" for m in modules.values() if m.package not in ("", "records", "v1")}
    return forbidden_imports(modules, "winspect.records", tuple(sorted(others)))


# ---------------------------------------------------------------- the rules on small trees


def write_tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    """A `winspect` package of `files` (path below the package -> source); every folder gets an __init__."""
    root = tmp_path / ROOT
    for rel, text in files.items():
        path = root / rel
        for folder in [root, *[root / p for p in Path(rel).parents if str(p) != "."]]:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "__init__.py").touch()
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_tree(root)


def _body(lines: int) -> str:
    """A function of exactly `lines` lines."""
    return "def f():\n" + "    x = 0\n" * (lines - 2) + "    return x\n"


CLEAN = {
    "cli/main.py": """
        import click
        from click.shell_completion import CompletionItem
        from winspect.client import fanout
        from . import options
    """,
    "cli/options.py": "import click\n",
    "client/fanout.py": """
        from typing import TYPE_CHECKING
        from winspect.v1 import api
        if TYPE_CHECKING:
            from winspect.cluster.access import Api
    """,
    "cluster/access.py": "from winspect.v1 import api\n",
    "deploy/install.py": "from winspect.cluster import access\n",
    "server/app.py": """
        from winspect.node.windows.backend import WindowsBackend
        from winspect.server import core
    """,
    "server/core.py": "from winspect.node import types\nfrom winspect.v1 import api\n",
    "node/types.py": "",
    "node/windows/backend.py": """
        from winspect.node import types
        from winspect.node.windows.parsers import pktmon
    """,
    "node/windows/parsers/pktmon.py": "",
    "v1/api.py": "",
    "emulator/big.py": "x = 1\n" * 600 + _body(149),
    "v1/generated.py": "x = 1\n" * 600,
    "sandbox/objects.py": _body(80) + "y = 1\n" * 300,
}


def test_a_tree_that_keeps_the_rules_passes_every_check(tmp_path: Path) -> None:
    modules = write_tree(tmp_path, CLEAN)
    assert "winspect.node.windows.parsers.pktmon" in modules
    assert imports(modules["winspect.cli.main"], modules) == {
        "click",
        "click.shell_completion",
        "winspect.client.fanout",
        "winspect.cli.options",
    }
    assert imports(modules["winspect.client.fanout"], modules) == {
        "typing",
        "winspect.v1.api",
        "winspect.cluster.access",
    }
    assert package_cycles(modules) == []
    assert module_cycles(modules) == []
    assert server_imports_of_node_windows(modules) == []
    assert node_imports_of_client_or_server(modules) == []
    assert click_outside_cli(modules) == []
    assert long_modules(modules) == []
    assert long_functions(modules) == []


def test_a_cycle_between_packages_is_found_also_through_a_deferred_import(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "client/targets.py": "from winspect.deploy.install import NAMESPACE\n",
            "deploy/install.py": "def run():\n    from winspect.client import targets\n",
            "v1/api.py": "",
        },
    )
    assert package_cycles(modules) == [
        "package cycle client <-> deploy: "
        "client -> deploy (winspect.client.targets imports winspect.deploy.install); "
        "deploy -> client (winspect.deploy.install imports winspect.client.targets)"
    ]


def test_a_cycle_through_three_packages_is_found(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "cli/a.py": "import winspect.client.b\n",
            "client/b.py": "from winspect.deploy import c\n",
            "deploy/c.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from winspect.cli import a
            """,
        },
    )
    [cycle] = package_cycles(modules)
    assert cycle.startswith("package cycle cli <-> client <-> deploy: ")


def test_a_cycle_between_modules_of_one_package_is_found(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "cli/main.py": "def register():\n    from winspect.cli.completion import setup\n",
            "cli/completion.py": "def complete():\n    from . import main\n",
        },
    )
    assert package_cycles(modules) == []
    assert module_cycles(modules) == [
        "module cycle winspect.cli.completion <-> winspect.cli.main: "
        "winspect.cli.completion -> winspect.cli.main (imports); "
        "winspect.cli.main -> winspect.cli.completion (imports)"
    ]


def test_the_server_importing_the_windows_backend_is_found_outside_its_wiring(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "server/app.py": "from winspect.node.windows.backend import WindowsBackend\n",
            "server/capture.py": "from winspect.node.windows.parsers.pktmon import parse\n",
            "server/validation.py": "import winspect.node.windows.runner\n",
            "server/limits.py": "from winspect.node import windows\n",
            "server/service.py": "from winspect.node import errors\n",
            "node/errors.py": "",
            "node/windows/backend.py": "",
            "node/windows/runner.py": "",
            "node/windows/parsers/pktmon.py": "",
        },
    )
    assert server_imports_of_node_windows(modules) == [
        "winspect.server.capture imports winspect.node.windows.parsers.pktmon",
        "winspect.server.limits imports winspect.node.windows",
        "winspect.server.validation imports winspect.node.windows.runner",
    ]


def test_the_node_layer_importing_the_client_or_the_server_is_found(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "node/types.py": "from winspect.server.limits import MAX\n",
            "node/windows/backend.py": "def f():\n    import winspect.client.render\n",
            "node/errors.py": "from winspect.v1 import api\n",
            "server/limits.py": "",
            "client/render.py": "",
            "v1/api.py": "",
        },
    )
    assert node_imports_of_client_or_server(modules) == [
        "winspect.node.types imports winspect.server.limits",
        "winspect.node.windows.backend imports winspect.client.render",
    ]


def test_the_client_importing_the_node_and_records_importing_more_than_the_api_are_found(
    tmp_path: Path,
) -> None:
    modules = write_tree(
        tmp_path,
        {
            "client/records.py": "from winspect.records import parse\n"
            "from winspect.node.windows import parsers\n",
            "records/parse.py": "from winspect.v1 import api\nfrom winspect.node import mac\n",
            "node/mac.py": "",
            "node/windows/parsers.py": "",
            "v1/api.py": "",
        },
    )
    assert client_imports_of_node_or_server(modules) == [
        "winspect.client.records imports winspect.node.windows.parsers"
    ]
    assert records_imports_beyond_the_api(modules) == ["winspect.records.parse imports winspect.node.mac"]


def test_click_outside_the_cli_is_found(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "cli/main.py": "import click\n",
            "client/render.py": "import click\n",
            "sandbox/run.py": "def f():\n    from click.testing import CliRunner\n",
            "server/main.py": "import clickhouse\n",  # another library whose name starts alike
        },
    )
    assert click_outside_cli(modules) == [
        "winspect.client.render imports click",
        "winspect.sandbox.run imports click.testing",
    ]


def test_modules_over_450_lines_are_found_outside_the_emulator_and_generated_code(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "cli/capture.py": "x = 1\n" * 451,
            "client/render.py": "x = 1\n" * 450,
            "emulator/traffic.py": "x = 1\n" * 900,
            "v1/winspect_pb2.py": "x = 1\n" * 900,
        },
    )
    assert long_modules(modules) == ["winspect.cli.capture: 451 lines (at most 450)"]


def test_long_functions_are_found_with_the_emulators_own_limit(tmp_path: Path) -> None:
    method = "class C:\n    async def run(self):\n" + "        x = 0\n" * 80
    modules = write_tree(
        tmp_path,
        {
            "server/app.py": _body(81),
            "server/ok.py": _body(80),
            "cli/capture.py": method,
            "emulator/model.py": _body(150),
            "emulator/pktmon.py": _body(149),
        },
    )
    assert sorted(long_functions(modules)) == [
        "winspect.cli.capture.run: 81 lines (at most 80)",
        "winspect.emulator.model.f: 150 lines (emulator: under 150)",
        "winspect.server.app.f: 81 lines (at most 80)",
    ]


# ---------------------------------------------------------------- the rules on src/winspect


@pytest.fixture(scope="module")
def source() -> dict[str, Module]:
    modules = load_tree(SRC)
    assert {"winspect.cli", "winspect.client", "winspect.server", "winspect.node.windows"} <= set(modules)
    return modules


def test_no_import_cycle_between_packages(source: dict[str, Module]) -> None:
    assert package_cycles(source) == []


def test_no_import_cycle_between_modules(source: dict[str, Module]) -> None:
    assert module_cycles(source) == []


def test_the_server_core_imports_no_windows_backend_module(source: dict[str, Module]) -> None:
    assert set(source) >= WINDOWS_BACKEND_WIRING
    assert server_imports_of_node_windows(source) == []


def test_the_node_layer_imports_neither_client_nor_server(source: dict[str, Module]) -> None:
    assert node_imports_of_client_or_server(source) == []


def test_the_shared_record_parsers_import_only_the_api(source: dict[str, Module]) -> None:
    assert "winspect.records.pktmon_realtime" in source
    assert records_imports_beyond_the_api(source) == []


def test_the_client_imports_neither_node_nor_server(source: dict[str, Module]) -> None:
    assert client_imports_of_node_or_server(source) == []


def test_only_the_cli_imports_click(source: dict[str, Module]) -> None:
    assert click_outside_cli(source) == []


def test_no_module_over_450_lines(source: dict[str, Module]) -> None:
    assert long_modules(source) == []


def test_no_long_function(source: dict[str, Module]) -> None:
    assert long_functions(source) == []


def test_test_modules_have_unique_names() -> None:
    # pytest imports test modules by their basename: a second test_x.py in another directory
    # stops the whole run at collection ("import file mismatch")
    tests = Path(__file__).resolve().parent
    seen: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
