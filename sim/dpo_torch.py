"""The DPO MLE (paper eq. 5-6) on PyTorch (CPU or CUDA), for pools whose features live on a GPU.

    argmin_theta  sum_i [softplus(z_i) - s_i z_i] + (fit_ridge / 2) ||theta||^2,
    z_i = beta (phi_i^T theta - b_i)                                          (eq. 9)

Damped Newton with Armijo backtracking, in float64 throughout: gradient beta sum (mu_i - s_i)
phi_i + fit_ridge theta, Hessian beta^2 sum mu_i (1 - mu_i) phi_i phi_i^T + fit_ridge I (Lemma 1),
solved by Cholesky (never an explicit inverse), stable softplus. It stops on the same Newton
decrement rule as :func:`sim.dpo.fit_dpo` and returns its :class:`sim.dpo.FitResult`; the ball
constraint (``radius``) stays with the numpy solver. torch is imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .dpo import ConvergenceError, FitResult, armijo_step, check_fit_inputs
from .validation import as_vector, positive_int, renamed_keywords


@renamed_keywords(gamma="fit_ridge")
def fit_dpo_torch(phi: ArrayLike, b: ArrayLike, beta: float, s: ArrayLike, *,
                  fit_ridge: float = 1e-3, theta0: ArrayLike | None = None, tol: float = 1e-20,
                  max_iter: int = 200, device: str = "cpu") -> FitResult:
    """The ridge DPO MLE by Newton's method on torch (module docstring).

    Args:
        phi: (N, d). b: (N,). beta: > 0. s: (N,) labels in {0, 1}. fit_ridge: ridge >= 0.
        theta0: (d,) warm start. tol: stop when decrement^2 / 2 < tol * max(1, |loss|) (or, in
        the local region, when the decrement stops shrinking: the float64 rounding floor).
        device: "cpu", "cuda" or "cuda:K".

    Returns:
        FitResult(theta (d,) numpy float64, converged, n_iter, grad_norm, loss).
    """
    from .design.torch_greedy import _torch, resolve_device
    torch = _torch()
    dev = resolve_device(device)
    phi, b, beta, s, fit_ridge = check_fit_inputs(phi, b, beta, s, fit_ridge)
    n, d = phi.shape
    max_iter = positive_int(max_iter, "max_iter")
    f64 = torch.float64
    X = torch.as_tensor(phi, dtype=f64, device=dev)
    bt = torch.as_tensor(b, dtype=f64, device=dev)
    st = torch.as_tensor(s, dtype=f64, device=dev)
    theta = torch.zeros(d, dtype=f64, device=dev) if theta0 is None else torch.as_tensor(
        as_vector(theta0, "theta0", length=d), dtype=f64, device=dev).clone()
    eye = torch.eye(d, dtype=f64, device=dev)

    def loss_of(z: np.ndarray, th: Any):
        return float((torch.nn.functional.softplus(z) - st * z).sum() + 0.5 * fit_ridge * th @ th)

    prev_dec, gnorm = np.inf, np.inf
    for it in range(1, max_iter + 1):
        z = beta * (X @ theta - bt)
        f = loss_of(z, theta)
        mu = torch.sigmoid(z)
        g = beta * (X.T @ (mu - st)) + fit_ridge * theta
        gnorm = float(g.abs().max())
        w = beta ** 2 * torch.sigmoid(z) * torch.sigmoid(-z)
        H = (X.T * w) @ X + fit_ridge * eye
        H.diagonal().add_(1e-12 * max(1.0, float(H.diagonal().sum()) / d))
        L, info = torch.linalg.cholesky_ex(H)
        if int(info):
            raise ConvergenceError("fit_dpo_torch: the Hessian is singular (too few or collinear "
                                   "rows for d features); set fit_ridge > 0")
        p = -torch.cholesky_solve(g[:, None], L)[:, 0]
        dec = float(-g @ p)
        local = dec / 2 <= 1e-8 * max(1.0, abs(f))
        if local and fit_ridge == 0 and float(w.max()) < 1e-10 * beta ** 2:
            # every pair fitted with |logit| > 23 and still improving: theta runs off to infinity
            raise ConvergenceError("fit_dpo_torch: the labels are separable, so the "
                                   "unregularized MLE does not exist; set fit_ridge > 0")
        if dec / 2 <= tol * max(1.0, abs(f)) or (local and dec >= prev_dec):
            return FitResult(theta.cpu().numpy(), True, it - 1, gnorm, f)
        step = 1.0
        if not local:
            zp = beta * (X @ p)
            step = armijo_step(lambda t: loss_of(z + t * zp, theta + t * p), f, dec,
                               "fit_dpo_torch", "phi")
        theta = theta + step * p
        if not bool(torch.isfinite(theta).all()) or float(theta.norm()) > 1e10:
            raise ConvergenceError("fit_dpo_torch: ||theta|| diverges (separable labels); set "
                                   "fit_ridge > 0")
        prev_dec = dec
    raise ConvergenceError(f"fit_dpo_torch: no convergence in {max_iter} Newton steps "
                           f"(|grad| = {gnorm:.3g}); raise max_iter or fit_ridge")
