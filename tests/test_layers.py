"""One-way layers: ``sim`` never imports ``theory`` or the CLI package ``adpo``; ``theory`` never
imports ``adpo`` (issue 11, item 6). Checked on the source (every import statement, including
those inside functions) and at run time (importing every ``sim`` module loads neither)."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def imported_roots(path: pathlib.Path) -> set[str]:
    """Top-level package names imported anywhere in the file (relative imports excluded)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


FORBIDDEN = {"sim": {"theory", "adpo", "figures", "bench"}, "theory": {"adpo", "figures", "bench"}}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports_in_source(package):
    bad = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN[package])
           for p in (ROOT / package).rglob("*.py")}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"upward imports: {bad}"


def test_detector_sees_a_function_level_upward_import(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from theory.bounds import bound_summary\n    import adpo.cli\n")
    assert imported_roots(p) == {"theory", "adpo"}


def test_importing_every_sim_module_loads_neither_theory_nor_cli():
    code = ("import importlib, pkgutil, sys, sim\n"
            "for m in pkgutil.walk_packages(sim.__path__, 'sim.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('theory', 'adpo')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
