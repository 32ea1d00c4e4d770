"""``adpo env``: draw an environment and save it as .npz."""

from sim.envs import ENV_KINDS, make_env
from sim.io import write_json


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
    p.set_defaults(func=run)


def run(args) -> int:
    kw = dict(N=args.N, beta=args.beta, seed=args.seed, fit_gamma=args.fit_gamma,
              radius=args.radius)
    if args.kind == "gaussian":
        if args.d is None:
            raise ValueError("d: the gaussian environment needs --d")
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
