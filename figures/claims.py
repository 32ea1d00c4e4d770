"""Claims from data: the README's result statements rendered from the figure sidecars.

Every number and every comparative word of a results statement lives in a marked block of
``README.md`` (a :mod:`sim.docblocks` block named ``claims:NAME``, markers on their own lines)::

    <!-- claims:NAME -->
    ...text rendered by the claim NAME...
    <!-- /claims:NAME -->

A claim is a function ``(Sidecars) -> str`` registered with :func:`claim`; it reads only
the committed sidecars ``figures/*.json``. ``python -m figures.claims`` reports every block that
disagrees with its sidecars (exit 1); ``--write`` re-renders them in place. ``make figures`` ends
with ``--write``; ``tests/test_claims.py`` fails while the README and the sidecars disagree.

When a sidecar predates a claim (a key it needs is missing), that sentence renders as a visible
placeholder asking for ``make figures`` rather than a stale number.

Other modules add claims by importing :func:`claim` and being listed in :data:`PROVIDERS`.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import math
import pathlib
import re
import sys
from collections.abc import Callable

from sim.docblocks import get_block, replace_block
from sim.io import atomic_write_text

HERE = pathlib.Path(__file__).parent
README = HERE.parent / "README.md"
#: Modules whose import registers claims (this one first; others append theirs).
PROVIDERS = ("figures.claims", "figures.claims_theory", "figures.claims_beyond")
CLAIMS: dict[str, Callable[["Sidecars"], str]] = {}
MARKER = re.compile(r"^<!-- claims:([A-Za-z0-9_.-]+) -->$", re.M)
#: Methods of the paper's comparison (the fair variant is reported separately).
PAPER_METHODS = ("adpo+", "adpo", "apo", "pmc", "uniform")
NAMES = {"adpo+": "ADPO⁺", "adpo+fair": "fair ADPO⁺", "adpo": "ADPO", "apo": "APO",
         "pmc": "PMC", "uniform": "Uniform"}
METRIC_WORDS = {"max_logit_error": "max logit error", "mean_logit_error": "mean logit error",
                "error_rate": "error rate", "accuracy": "accuracy", "margin": "margin",
                "nll": "NLL"}


class Missing(KeyError):
    """A sidecar lacks what a claim needs (it predates the claim): rerun ``make figures``."""


class Sidecars:
    """Lazy reader of ``<root>/<figure>.json``; ``get(fig, *keys)`` raises :class:`Missing`."""

    def __init__(self, root=HERE):
        self.root = pathlib.Path(root)
        self._cache: dict[str, dict] = {}

    def __call__(self, fig: str) -> dict:
        if fig not in self._cache:
            path = self.root / f"{fig}.json"
            if not path.is_file():
                raise Missing(f"figures/{fig}.json")
            self._cache[fig] = json.loads(path.read_text())
        return self._cache[fig]

    def get(self, fig: str, *keys):
        node = self(fig)
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                raise Missing(f"figures/{fig}.json: {'/'.join(map(str, keys))}")
            node = node[k]
        return node


def claim(name: str):
    """Register a claim renderer under ``name`` (a README block name)."""
    def deco(fn):
        if name in CLAIMS and CLAIMS[name] is not fn:
            raise ValueError(f"claim {name!r} is registered twice")
        CLAIMS[name] = fn
        return fn
    return deco


def placeholder(exc: Missing) -> str:
    return (f"*(not yet computed: {exc.args[0]} predates this claim; run `make figures`, then "
            "`python -m figures.claims --write`)*")


def sentence(fn: Callable[[], str]) -> str:
    """``fn()``, or the placeholder when a sidecar lacks what it needs."""
    try:
        return fn()
    except Missing as exc:
        return placeholder(exc)


# ----------------------------------------------------------------------------- formatting
def num(x: float, sig: int = 3) -> str:
    """``sig`` significant digits, plain notation (0.000262, 1.94, 26.1, 7.0)."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    digits = max(sig - 1 - int(math.floor(math.log10(abs(x)))), 0)
    return f"{x:.{digits}f}"


