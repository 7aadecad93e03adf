"""Two import-linter contract types the stock ones do not cover (used by pyproject.toml).

- `acyclic_modules`: no import cycle between any two modules of the given packages, at any
  depth and across packages. Function-local imports count: they hide a cycle, they do not
  break it. A broken contract lists each cycle as a chain of modules.
- `private_names`: no module imports another domain's private names (`from privacy.dsr.x
  import _helper`, or `x._helper` on an imported module). A domain is a package directly
  under a root package (privacy.dsr); a module directly under the root (privacy.database) is
  a domain of its own. Inside one domain, private names are the domain's business.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract
from importlinter.domain.contract import ContractCheck


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        inside = {m for m in graph.modules if _under(m, self.packages)}
        edges = {m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in inside}
        cycles = [_a_cycle(component, edges) for component in _components(edges)]
        return ContractCheck(kept=not cycles, metadata={"cycles": sorted(cycles)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(" -> ".join(cycle), bold=False)
            output.new_line()


class PrivateNamesContract(Contract):
    type_name = "private_names"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found = []
        for module in sorted(m for m in graph.modules if _under(m, self.packages)):
            found.extend(_private_uses(module, set(self.packages)))
        return ContractCheck(kept=not found, metadata={"uses": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, line, name in check.metadata["uses"]:
            output.print_error(f"{module}:{line} uses {name}", bold=False)
            output.new_line()


def _under(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _components(edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _a_cycle(component: list[str], edges: dict[str, list[str]]) -> tuple[str, ...]:
    """One cycle through the component's first module, shortest first (breadth-first)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in edges[node]:
                if child not in members:
                    continue
                if child == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(came_from[chain[-1]])
                    return (start, *reversed(chain[:-1]), start)
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return tuple(component)


def _domain(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _private_uses(module: str, roots: set[str]) -> list[tuple[str, int, str]]:
    source = _source(module)
    if source is None:
        return []
    tree = ast.parse(source.read_text(encoding="utf-8"))
    here = _domain(module)
    aliases: dict[str, str] = {}  # local name -> a module of another domain
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in roots:
                continue
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if alias.name.startswith("_") and _domain(node.module) != here:
                    uses.append((module, node.lineno, target))
                elif _source(target) is not None and _domain(target) != here:
                    aliases[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in roots and _domain(alias.name) != here:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            uses.append((module, node.lineno, f"{aliases[node.value.id]}.{node.attr}"))
    return uses


def _source(module: str) -> Path | None:
    """The file of `module` (a module or a package's __init__), or None if it is not one."""
    root, *rest = module.split(".")
    spec = importlib.util.find_spec(root)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None
