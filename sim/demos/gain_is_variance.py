"""The greedy log-det gain is a variance.

By the matrix determinant lemma, log det(H + v v^T) - log det H = log(1 + v^T H^{-1} v) (the
identity behind eq. 10). In a linear-Gaussian model with prior precision H, v^T H^{-1} v is
exactly the posterior variance of the prediction v^T theta: greedy D-optimal design labels the
pair whose outcome we can predict least well. We check the identity numerically and by Monte
Carlo: sample theta ~ N(0, H^{-1}) and compare the empirical variance of v^T theta.
"""

from typing import Any

import numpy as np

from ._common import parse, plot


def main() -> None:
    args = parse(__doc__)
    rng = np.random.default_rng(args.seed)
    d = 6
    a = rng.standard_normal((20, d))
    h = np.eye(d) + a.T @ a                       # a design matrix after 20 picks
    cands = rng.standard_normal((8, d))
    chol = np.linalg.cholesky(h)
    theta = np.linalg.solve(chol.T, rng.standard_normal((d, 200_000)))  # ~ N(0, H^{-1})
    out = []
    for v in cands:
        gain = np.linalg.slogdet(h + np.outer(v, v))[1] - np.linalg.slogdet(h)[1]
        var = v @ np.linalg.solve(h, v)
        mc = np.var(v @ theta)
        out.append((var, gain, mc))
        print(f"v^T H^-1 v = {var:.4f}   log(1+.) = {np.log1p(var):.4f}   "
              f"log det gain = {gain:.4f}   Monte Carlo Var(v^T theta) = {mc:.4f}")
    o = np.array(out)

    def draw(ax: Any) -> None:
        ax.plot(o[:, 0], o[:, 1], "o", label="log det gain")
        xs = np.linspace(0, o[:, 0].max() * 1.05, 100)
        ax.plot(xs, np.log1p(xs), "-", label="log(1 + variance)")
        ax.set(xlabel=r"predictive variance $v^\top H^{-1} v$", ylabel="gain")
    plot(args, "gain_is_variance", draw)


if __name__ == "__main__":
    main()