def sci(x: float) -> str:
    """Two significant digits in scientific notation: 1.0e-6."""
    m, e = f"{x:.1e}".split("e")
    return f"{m}e{int(e)}"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def pow2(n: int) -> str:
    """2^k with a superscript exponent (n must be a power of two), else the number."""
    k = int(n).bit_length() - 1
    if n <= 0 or 1 << k != n:
        return str(n)
    sup = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
    return f"2{str(k).translate(sup)}"


def n_range(ns) -> str:
    """'2⁴' for one budget, '2⁴–2⁹' for a run of consecutive budgets."""
    return pow2(ns[0]) if len(ns) == 1 else f"{pow2(ns[0])}–{pow2(ns[-1])}"


def trend(values) -> str:
    """'rises', 'falls' or 'is not monotone' for a sequence (strict comparisons)."""
    d = [b - a for a, b in zip(values, values[1:])]
    if all(x > 0 for x in d):
        return "rises"
    if all(x < 0 for x in d):
        return "falls"
    return "is not monotone"


def fewer(n: int, n_ref: int) -> str:
    """'4× fewer' labels (n_ref / n), 'as many' when equal, 'more' when n > n_ref."""
    if n == n_ref:
        return "as many labels"
    if n > n_ref:
        return f"{num(n / n_ref, 2)}× more labels"
    return f"{num(n_ref / n, 2)}× fewer labels"


def runs(ns, labels) -> list[tuple[str, list[int]]]:
    """Run-length encoding of per-budget labels: [(label, [n, ...]), ...]."""
    out: list[tuple[str, list[int]]] = []
    for n, lab in zip(ns, labels):
        if out and out[-1][0] == lab:
            out[-1][1].append(n)
        else:
            out.append((lab, [n]))
    return out


# ----------------------------------------------------------------------------- curve access
def curve(sc: Sidecars, fig: str, env: str, method: str, metric: str) -> dict[int, float]:
    c = sc.get(fig, "curves", env, method, metric)
    return dict(zip(c["n"], c["mean"]))


def best_by_n(sc, fig, env, metric, methods=PAPER_METHODS, worst=False):
    """(budgets, the method with the lowest (or highest) mean at each budget)."""
    cs = {m: curve(sc, fig, env, m, metric) for m in methods}
    ns = sorted(set.intersection(*(set(c) for c in cs.values())))
    pick = max if worst else min
    return ns, [pick(methods, key=lambda m: cs[m][n]) for n in ns]


def from_n_on(ns, winners, method) -> int | None:
    """The smallest n from which ``method`` wins at every larger budget (None: not at n_max)."""
    start = None
    for n, w in zip(ns, winners):
        start = (start or n) if w == method else None
    return start


def up_to_n(ns, winners, method) -> int | None:
    """The largest n up to which ``method`` wins at every smaller budget (None: not at n_min)."""
    end = None
    for n, w in zip(ns, winners):
        if w != method:
            break
        end = n
    return end


def final(sc, fig, env, method, metric, where="claims"):
    """Mean at n_max from the sidecar's final means (paper_fig1: claims/<env>/final_means)."""
    node = sc.get(fig, where, env, "final_means") if where else sc.get(fig, "final_means", env)
    key = f"{method}/{metric}"
    if key not in node:
        raise Missing(f"figures/{fig}.json: final mean {key} of {env}")
    return node[key]


def best_runs_text(sc, fig, env, metric, methods=PAPER_METHODS) -> str:
    ns, winners = best_by_n(sc, fig, env, metric, methods)
    return ", ".join(f"{NAMES[m]} at n = {n_range(r)}" for m, r in runs(ns, winners))


