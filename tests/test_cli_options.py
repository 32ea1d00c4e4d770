"""CLI flags derived from the registries (adpo/options.py): one flag per config field, refused
when the chosen method/kind does not take it, renamed flags named in the error, listings."""

import json

import pytest

from adpo.cli import main
from adpo.options import FLAG_NAMES, flag
from sim.registry import ENVS, METHODS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("opts") / "g.npz"
    assert main(["env", "--kind", "gaussian", "--N", "60", "--d", "3", "--seed", "0",
                 "--out", str(path)]) == 0
    return path


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_every_registered_option_is_a_flag_of_its_command():
    from adpo.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for command, registry in (("select", METHODS), ("env", ENVS)):
        flags = {s for a in sub[command]._actions for s in a.option_strings}
        for entry in registry:
            for name in entry.option_names():
                assert flag(name) in flags, (command, entry.name, name)


def test_an_option_the_method_ignores_is_refused(data, capsys):
    assert main(["select", "--data", str(data), "--method", "uniform", "--n", "5",
                 "--alpha", "1"]) == 2
    err = _err(capsys)
    assert "--alpha: not an option of method 'uniform'" in err


def test_method_specific_options_are_reachable(data, tmp_path):
    out = tmp_path / "sel.json"
    assert main(["select", "--data", str(data), "--method", "dope", "--n", "5", "--weights",
                 "theta_star", "--design-tol", "0.01", "--out", str(out)]) == 0
    opts = json.loads(out.read_text())["options"]
    assert opts["weights"] == "theta_star" and opts["design_tol"] == 0.01


def test_flags_reach_the_selector_config(data, tmp_path):
    out = tmp_path / "sel.json"
    assert main(["select", "--data", str(data), "--method", "adpo", "--n", "4",
                 "--design-ridge", "2", "--fit-ridge", "0.5", "--candidates", "8",
                 "--refit", "every", "--no-record-kappa", "--out", str(out)]) == 0
    opts = json.loads(out.read_text())["options"]
    assert (opts["gamma"], opts["fit_ridge"], opts["n_candidates"], opts["refit"],
            opts["record_kappa"]) == (2.0, 0.5, 8, "every", False)
    assert main(["select", "--data", str(data), "--method", "adpo", "--n", "4",
                 "--candidates", "all", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["options"]["n_candidates"] is None


@pytest.mark.parametrize("argv, needle", [
    (["select", "--method", "adpo", "--design-ridge", "-1"], "--design-ridge (gamma): must be > 0"),
    (["select", "--method", "adpo", "--candidates", "x"], "--candidates (n_candidates"),
    (["select", "--method", "nope"], "unknown method 'nope'"),
    (["env", "--kind", "digits", "--N", "10", "--d", "3"], "--d: not an option of environment"),
    (["env", "--kind", "gaussian", "--N", "10"], "d: required option"),
    (["env", "--kind", "gaussian", "--N", "10", "--d", "2", "--beta", "0"], "beta: must be > 0"),
])
def test_bad_values_are_one_line_errors_naming_the_flag(data, tmp_path, capsys, argv, needle):
    extra = (["--data", str(data), "--n", "3"] if argv[0] == "select"
             else ["--seed", "0", "--out", str(tmp_path / "e.npz")])
    assert main(argv + extra) == 2
    assert needle in _err(capsys)
    assert not (tmp_path / "e.npz").exists()


@pytest.mark.parametrize("argv, new", [
    (["select", "--gamma", "1"], "--design-ridge"),
    (["select", "--fit-gamma", "1"], "--fit-ridge"),
    (["fit", "--gamma", "1"], "--fit-ridge"),
    (["env", "--fit-gamma", "1"], "--fit-ridge"),
    (["design", "--gamma", "1"], "--design-ridge"),
    (["bound", "--gamma", "1"], "--design-ridge"),
])
def test_old_spellings_name_the_new_flag(capsys, argv, new):
    assert main(argv) == 2  # usage error (adpo.cli.EXIT_CODES), one line
    err = capsys.readouterr().err
    assert f"{argv[1]} was renamed: use {new}" in err and len(err.strip().splitlines()) == 1


def test_ridge_flags_have_one_meaning():
    assert flag("gamma") == "--design-ridge" and flag("fit_ridge") == "--fit-ridge"
    assert len(set(FLAG_NAMES.values())) == len(FLAG_NAMES)


@pytest.mark.parametrize("command, registry", [("methods", METHODS), ("envs", ENVS)])
def test_listings_show_every_entry_with_its_options(capsys, command, registry):
    assert main([command, "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in items] == list(registry.names())
    for item in items:
        entry = registry.get(item["name"])
        assert [o["name"] for o in item["options"]] == list(entry.option_names())
    assert main([command]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in registry.names())
