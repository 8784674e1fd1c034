"""The library's structure stays as the refactor left it: a run folder's file names named once (pid_ssl.layout), no
module importing another's private name, no import circle, no ;-joined statements. Read from the exported source."""
import ast
import tokenize
from pathlib import Path

import pytest

from pid_ssl import layout

PKG = Path(__file__).resolve().parents[1] / "pid_ssl"
FILES = sorted(p for p in PKG.rglob("*.py") if p.name != "_modidx.py" and "_repro" not in p.parts)
RUN_FILES = {layout.PARAMS, layout.ENV, layout.HISTORY, layout.CKPT, layout.PREV, layout.DAMAGED, layout.BACKBONE,
             layout.PROBE, layout.METRICS, layout.CHECK, layout.EXECUTED, layout.LOCK}


def _module(p: Path) -> str:
    parts = p.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tree(p: Path) -> ast.Module: return ast.parse(p.read_text(encoding="utf-8"))


def _type_checking_nodes(tree) -> set:
    return {id(x) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test) for x in ast.walk(n)}


def _imports(p: Path):
    "(target module, imported name) of each `from pid_ssl... import name` in `p` (under TYPE_CHECKING left out)."
    tree, mod = _tree(p), _module(p)
    skip = _type_checking_nodes(tree)
    pkg = mod.split(".") if p.name == "__init__.py" else mod.split(".")[:-1]
    for n in ast.walk(tree):
        if id(n) in skip or not isinstance(n, ast.ImportFrom): continue
        if n.level: target = ".".join(pkg[: len(pkg) - n.level + 1] + ([n.module] if n.module else []))
        elif (n.module or "").split(".")[0] == "pid_ssl": target = n.module
        else: continue
        for a in n.names: yield target, a.name


def test_run_file_names_named_once():
    found = {}
    for p in FILES:
        if p.name == "layout.py": continue
        for n in ast.walk(_tree(p)):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in RUN_FILES:
                found.setdefault(n.value, []).append(f"{p.relative_to(PKG.parent)}:{n.lineno}")
    assert not found, f"run-file names outside pid_ssl/layout.py (use layout's names or RunFolder): {found}"


def test_no_private_names_across_modules():
    modules = {_module(p) for p in FILES}
    bad = [f"{_module(p)} imports {t}.{name}" for p in FILES for t, name in _imports(p)
           if name.startswith("_") and not name.startswith("__") and f"{t}.{name}" not in modules and t != _module(p)]
    assert not bad, bad


def test_no_import_circle():
    modules = {_module(p) for p in FILES}
    graph = {}
    for p in FILES:
        for t, name in _imports(p):
            dest = f"{t}.{name}" if f"{t}.{name}" in modules else t
            if dest in modules and dest != _module(p): graph.setdefault(_module(p), set()).add(dest)
    seen, stack = {}, []

    def visit(m):
        seen[m] = "open"; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if seen.get(d) == "open": pytest.fail(f"import circle: {' -> '.join(stack[stack.index(d):] + [d])}")
            if d not in seen: visit(d)
        seen[m] = "done"; stack.pop()
    for m in sorted(graph):
        if m not in seen: visit(m)


def test_no_joined_statements():
    bad = []
    for p in FILES:
        with open(p, encoding="utf-8") as f:
            bad += [f"{p.name}:{t.start[0]}" for t in tokenize.generate_tokens(f.readline) if t.type == tokenize.OP and t.string == ";"]
    assert not bad, f"{len(bad)} lines join statements with ';': {bad[:20]}"