# ============================================================================= the claims
@claim("fig1-table")
def fig1_table(sc: Sidecars) -> str:
    """Digits at n_max: every method, in sample and held out; the best of each column in bold."""
    fig, env = "paper_fig1", "digits"
    budgets = sc.get(fig, "budgets")
    methods = [m["label"] for m in sc.get(fig, "methods")]
    metrics = ["max_logit_error", "mean_logit_error", "error_rate"]
    cols = metrics + [f"heldout_{m}" for m in metrics]
    head = ["method"] + [METRIC_WORDS[m] for m in metrics] + [f"held-out {METRIC_WORDS[m]}"
                                                              for m in metrics]
    vals = {}
    for m in methods:
        for c in cols:
            try:
                vals[m, c] = final(sc, fig, env, m, c)
            except Missing:
                vals[m, c] = None
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        cells = []
        for c in cols:
            v = vals[m, c]
            if v is None:
                cells.append("—")
                continue
            best = min(vals[k, c] for k in methods if vals[k, c] is not None)
            cells.append(f"**{num(v)}**" if v == best else num(v))
        note = {"adpo+": " (θ̂ on all logged labels of the pool)",
                "adpo+fair": " (θ̂ on an independent label draw)"}.get(m, "")
        lines.append(f"| {NAMES.get(m, m)}{note} | " + " | ".join(cells) + " |")
    envs = {e["label"]: e for e in sc.get(fig, "envs")}
    e = envs[env]
    size = (f"pool N = {e['N'] - e['holdout']} pairs + {e['holdout']} held-out pairs (redrawn "
            "per seed)" if isinstance(e.get("holdout"), int) else f"N = {e['N']} pairs")
    return (f"Digits recipe, {size}, {sc.get(fig, 'seeds')} seeds, mean at n_max = "
            f"{pow2(budgets[-1])} (`figures/paper_fig1.json`; in-sample = over the pool, as the "
            "paper; held-out = over pairs never available for selection):\n\n" + "\n".join(lines))


def _reach(sc, env, method, base, heldout=False):
    key = f"{method}_reaches_{base}_{'heldout_' if heldout else ''}at_n_max"
    return sc.get("paper_fig1", "claims", env, key)


def _reach_text(sc, env, method, base, heldout=False) -> str:
    n_max = sc.get("paper_fig1", "budgets")[-1]
    n = _reach(sc, env, method, base, heldout)
    if n is None:
        return f"never reaches {NAMES[base]}'s by n_max"
    return f"reaches {NAMES[base]}'s with n = {pow2(n)} ({fewer(n, n_max)})"


