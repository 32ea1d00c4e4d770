"""Train / held-out splits of a pool of pairs: one helper for every experiment and command.

A **split** partitions row indices ``0..N-1`` into ``train`` (the pool a method may select from,
and whose labels it may see) and ``test`` (held-out rows never available for selection; they are
only evaluated on). Both are sorted int64 arrays; together they cover every row exactly once.

* :func:`random_split` — ``holdout`` of the rows, uniformly at random;
* :func:`group_split` — a split in which no group (e.g. a prompt) has rows on both sides: text
  pairs that share a prompt go together, so the held-out prompts are unseen prompts;
* :func:`holdout_data` — apply a split to :class:`~sim.data.PreferenceData`: the pool's target
  theta_star is refitted on the pool alone (the paper's eq. 5 on the rows a method may see), so
  in-sample metrics over the pool are exactly the paper's, and the held-out rows share that
  target.

``holdout`` is a fraction in (0, 1) (the test part holds ``round(holdout * N)`` rows, at least 1
and at most N - 1) or an integer count in [1, N - 1]. Experiments redraw the split per seed, e.g.
``seed=np.random.SeedSequence([seed, SPLIT_STREAM])``, so the bands over seeds include the noise of
which pairs were held out.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .data import PreferenceData
from .validation import as_rng

#: A fixed stream tag: ``SeedSequence([seed, SPLIT_STREAM])`` draws the split of a seed
#: independently of the environment's and the selector's random streams.
SPLIT_STREAM = 0x5B117


@dataclass(frozen=True)
class Split:
    """Sorted, disjoint ``train`` and ``test`` row indices (int64) covering ``0..N-1``."""

    train: np.ndarray
    test: np.ndarray

    @property
    def N(self) -> int:  # noqa: N802 (the paper's symbol)
        return int(self.train.size + self.test.size)

    def to_dict(self) -> dict:
        """JSON-ready ``{"train": [...], "test": [...]}``."""
        return {"train": self.train.tolist(), "test": self.test.tolist()}


def n_heldout(n_rows: int, holdout) -> int:
    """The number of held-out rows for ``holdout`` (fraction in (0, 1) or count in [1, N-1])."""
    n_rows = int(n_rows)
    if n_rows < 2:
        raise ValueError(f"N: a split needs at least 2 rows, got {n_rows}")
    if isinstance(holdout, bool) or not isinstance(holdout, numbers.Real):
        raise ValueError(f"holdout: expected a fraction in (0, 1) or a row count, got {holdout!r}")
    if isinstance(holdout, numbers.Integral):
        k = int(holdout)
        if not 1 <= k <= n_rows - 1:
            raise ValueError(f"holdout: a count must be in [1, N - 1] = [1, {n_rows - 1}], got {k}")
        return k
    h = float(holdout)
    if not 0.0 < h < 1.0:
        raise ValueError(f"holdout: a fraction must lie in (0, 1), got {h}")
    return min(max(int(round(h * n_rows)), 1), n_rows - 1)


def random_split(n_rows: int, holdout, seed) -> Split:
    """Hold out ``n_heldout(n_rows, holdout)`` rows drawn uniformly without replacement."""
    k = n_heldout(n_rows, holdout)
    perm = as_rng(seed).permutation(int(n_rows))
    return Split(train=np.sort(perm[k:]).astype(np.int64), test=np.sort(perm[:k]).astype(np.int64))


def group_split(groups, holdout, seed) -> Split:
    """Hold out whole groups (e.g. prompts): no group has rows in both parts.

    ``groups`` is a sequence of N hashable keys (``groups[i]`` = row i's prompt). The distinct
    groups are shuffled and taken in that order into the test part until it holds at least
    ``n_heldout(N, holdout)`` rows, so the test part overshoots the target by less than one
    group's size. Needs at least two distinct groups; the train part is never empty.
    """
    keys = list(groups)
    n = len(keys)
    target = n_heldout(n, holdout)
    uniq, inverse = np.unique(np.asarray([str(g) for g in keys]), return_inverse=True)
    if uniq.size < 2:
        raise ValueError(f"groups: a group-disjoint split needs at least 2 distinct groups, got "
                         f"{uniq.size}; use random_split for pairs without shared prompts")
    sizes = np.bincount(inverse, minlength=uniq.size)
    order = as_rng(seed).permutation(uniq.size)
    taken = np.cumsum(sizes[order])
    n_groups = int(np.searchsorted(taken, target)) + 1  # first prefix with >= target rows
    n_groups = min(n_groups, uniq.size - 1)  # keep at least one group for training
    test_groups = np.zeros(uniq.size, dtype=bool)
    test_groups[order[:n_groups]] = True
    is_test = test_groups[inverse]
    return Split(train=np.flatnonzero(~is_test).astype(np.int64),
                 test=np.flatnonzero(is_test).astype(np.int64))


def holdout_data(data: PreferenceData, split: Split) -> tuple[PreferenceData, PreferenceData]:
    """(pool, test) PreferenceData of a split, sharing one target theta_star.

    The pool holds the train rows; when ``data`` has a target, theta_star is refitted as the DPO
    MLE on the pool's labels (eq. 5; ridge ``fit_ridge`` and ball ``radius`` from ``data.info``,
    as the environments fit it), so a method's in-sample metrics over the pool are the paper's.
    The test rows (labels included, for accuracy / NLL) carry the same theta_star; theta_true is
    kept. ``info`` records the split sizes.
    """
    from .dpo import fit_dpo

    if split.N != data.N:
        raise ValueError(f"split: covers {split.N} rows but the data has N = {data.N}")
    pool, test = data.subset(split.train), data.subset(split.test)
    if data.theta_star is not None:
        if pool.s is None:
            raise ValueError("s: refitting theta_star on the pool needs labels")
        theta = fit_dpo(pool.phi, pool.b, pool.beta, pool.s,
                        fit_ridge=data.info.get("fit_ridge", 1e-3), radius=data.info.get("radius"),
                        theta0=data.theta_star).theta
        pool, test = pool.with_(theta_star=theta), test.with_(theta_star=theta)
    info = dict(data.info, pool_N=int(split.train.size), heldout_N=int(split.test.size))
    return pool.with_(info=info), test.with_(info=info)
