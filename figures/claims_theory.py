"""Claims of the README's theory section, rendered from the theory figures' sidecars.

Registered in :data:`figures.claims.PROVIDERS`; see :mod:`figures.claims` for the mechanism.
Each claim states whether its bound was informative (below the trivial ceiling of its regime)
before it states whether the bound held.
"""

from __future__ import annotations

import numpy as np

from figures.claims import Sidecars, claim, num


def _span(values, sig: int = 2) -> str:
    v = np.asarray(values, dtype=float)
    return f"{num(v.max(), sig)}–{num(v.min(), sig)}"


def _sci(n: float) -> str:
    if not np.isfinite(n):
        return "never (up to 10¹⁵)"
    m, e = f"{n:.1e}".split("e")
    sup = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
    return f"{m}·10{str(int(e)).translate(sup)}"


@claim("theory-bound")
def theory_bound(sc: Sidecars) -> str:
    g = lambda *k: sc.get("theory_bound", *k)  # noqa: E731
    cfg, ratio, cross = g("config"), g("bound_over_ceiling"), g("informative_from_n_kappa1")
    vac = g("vacuous_at_every_n")
    verdict = ("vacuous at every n shown" if all(vac.values())
               else "informative at some n: " + ", ".join(k for k, v in vac.items() if not v))
    return (f"In the {cfg['scale']} `theory_bound` figure (d = {cfg['d']}, N = {cfg['N']}, "
            f"n = {cfg['n_grid'][0]}…{cfg['n_grid'][-1]}) the Theorem 2 bound is {verdict}: "
            f"corrected {_span(ratio['corrected'])}×, printed {_span(ratio['printed'])}×, exact "
            f"self-normalized {_span(ratio['corrected, exact self-normalized'])}× the trivial ceiling "
            f"{num(g('trivial_ceiling'), 2)}. From the formula (κ = 1) it first drops below the "
            f"ceiling at n ≈ {_sci(cross['corrected'])} (corrected), {_sci(cross['printed'])} "
            f"(printed), {_sci(cross['corrected, exact self-normalized'])} (self-normalized).")


@claim("theory-coverage")
def theory_coverage(sc: Sidecars) -> str:
    g = lambda *k: sc.get("theory_coverage", *k)  # noqa: E731
    cfg, deltas, radius = g("config"), np.asarray(g("deltas")), np.asarray(g("radius"))
    parts = []
    for m in g("per_method"):
        v = {k: g("per_method", m, k) for k in ("informative", "coverage_theorem3", "ceiling_min",
                                               "radius_over_quantile")}
        informative = np.asarray(v["informative"], dtype=bool)
        cov = 100 * np.asarray(v["coverage_theorem3"])
        small = deltas <= 0.2
        cov_text = f"{num(cov.min(), 3)}%" if cov.min() == cov.max() else \
            f"{num(cov.min(), 3)}–{num(cov.max(), 3)}%"
        parts.append(f"{m}: coverage {cov_text}, "
                     f"attained ceiling {num(v['ceiling_min'])} (radius below it at "
                     f"{int(informative.sum())} of {informative.size} δ), radius "
                     f"{_span(np.asarray(v['radius_over_quantile'])[small])}× the empirical "
                     f"(1 − δ)-quantile for δ ≤ 0.2")
    return (f"In the {cfg['scale']} `theory_coverage` figure (d = {cfg['d']}, N = {cfg['N']}, "
            f"n = {cfg['n']}, {cfg['trials']} trials, δ = {num(deltas.min(), 1)}…"
            f"{num(deltas.max(), 2)}, radius {_span(radius, 3)}): " + "; ".join(parts) + ".")


@claim("theory-kappa")
def theory_kappa(sc: Sidecars) -> str:
    g = lambda *k: sc.get("theory_kappa", *k)  # noqa: E731
    cfg, rows = g("config"), g("kappa")
    for v in rows.values():
        if "theorem4_informative_checks" not in v:
            g("kappa", "theorem4_informative_checks")  # raises Missing: the sidecar predates this
    inf = [v["theorem4_informative_checks"] for v in rows.values()]
    fails = sum(v["theorem4_corrected_failures_informative"] for v in rows.values())
    margin = min(v["theorem4_min_corrected_over_measured_informative"] or np.inf for v in rows.values())
    printed = sum(v["theorem4_printed_failures_informative"] for v in rows.values())
    kap = "; ".join(f"{k} max {num(v['max'])}, median {num(v['median'])}" for k, v in rows.items())
    return (f"In the {cfg['scale']} `theory_kappa` figure ({cfg['kind']}, N = {cfg['N']}, d = {cfg['d']}, "
            f"β = {cfg['beta']}, γ = {cfg['gamma']}, n ≤ {cfg['n']}, {len(cfg['seeds'])} seeds) "
            f"the corrected Theorem 4 bound is below the ceiling max‖φ‖²/γ at {min(inf)}–{max(inf)} "
            f"of {rows[next(iter(rows))]['theorem4_checks']} checkpoints per setting; among those "
            f"it fails {fails} times (smallest margin {num(margin, 2)}×) and the printed bound fails "
            f"{printed} of {sum(inf)}. κ: {kap}.")