@claim("fig1-bullets")
def fig1_bullets(sc: Sidecars) -> str:
    fig, env = "paper_fig1", "digits"
    metrics = ("max_logit_error", "mean_logit_error", "error_rate")

    def best_all():
        starts = []
        for metric in metrics:
            ns, w = best_by_n(sc, fig, env, metric)
            starts.append(from_n_on(ns, w, "adpo+"))
        if any(s is None for s in starts):
            lost = [METRIC_WORDS[m] for m, s in zip(metrics, starts) if s is None]
            return (f"Among the paper's methods ADPO⁺ does not have the lowest {', '.join(lost)} "
                    "at n_max.")
        return (f"Among the paper's methods ADPO⁺ has the lowest value of all three metrics at "
                f"every n ≥ {pow2(max(starts))} (lowest max logit error: "
                f"{best_runs_text(sc, fig, env, 'max_logit_error')}).")

    def reach():
        return (f"At n_max Uniform's max logit error is {num(final(sc, fig, env, 'uniform', 'max_logit_error'))}: "
                f"ADPO⁺ {_reach_text(sc, env, 'adpo+', 'uniform')} and "
                f"{_reach_text(sc, env, 'adpo+', 'apo')} (paper: < 2¹³ vs 2¹⁵ and < 2¹⁴ vs 2¹⁵). "
                "But ADPO⁺ fits θ̂ on the logged labels of the whole pool, the labels that define "
                "θ* (with α = 0 it is `oracle`).")

    def fair():
        a = final(sc, fig, env, "adpo+fair", "max_logit_error")
        b = final(sc, fig, env, "adpo+", "max_logit_error")
        return (f"**Fair ADPO⁺** (θ̂ on an independent label draw of the same N pairs, "
                f"`adpo+fair`) {_reach_text(sc, env, 'adpo+fair', 'uniform')} and "
                f"{_reach_text(sc, env, 'adpo+fair', 'apo')}; at n_max its max logit error is "
                f"{num(a)}, {num(a / b, 2)}× ADPO⁺'s {num(b)}.")

    def heldout():
        present = {m["label"] for m in sc.get(fig, "methods")}
        parts = []
        for m in ("adpo+", "adpo+fair"):
            parts.append(f"{NAMES[m]} {_reach_text(sc, env, m, 'uniform', heldout=True)}")
        ratios = ", ".join(
            f"{NAMES[m]} {num(final(sc, fig, env, m, 'heldout_max_logit_error') / final(sc, fig, env, m, 'max_logit_error'), 2)}×"
            for m in ("adpo+", "adpo+fair", "adpo", "apo", "uniform") if m in present)
        return (f"**Held out** (Uniform's held-out max logit error at n_max: "
                f"{num(final(sc, fig, env, 'uniform', 'heldout_max_logit_error'))}): "
                f"{'; '.join(parts)}. Held-out / in-sample max logit error at n_max: {ratios} "
                "(a maximum over fewer pairs).")

    def rank_adpo():
        out = []
        for metric in metrics:
            order = sorted(PAPER_METHODS, key=lambda m: final(sc, fig, env, m, metric))
            out.append(f"{METRIC_WORDS[metric]}: #{order.index('adpo') + 1}")
        return f"ADPO's rank among the paper's five methods at n_max: {', '.join(out)}."

    def small_n():
        ns, worst = best_by_n(sc, fig, env, "max_logit_error", worst=True)
        end = up_to_n(ns, worst, "adpo+")
        n0 = ns[0]
        v = {m: curve(sc, fig, env, m, "max_logit_error")[n0] for m in ("adpo+", "uniform", "apo")}
        e = {m: curve(sc, fig, env, m, "error_rate")[n0] for m in ("adpo+", "uniform")}
        head = (f"For n ≤ {pow2(end)} ADPO⁺ has the *highest* max logit error of the five"
                if end else f"At n = {pow2(n0)} ADPO⁺ does not have the highest max logit error")
        return (f"{head} (at n = {pow2(n0)}: {num(v['adpo+'])} vs {num(v['uniform'])} for Uniform "
                f"and {num(v['apo'])} for APO; error rate {num(e['adpo+'])} vs {num(e['uniform'])}).")

    return "\n".join(f"* {sentence(f)}" for f in (best_all, reach, fair, heldout, rank_adpo, small_n))


@claim("gaussian")
def gaussian(sc: Sidecars) -> str:
    fig, env = "paper_fig1", "gaussian"

    def finals():
        act = {m: final(sc, fig, env, m, "max_logit_error") for m in ("adpo+", "apo", "adpo")}
        uni = final(sc, fig, env, "uniform", "max_logit_error")
        pmc = final(sc, fig, env, "pmc", "max_logit_error")
        spread = max(act.values()) / min(act.values()) - 1
        er = [final(sc, fig, env, m, "error_rate") for m in PAPER_METHODS]
        return (f"ADPO⁺, APO and ADPO end within {pct(spread)} of each other (max logit error "
                f"{', '.join(num(v) for v in act.values())}), at "
                f"{num(min(act.values()) / uni, 2)}–{num(max(act.values()) / uni, 2)}× Uniform's "
                f"{num(uni)} (PMC {num(pmc)}); the error rates of the five span "
                f"{num(min(er))}–{num(max(er))}.")

    def adpo_lag():
        u = curve(sc, fig, env, "uniform", "max_logit_error")
        a = curve(sc, fig, env, "adpo", "max_logit_error")
        ns = sorted(a)
        worse = [r for flag, r in runs(ns, [a[n] > u[n] for n in ns]) if flag]
        if not worse:
            return "ADPO's max logit error is at or below Uniform's at every n."
        return (f"ADPO's max logit error is above Uniform's at n = "
                f"{', '.join(n_range(r) for r in worse)}.")

    return "\n".join(f"  * {sentence(f)}" for f in (finals, adpo_lag))


