"""The package's import structure: no cycles, every module importable on its own, no torch where none is needed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import modernbert

PACKAGE = Path(modernbert.__file__).parent
# Modules that must load without torch: the package root (for `modernbert --help`), the I/O leaf, the config.
TORCH_FREE = ("modernbert", "modernbert.errors", "modernbert.hub", "modernbert.config")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _module_level_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules that `name` imports when it is imported (not those imported inside functions, which
    run later; not those under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("modernbert"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module or ""
                if not target.startswith("modernbert"):
                    continue
                found.add(target)
                for alias in node.names:  # `from . import checkpoint` imports a module
                    if f"{target}.{alias.name}" in modules:
                        found.add(f"{target}.{alias.name}")

    visit(tree.body)
    # Importing a.b.c runs a/__init__ and a/b/__init__ first.
    for target in list(found):
        parts = target.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {m for m in found if m in modules and m != name}


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _module_level_imports(name, path, modules) for name, path in modules.items()}
    # The package root imports its submodules lazily (on attribute access); a submodule's own package
    # __init__ runs before it, which is not an edge of the cycle we look for.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                dfs(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)


_FORK_EACH = r"""
import importlib, os, sys
import numpy, tokenizers, safetensors, huggingface_hub, torch  # third-party, shared by every child
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as e:
            print(f"{name}: {type(e).__name__}: {e}", flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(name)
sys.exit(1 if failed else 0)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_on_its_own():
    """Each module imported first, alone, in a process where no other package module is loaded yet."""
    names = [n for n in _modules() if not n.endswith("__main__")]
    proc = subprocess.run([sys.executable, "-c", _FORK_EACH, *names], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("module", TORCH_FREE)
def test_no_torch_import(module):
    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"importing {module} imported torch {proc.stderr}"


def test_public_names_resolve():
    """Every name in modernbert.__all__ loads from the module the export table names."""
    for name in modernbert.__all__:
        assert getattr(modernbert, name) is not None
