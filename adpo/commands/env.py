"""``adpo env``: draw an environment and save it as .npz."""

from sim.envs import ENV_KINDS, make_env
from sim.io import check_output, write_json
from sim.validation import as_rng, check_beta, check_resources, positive_int, positive_scalar

#: float64 copies of phi an environment holds at once (phi, pixel pairs, the fit's work arrays).
ENV_COPIES = 6


def register(sub):
    p = sub.add_parser("env", help="draw a synthetic environment (labels included) to .npz",
                       description="Draw preference data with known parameters; labels are drawn "
                       "once and stored, so every method later sees the same labels.")
    p.add_argument("--kind", choices=ENV_KINDS, default="gaussian")
    p.add_argument("--N", type=int, required=True, help="number of candidate pairs")
    p.add_argument("--d", type=int, default=None, help="feature dimension (gaussian; digits has 64)")
    p.add_argument("--beta", type=float, default=1.0, help="DPO scale beta > 0")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--fit-gamma", type=float, default=1e-3,
                   help="ridge of the DPO MLE theta_star (and of later fits)")
    p.add_argument("--radius", type=float, default=None, help="ball constraint ||theta|| <= radius")
    p.add_argument("--assumption2", action="store_true",
                   help="gaussian: enforce Assumption 2 (||phi|| <= 1, |b| <= 1, unit-ball theta)")
    p.add_argument("--theta-norm", type=float, default=None, help="gaussian: ||theta_true||")
    p.add_argument("--feature-scale", choices=("unit", "pixel"), default="unit",
                   help="digits: feature normalization")
    p.add_argument("--theta-bar-ridge", type=float, default=1.0,
                   help="digits: ridge of the all-ones logistic fit theta_bar")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--force", action="store_true", help="skip the memory guard")
    p.set_defaults(func=run)


def check_args(args) -> None:
    """Every option and the output path, before any work (ValueError naming the option)."""
    n = positive_int(args.N, "N")
    if args.kind == "gaussian" and args.d is None:
        raise ValueError("d: the gaussian environment needs --d")
    d = positive_int(args.d, "d") if args.d is not None else 64
    check_beta(args.beta)
    positive_scalar(args.fit_gamma, "fit-gamma", allow_zero=True)
    for name in ("radius", "theta_norm", "theta_bar_ridge"):
        if getattr(args, name) is not None:
            positive_scalar(getattr(args, name), name.replace("_", "-"))
    as_rng(args.seed)
    check_output(args.out, suffix=".npz")
    check_resources(ENV_COPIES * 8.0 * n * d, f"env: N = {n}, d = {d} ({ENV_COPIES} float64 "
                    f"copies of phi)", force=args.force)


def run(args) -> int:
    check_args(args)
    kw = dict(N=args.N, beta=args.beta, seed=args.seed, fit_gamma=args.fit_gamma,
              radius=args.radius)
    if args.kind == "gaussian":
        kw.update(d=args.d, assumption2=args.assumption2)
        if args.theta_norm is not None:
            kw["theta_norm"] = args.theta_norm
    else:
        kw.update(d=args.d, feature_scale=args.feature_scale,
                  theta_bar_ridge=args.theta_bar_ridge)
    data = make_env(args.kind, **kw)
    data.save(args.out)
    write_json({"out": args.out, "N": data.N, "d": data.d, **{k: v for k, v in data.info.items()
                                                               if k not in ("N", "d")}}, None)
    return 0
