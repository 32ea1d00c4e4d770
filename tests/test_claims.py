"""figures.claims: the README's result statements agree with the committed sidecars, and the
check goes red when either side changes (a sidecar number, a README word)."""

import json
import pathlib
import re
import shutil

import pytest

from figures import claims
from sim.docblocks import get_block, replace_block

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_agrees_with_the_committed_sidecars():
    assert claims.stale(ROOT / "README.md", ROOT / "figures") == [], \
        "README claims disagree with figures/*.json: run python -m figures.claims --write"


@pytest.fixture
def copy(tmp_path):
    """README and sidecars copied to tmp_path (the checkout is never modified)."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for p in (ROOT / "figures").rglob("*.json"):  # figures/*.json and figures/gpu/*.json
        dest = tmp_path / "figures" / p.relative_to(ROOT / "figures")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    return tmp_path


def _stale(copy):
    return claims.stale(copy / "README.md", copy / "figures")


def test_a_changed_sidecar_number_turns_the_check_red(copy):
    """Mutant: Uniform's final max logit error at beta = 2 raised 10% in the sidecar."""
    path = copy / "figures" / "paper_fig3_beta.json"
    side = json.loads(path.read_text())
    env = side["envs"][1]["label"]
    side["final_means"][env]["uniform/max_logit_error"] *= 1.1
    path.write_text(json.dumps(side))
    assert "beta" in _stale(copy)


def _flip_trend(body):
    """Mutant: the comparative word for Uniform / ADPO+ over beta replaced by another one."""
    for old, new in (("is not monotone as", "rises as"), ("rises as", "falls as"),
                     ("falls as", "rises as")):
        if old in body:
            return body.replace(old, new, 1)
    raise AssertionError("the beta claim names no trend")


def _bump_number(body):
    """Mutant: the first decimal number of the block changed in its last digit."""
    m = re.search(r"\d+\.\d+", body)
    last = m.group(0)[-1]
    return body[:m.end() - 1] + ("1" if last != "1" else "2") + body[m.end():]


@pytest.mark.parametrize("block, mutate", [
    ("beta", _flip_trend),
    ("fig1-table", _bump_number),
    ("design-quality", _bump_number),
    ("fig1-bullets", lambda body: body.replace("ADPO's rank", "ADPO's place", 1)),
])
def test_a_changed_readme_word_or_number_turns_the_check_red(copy, block, mutate):
    text = (copy / "README.md").read_text()
    old = get_block(text, f"claims:{block}")
    body = mutate(old)
    assert body != old
    (copy / "README.md").write_text(replace_block(text, f"claims:{block}", body))
    assert _stale(copy) == [block]
    args = ["--readme", str(copy / "README.md"), "--figures-dir", str(copy / "figures")]
    assert claims.main(args) == 1
    assert claims.main(["--write", *args]) == 0
    assert _stale(copy) == [] and (copy / "README.md").read_text() == text


def test_unknown_block_and_missing_sidecar(copy):
    (copy / "README.md").write_text("<!-- claims:nope -->\nx\n<!-- /claims:nope -->\n")
    with pytest.raises(ValueError, match="claims:nope"):
        claims.stale(copy / "README.md", copy / "figures")
    (copy / "figures" / "paper_fig4_alpha.json").unlink()
    text = claims.render("alpha", claims.Sidecars(copy / "figures"))
    assert "not yet computed" in text and "paper_fig4_alpha.json" in text


def test_formatting_and_comparison_words():
    assert claims.trend([7.0, 7.5, 6.2]) == "is not monotone"  # issue 10's "grows with beta"
    assert claims.trend([4.3, 3.9, 2.6]) == "falls" and claims.trend([1, 2, 3]) == "rises"
    assert claims.fewer(2048, 8192) == "4.0× fewer labels"
    assert claims.fewer(8192, 8192) == "as many labels"
    assert claims.pow2(2048) == "2¹¹" and claims.pow2(100) == "100"
    assert claims.num(0.000262451) == "0.000262" and claims.num(26.14) == "26.1"
    ns = [16, 32, 64, 128, 256]
    w = ["uniform", "adpo+", "uniform", "adpo+", "adpo+"]
    assert claims.from_n_on(ns, w, "adpo+") == 128  # wins at every n >= 128, not from 32
    assert claims.from_n_on(ns, w[:-1] + ["apo"], "adpo+") is None
    assert claims.up_to_n(ns, ["adpo+", "adpo+", "apo", "adpo+", "x"], "adpo+") == 32
    assert claims.runs(ns, w) == [("uniform", [16]), ("adpo+", [32]), ("uniform", [64]),
                                  ("adpo+", [128, 256])]


def test_llm_known_theta_sentence_comes_from_the_sidecar(copy):
    """The known-theta sentence of the llm block: absent from an old sidecar (placeholder), then
    rendered from the sidecar's "truth" curves, lowest error first; a changed number is seen."""
    path = copy / "figures" / "llm.json"
    side = json.loads(path.read_text())
    side.pop("truth", None)
    path.write_text(json.dumps(side))
    assert "not yet computed" in claims.render("llm", claims.Sidecars(copy / "figures"))
    methods, n = side["config"]["methods"], side["n"]
    keys = [p + k for p in ("", "heldout_") for k in ("max_logit_error_true",
                                                      "mean_logit_error_true")]
    side["truth"] = {m: {k: {"n": n, "mean": [20.0 - i] * len(n), "half_95": [0.5] * len(n)}
                         for k in keys} for i, m in enumerate(methods)}
    path.write_text(json.dumps(side))
    text = claims.render("llm", claims.Sidecars(copy / "figures"))
    last = claims.NAMES[methods[-1]]
    assert "not yet computed" not in text
    assert f"in-sample {last} {claims.num(20.0 - len(methods) + 1)}," in text  # lowest first
    assert "llm" in _stale(copy)  # the README still holds the old sentence
    side["truth"][methods[-1]]["max_logit_error_true"]["mean"][-1] = 99.0
    path.write_text(json.dumps(side))
    assert claims.render("llm", claims.Sidecars(copy / "figures")) != text
