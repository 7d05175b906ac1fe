#!/usr/bin/env python3
"""Checks that the folders of cseg's library depend on each other without cycles.

A folder's dependencies are the folders named by its `#include "cseg/<folder>/..."` lines, in
include/cseg/<folder>/ and src/<folder>/. Prints the dependency order (each folder after what it
uses) and exits 1 with the cycles found, if any. docs/architecture.md lists the intended layers."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
include = re.compile(r'^\s*#\s*include\s+"cseg/([a-z_]+)/')
deps: dict[str, dict[str, list[str]]] = {}
for base in (root / "include" / "cseg", root / "src"):
    for path in base.rglob("*"):
        if path.suffix not in (".h", ".cpp") or path.parent == base:
            continue
        folder = path.relative_to(base).parts[0]
        deps.setdefault(folder, {})
        for line in path.read_text(errors="replace").splitlines():
            m = include.match(line)
            if m and m.group(1) != folder:
                deps[folder].setdefault(m.group(1), []).append(str(path.relative_to(root)))

# Cycles: strongly connected components of more than one folder (Tarjan).
index, low, stack, on_stack, components = {}, {}, [], set(), []
def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in deps.get(v, {}):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            comp.append(w)
            if w == v:
                break
        components.append(comp)
for v in sorted(deps):
    if v not in index:
        visit(v)

cycles = [sorted(c) for c in components if len(c) > 1]
if cycles:
    for c in cycles:
        print("include cycle between folders:", ", ".join(c))
        for a in c:
            for b in c:
                if b in deps.get(a, {}):
                    print(f"  {a} -> {b}: {', '.join(sorted(set(deps[a][b]))[:4])}")
    sys.exit(1)
order = [c[0] for c in components]  # Tarjan emits dependencies first
print("no include cycles; folders in dependency order:", " ".join(order))
