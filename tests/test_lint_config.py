"""The static checks of `make lint` can fail: ruff rejects an unannotated public function and
an unused import under the project's configuration, and mypy a type error (mutants in a temp
folder; the repository itself is checked by `make lint` before the tests)."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_rejects_unannotated_public_functions_and_unused_imports(tmp_path):
    bad = tmp_path / "mutant.py"
    bad.write_text("import os\n\n\ndef public(x):\n    return x\n\n\ndef _private(x):\n"
                   "    return x\n")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                          str(ROOT / "pyproject.toml"), "--output-format", "concise", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    codes = {line.split()[1] for line in out.stdout.splitlines() if "mutant.py:" in line}
    assert {"F401", "ANN001", "ANN201"} <= codes
    good = tmp_path / "fine.py"
    good.write_text("def public(x: int) -> int:\n    return x\n")
    assert subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                           str(ROOT / "pyproject.toml"), str(good)],
                          capture_output=True, timeout=60).returncode == 0


def test_mypy_rejects_a_type_error(tmp_path):
    bad = tmp_path / "mutant.py"
    bad.write_text("def f(x: int) -> str:\n    return x\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                          str(ROOT / "pyproject.toml"), "--no-incremental", str(bad)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 1 and "Incompatible return value type" in out.stdout