@claim("regimes")
def regimes(sc: Sidecars) -> str:
    fig = "digits_regimes"
    out = []
    for env in sc.get(fig, "regimes"):
        def facts(env=env):
            f = sc.get(fig, "env_facts", env)
            lm, tn = f["label_mean"], f["theta_star_norm"]
            return (f"labels 1 in {pct(min(lm))}–{pct(max(lm))} of pairs, ‖θ*‖ = "
                    f"{num(min(tn))}–{num(max(tn))} over the {len(lm)} seeds")

        def finals(env=env):
            node = sc.get(fig, "regimes", env, "final_means")
            vals = sorted(PAPER_METHODS, key=lambda m: node[f"{m}/max_logit_error"])
            uni = node["uniform/max_logit_error"]
            best = {METRIC_WORDS[k]: NAMES[min(PAPER_METHODS, key=lambda m: node[f"{m}/{k}"])]
                    for k in ("max_logit_error", "mean_logit_error", "error_rate")}
            return ("max logit error at n_max: " + ", ".join(
                f"{NAMES[m]} {num(node[f'{m}/max_logit_error'])}" + (
                    "" if m == "uniform" else f" ({num(node[f'{m}/max_logit_error'] / uni, 2)}× Uniform)")
                for m in vals) + "; lowest at n_max: " + ", ".join(f"{k} {v}" for k, v in best.items()))

        def by_n(env=env):
            ns, w = best_by_n(sc, fig, env, "max_logit_error", worst=True)
            end = up_to_n(ns, w, "adpo+")
            head = "; ".join(f"lowest {METRIC_WORDS[k]}: {best_runs_text(sc, fig, env, k)}"
                             for k in ("max_logit_error", "error_rate"))
            return head + (f"; ADPO⁺ has the highest max logit error for n ≤ {pow2(end)}" if end
                           else f"; ADPO⁺ does not have the highest max logit error at n = "
                                f"{pow2(ns[0])}")

        body = "; ".join(sentence(f) for f in (facts, finals, by_n))
        out.append(f"  * **{env}**: {body}.")
    return "\n".join(out)


@claim("beta")
def beta(sc: Sidecars) -> str:
    fig = "paper_fig3_beta"
    envs = sc.get(fig, "envs")
    betas = [e["beta"] for e in envs]
    fm = {e["beta"]: sc.get(fig, "final_means", e["label"]) for e in envs}
    v = {m: [fm[b][f"{m}/max_logit_error"] for b in betas] for m in PAPER_METHODS}
    bs = " / ".join(f"{b:g}" for b in betas)
    ru = [u / a for u, a in zip(v["uniform"], v["adpo+"])]
    ra = [p / a for p, a in zip(v["apo"], v["adpo+"])]
    lowest = [b for i, b in enumerate(betas) if min(PAPER_METHODS, key=lambda m: v[m][i]) == "adpo+"]
    adpo_vs_apo = [b for i, b in enumerate(betas) if v["adpo"][i] > v["apo"][i]]
    n_max = sc.get(fig, "budgets")[-1]
    return (f"At n_max = {pow2(n_max)} ADPO⁺'s max logit error is "
            f"{' / '.join(num(x, 2) for x in v['adpo+'])} for β = {bs}, Uniform's "
            f"{' / '.join(num(x, 2) for x in v['uniform'])} and APO's "
            f"{' / '.join(num(x, 2) for x in v['apo'])}: Uniform / ADPO⁺ = "
            f"{', '.join(num(x, 2) for x in ru)} (this ratio {trend(ru)} as β grows) and APO / "
            f"ADPO⁺ = {', '.join(num(x, 2) for x in ra)} (it {trend(ra)}). ADPO⁺ has the lowest "
            f"max logit error at {_which(lowest, betas)}; ADPO's is above APO's at "
            f"{_which(adpo_vs_apo, betas)}.")


