"""The layer rule of docs/ARCHITECTURE.md as code: which labcolor module may import which.

Every import counts, also the lazy ones inside functions: a lazy import still makes the lower layer
depend on the higher one at run time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# Lowest first; a module may import its own layer and the ones before it, never a later one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("labcolor", "labcolor.core")),
    ("runtime", ("labcolor.runtime",)),
    ("development", ("labcolor.evaluation", "labcolor.trainer", "labcolor.export")),
    ("cli", ("labcolor.cli", "labcolor.commands", "labcolor.__main__")),
]
# Third-party packages a layer must not use, even lazily: the runtime is installed without them.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "base": ("torch", "onnx", "onnxruntime", "typer", "rich", "matplotlib"),
    "runtime": ("torch", "onnx", "typer", "rich", "matplotlib"),
}
# Within development, evaluation runs exported models only: it needs neither torch nor onnx.
FORBIDDEN_MODULES: dict[str, tuple[str, ...]] = {"labcolor.evaluation": ("torch", "onnx", "typer", "rich")}
SOURCE_FOLDERS = ("core", "runtime", "evaluation", "trainer", "export", "commands")
ROOT_MODULES = ("__init__.py", "__main__.py", "cli.py")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. labcolor.runtime.folder
    target: str  # what it imports, e.g. labcolor.runtime.colorizer or torch.nn
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["labcolor", *parts])


def source_files(root: Path) -> list[Path]:
    files = [root / name for name in ROOT_MODULES if (root / name).exists()]
    for folder in SOURCE_FOLDERS:
        if (root / folder).is_dir():
            files += sorted((root / folder).rglob("*.py"))
    return files


def imports_of(root: Path, path: Path, *, top_level_only: bool = False) -> list[Import]:
    """The imports of one file; `from labcolor.x import y` counts as importing labcolor.x.y."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[Import] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([target] if target else []))
            found += [Import(module, f"{target}.{alias.name}" if target.startswith("labcolor") else target, node.lineno)
                      for alias in node.names]
    return found


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index): the longest matching prefix wins
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def optional_lines(path: Path) -> set[int]:
    """Lines of imports inside `try: ... except ImportError`: optional extras the code works without."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers
        ):
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def violations(root: Path) -> list[str]:
    """Every import in the source tree at `root` that breaks the layer rule, as 'file:line: why'.

    A third-party import guarded by `except ImportError` is an optional extra and is allowed.
    """
    problems: list[str] = []
    for path in source_files(root):
        optional = optional_lines(path)
        for imp in imports_of(root, path):
            where = f"{path.relative_to(root)}:{imp.line}"
            mine = layer_of(imp.module)
            top = imp.target.split(".")[0]
            if imp.target.startswith("labcolor"):
                theirs = layer_of(imp.target)
                # `from labcolor import __version__` names the base package itself, not a submodule.
                if imp.target == "labcolor.__version__":
                    theirs = 0
                if mine is not None and theirs is not None and theirs > mine:
                    problems.append(f"{where}: {imp.module} ({LAYERS[mine][0]}) imports {imp.target} "
                                    f"({LAYERS[theirs][0]})")
                continue
            name = LAYERS[mine][0] if mine is not None else ""
            banned = FORBIDDEN.get(name, ())
            banned += next((v for k, v in FORBIDDEN_MODULES.items() if imp.module.startswith(k)), ())
            if top in banned and imp.line not in optional:
                problems.append(f"{where}: {imp.module} ({name}) imports {top}")
    return problems


def module_cycles(root: Path) -> list[list[str]]:
    """Cycles among labcolor modules through module-level imports (a lazy import may break one)."""
    files = source_files(root)
    graph = {module_name(root, f): {i.target for i in imports_of(root, f, top_level_only=True)
                                    if i.target.startswith("labcolor.")} for f in files}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            # `from labcolor.core.errors import ModelError` names a class: its module is the parent.
            nxt = target if target in graph else target.rpartition(".")[0]
            if nxt not in graph or nxt == node:
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles
