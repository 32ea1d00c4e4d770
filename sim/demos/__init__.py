"""Teaching scripts, one idea each: ``python -m sim.demos.<name> [--out DIR]``.

* ``design_vs_uniform``   — why a D-optimal design beats a uniform sample
* ``gain_is_variance``    — the greedy log-det gain is the predictive variance of a candidate
* ``logistic_weight``     — why the logistic weight matters (APO vs ADPO+)
* ``online_vs_offline``   — ADPO (labels as they come) vs ADPO+ (all labels logged)
* ``what_kappa_measures`` — Assumption 4's kappa with the exact argmax and with subsampling
"""
