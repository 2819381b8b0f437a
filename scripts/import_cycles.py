#!/usr/bin/env python3
"""Count the import cycles between xenfab's modules (CI runs it: the count must be 0).

The graph is import-linter's own (grimp): every import, at module level or inside a function.
A cycle is a strongly connected set of two or more modules; each is printed with its members.
"""

from __future__ import annotations

import sys

import grimp


def cycles(package: str = "xenfab") -> list[list[str]]:
    """The strongly connected groups of modules (two or more) of ``package``'s import graph."""
    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & graph.modules) for m in modules}
    # Tarjan's algorithm, iterative (the graph is small, the recursion limit is not the point).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if i < len(targets):
                work.append((node, i + 1))
                nxt = targets[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def main() -> int:
    """Print each cycle and the count; exit 1 when there is any."""
    found = cycles()
    for group in found:
        print("cycle: " + " <-> ".join(group))
    print(f"import cycles: {len(found)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