def _which(chosen, allv) -> str:
    if len(chosen) == len(allv):
        return "every β"
    return "no β" if not chosen else "β = " + ", ".join(f"{b:g}" for b in chosen)


@claim("alpha")
def alpha(sc: Sidecars) -> str:
    r = sc.get("paper_fig4_alpha", "ratio_alpha0_over_alpha3")

    def rng(name):
        vals = list(r[f"{name}/max_logit_error"].values())
        return f"{num(min(vals), 2)}–{num(max(vals), 2)}"
    return (f"Mean max logit error with α = 0 over α = 3, across n: ADPO⁺ {rng('adpo+')}, ADPO "
            f"{rng('adpo')}.")


@claim("llm")
def llm(sc: Sidecars) -> str:
    fig = "llm"
    n = sc.get(fig, "n")
    methods = sc.get(fig, "config", "methods")

    def at_end(metric, prefix=""):
        key = prefix + metric
        vals = {m: sc.get(fig, "summary", m, key)["mean"][-1] for m in methods}
        pick = min if metric == "nll" else max
        best = pick(methods, key=vals.get)
        order = sorted(methods, key=vals.get, reverse=pick is max)
        return (f"best {METRIC_WORDS[metric]} {NAMES[best]} "
                f"({', '.join(f'{NAMES[m]} {num(vals[m])}' for m in order)})")

    def insample():
        over = "the pool of selectable pairs" if "holdout" in sc(fig) else "all N pairs, training pairs included"
        return (f"in-sample (over {over}) at n = {n[-1]}: "
                + "; ".join(at_end(k) for k in ("accuracy", "margin", "nll")))

    def heldout():
        sizes = sc.get(fig, "heldout_N")
        return (f"held out ({sizes[0]}–{sizes[-1]} pairs of unseen prompts, redrawn per seed) at "
                f"n = {n[-1]}: " + "; ".join(at_end(k, "heldout_") for k in ("accuracy", "margin", "nll")))

    def truth():
        def order(key):  # lowest error first, with the range of the 95% half-widths
            vals = {m: sc.get(fig, "truth", m, key)["mean"][-1] for m in methods}
            half = [sc.get(fig, "truth", m, key)["half_95"][-1] for m in methods]
            return (", ".join(f"{NAMES[m]} {num(vals[m])}" for m in sorted(methods, key=vals.get))
                    + f" (95% half-widths {num(min(half), 2)}–{num(max(half), 2)})")
        return (f"with the labels redrawn from a known θ (fitted to the real labels by the "
                f"sec. 6.1 recipe), at n = {n[-1]}: max logit error against θ in-sample "
                f"{order('max_logit_error_true')}, held out "
                f"{order('heldout_max_logit_error_true')}; mean logit error in-sample "
                f"{order('mean_logit_error_true')}, held out "
                f"{order('heldout_mean_logit_error_true')}")

    return (f"{sentence(insample)}. {sentence(heldout)}. {sentence(truth)}. ADPO⁺ fits θ̂ on the "
            "logged labels of the whole pool.")


