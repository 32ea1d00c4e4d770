"""Entry points end to end: the one-file plug-in of examples/plugin (a method and an
environment) is installed into a throw-away folder and used, in subprocesses, by
``adpo select``, ``adpo env``, ``adpo sweep``, ``adpo methods`` and ``check_selector`` /
``check_env`` — with no edit to this repository. The venv is not touched."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src)
    target = tmp / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                          "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return tmp, target


def _run(site, *args, check=True):
    tmp, target = site
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(ROOT)]))
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp,
                         env=env, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


SCRIPT = """
import contextlib, io, json, sys
from adpo.cli import main
from sim.testing import check_env, check_selector

def cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()

out = {}
out["env"] = cli("env", "--kind", "ring", "--N", "80", "--seed", "0", "--out", "ring.npz")
out["select"] = cli("select", "--data", "ring.npz", "--method", "largest-norm", "--n", "5",
                    "--power", "2", "--out", "sel.json")
out["bad"] = cli("select", "--data", "ring.npz", "--method", "largest-norm", "--n", "5",
                 "--alpha", "1")
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    main(["methods"])
out["methods"] = buf.getvalue()
out["sweep"] = cli("sweep", "tiny.toml", "--out", "sweep", "--quiet")
out["checks"] = [len(check_selector("largest-norm")), len(check_env("ring", options={"N": 30}))]
json.dump(out, open("result.json", "w"))
"""


def test_plugin_runs_through_the_cli_the_sweep_and_the_conformance_suite(site):
    tmp, _ = site
    (tmp / "tiny.toml").write_text(
        'seeds = 2\nbudgets = [4, 8]\n[env]\nkind = "ring"\nN = 40\n'
        '[[methods]]\nname = "largest-norm"\npower = 0.5\n[[methods]]\nname = "uniform"\n')
    _run(site, "-c", SCRIPT)
    res = json.loads((tmp / "result.json").read_text())
    assert res["env"][0] == 0 and res["select"][0] == 0 and res["sweep"][0] == 0, res
    sel = json.loads((tmp / "sel.json").read_text())
    assert sel["method"] == "largest-norm" and len(sel["indices"]) == 5
    assert sel["options"]["power"] == 2.0
    assert res["bad"][0] == 2 and "--alpha: not an option of method 'largest-norm'" in res["bad"][1]
    assert "largest-norm:" in res["methods"] and "--power" in res["methods"]
    table = (tmp / "sweep" / "results.csv").read_text()
    assert "largest-norm" in table and "ring" in table
    assert res["checks"] == [9, 6]


def test_without_the_plugin_its_names_are_unknown():
    out = subprocess.run([sys.executable, "-m", "adpo", "select", "--data", "x.npz",
                          "--method", "largest-norm", "--n", "1"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "unknown method 'largest-norm'" in out.stderr
