#!/usr/bin/env python3
"""Fails when the module graph of a crate has a cycle.

Usage: scripts/module-cycles.py CRATE_SRC_DIR [...]

A module is a file under src/ (`a/b.rs` and `a/b/mod.rs` are `a::b`); it
depends on every `crate::x::y` path it names (and on `super::` paths,
resolved). Edges are taken between the modules named, at every depth, and
also collapsed to top-level modules (`crate::batch::input` -> `batch`), so
both `config` <-> `batch` and `batch::input` <-> `batch::summary` count.
A parent module's own file (`mod.rs`, `lib.rs`) declaring its children is
not a dependency; `#[cfg(test)]` code is skipped from the first `mod tests`.
"""
import os
import re
import sys

PATH_RE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}\s*;", re.S)


def module_name(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests", text)
    return text[: m.start()] if m else text


def resolve(modules, base, segments):
    """The longest known module that the path names."""
    best = None
    for i in range(1, len(segments) + 1):
        if tuple(base + segments[:i]) in modules:
            best = tuple(base + segments[:i])
    return best


def graph(src):
    files = []
    for root, _, names in os.walk(src):
        files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
    modules = {module_name(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for mod, path in modules.items():
        is_parent = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
        here = list(mod) if is_parent else list(mod[:-1])
        text = strip(open(path, encoding="utf-8").read())
        refs = []
        for head, prefix, group in USE_GROUP_RE.findall(text):
            for item in re.split(r",", group):
                item = item.strip().split(" as ")[0].strip()
                if item and item != "self":
                    refs.append((head, prefix + "::" + item.replace("{", "").strip()))
        refs += PATH_RE.findall(text)
        for head, rest in refs:
            segments = [s for s in rest.split("::") if s and s != "self"]
            base = [] if head == "crate" else list(here)
            while head == "super" or (segments and segments[0] == "super"):
                if head == "super":
                    head = ""
                else:
                    segments = segments[1:]
                base = base[:-1]
            target = resolve(modules, base, segments)
            if target is None or target == mod or target == ():
                continue
            # A parent naming its own children is structure, not a dependency.
            if target[: len(mod)] == mod:
                continue
            edges[mod].add(target)
    return edges


def cycles(edges):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return found


def top(edges):
    out = {}
    for a, bs in edges.items():
        if not a:
            continue
        for b in bs:
            if b and a[0] != b[0]:
                out.setdefault((a[0],), set()).add((b[0],))
        out.setdefault((a[0],), set())
    return out


def name(m):
    return "::".join(m) or "crate"


failed = False
for src in sys.argv[1:]:
    edges = graph(src)
    for label, g in (("modules", edges), ("top-level modules", top(edges))):
        for cycle in cycles(g):
            failed = True
            print(f"{src}: cycle between {label}: " + " -> ".join(name(m) for m in cycle))
    if os.environ.get("CYCLES_VERBOSE"):
        for a in sorted(top(edges)):
            print(src, name(a), "->", ", ".join(sorted(name(b) for b in top(edges)[a])))
sys.exit(1 if failed else 0)