@claim("design-scaling")
def design_scaling(sc: Sidecars) -> str:
    cols = sc.get("design_scaling", "columns")
    cfg = sc.get("design_scaling", "config")
    fw, cv = cols.index("fw_s"), cols.index("cvxpy_s")
    fe, ce = cols.index("fw_efficiency"), cols.index("cvxpy_efficiency")
    pts = [(f"N = {N}, d = {cfg['d_fixed']}", r) for N, r in zip(cfg["Ns"], sc.get("design_scaling", "by_n"))]
    pts += [(f"N = {cfg['N_fixed']}, d = {d}", r) for d, r in zip(cfg["ds"], sc.get("design_scaling", "by_d"))]
    both = [(w, r[cv] / r[fw], r) for w, r in pts if r[cv] is not None and math.isfinite(r[cv])]
    lo, hi = min(both, key=lambda t: t[1]), max(both, key=lambda t: t[1])
    worst_fw = min(r[fe] for _, r in pts)
    cv_eff = [r[ce] for _, _, r in both]
    return (f"Frank–Wolfe is {num(lo[1], 2)}–{num(hi[1], 2)}× faster than cvxpy where both run "
            f"(largest at {hi[0]}: cvxpy {num(hi[2][cv])} s; smallest at {lo[0]}), at certified "
            f"efficiency ≥ 1 − {sci(1 - worst_fw)} vs cvxpy's 1 − {sci(1 - max(cv_eff))} to "
            f"1 − {sci(1 - min(cv_eff))}")


@claim("design-quality")
def design_quality(sc: Sidecars) -> str:
    g = lambda k: sc.get("design_quality", k)  # noqa: E731
    return (f"greedy equals the optimum in {pct(g('greedy_equals_brute_fraction'))} of instances, "
            f"{'beats it in some (a bug)' if g('greedy_beats_brute') else 'never beats it'}, worst "
            f"{num(g('greedy_over_brute_min'), 2)} of it, mean {num(g('greedy_over_brute_mean'))}; "
            f"exchange reaches {num(g('exchange_over_brute_mean'))}")


# ============================================================================= README blocks
def load_providers() -> None:
    for mod in PROVIDERS:
        importlib.import_module(mod)


def render(name: str, sc: Sidecars) -> str:
    load_providers()
    if name not in CLAIMS:
        raise ValueError(f"README block claims:{name}: no such claim; registered: "
                         f"{', '.join(sorted(CLAIMS))}")
    try:
        return CLAIMS[name](sc)
    except Missing as exc:
        return placeholder(exc)


def names_in(text: str) -> list[str]:
    """The claims blocks of a Markdown text, in order."""
    return MARKER.findall(text)


def render_text(text: str, root=HERE) -> str:
    """``text`` with every claims block re-rendered from the sidecars under ``root``."""
    sc = Sidecars(root)
    for name in names_in(text):
        text = replace_block(text, f"claims:{name}", render(name, sc))
    return text


def stale_names(old: str, new: str) -> list[str]:
    """Blocks whose bodies differ between two versions of the text."""
    return [k for k in names_in(old)
            if get_block(old, f"claims:{k}") != get_block(new, f"claims:{k}")]


def stale(readme=README, root=HERE) -> list[str]:
    """Names of the README's claims blocks that disagree with the sidecars."""
    text = pathlib.Path(readme).read_text()
    return stale_names(text, render_text(text, root))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m figures.claims", description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="re-render the README's blocks in place")
    ap.add_argument("--readme", default=str(README))
    ap.add_argument("--figures-dir", default=str(HERE), help="where the sidecars are")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.readme)
    try:
        text = path.read_text()
        new = render_text(text, args.figures_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if new == text:
        print(f"{path}: every claims block agrees with the sidecars")
        return 0
    if args.write:
        atomic_write_text(path, new)
        print(f"{path}: re-rendered {len(stale_names(text, new))} claims block(s)")
        return 0
    sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                               str(path), "rendered from the sidecars"))
    print(f"\n{path}: claims blocks disagree with the sidecars; run python -m figures.claims "
          "--write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    # Run the imported module's main: claim providers register into figures.claims.CLAIMS,
    # which is not this __main__ module's dict.
    from figures import claims as _claims
    sys.exit(_claims.main())
