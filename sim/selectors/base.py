"""The selector protocol and its parts: options, refit schedules, observation hooks.

Every method is a :class:`Selector` and works in two modes:

* online ask/tell — ``ask(k)`` returns the next k row indices (a batch is chosen with
  within-batch rank-one updates before any of its labels arrive), ``tell(indices, labels)``
  feeds the labels back; the same object serves a simulation and a human in the loop;
* offline ``select(n)`` — ask/tell in a loop, labels revealed from ``data.s`` only as rows are
  selected (a :class:`LabelOracle`); methods that use no labels never read them.

Online methods never hold the label array: the constructor keeps ``data`` without ``s``
(``data.with_(s=None)``); only methods tagged ``"reads-logged-labels"`` (ADPO+) see them.

A selector is composed of parts (as emukit composes its loop):

* a **candidate sampler** (:class:`sim.design.candidates.CandidateSampler`): all unselected rows
  or a fresh random subset of m (the same random stream as :func:`sim.design.greedy_select`);
* a **refit schedule** (:func:`refit_schedule`): when theta_hat (and whatever depends on it) is
  recomputed — :class:`Pow2` (the paper's t = 2, 4, 8, ...), :class:`Every`, :class:`EveryK`,
  or :class:`Once` for methods whose weights never change;
* a **rule** (the subclass): ``_refit(t)`` and ``_pick_one()``; greedy rules
  (:mod:`sim.selectors.greedy`) write only their weights;
* the **argmax engine** (:mod:`sim.design`): the blocked engine whenever the weights are fixed
  between two picks and the argmax is exhaustive, the incremental one otherwise.

**Observation hooks** replace any access to private attributes: ``observe(on_pick=..,
on_refit=..)`` registers ``on_pick(i, v)`` (row i, the vector v added to the design matrix:
sqrt(w_i) phi_i for the greedy rules, phi_i otherwise) and ``on_refit(t, theta_hat)`` (round t,
the new theta_hat, or None for methods without one).

Options: each method declares a frozen dataclass of the options it uses (built from the field
groups below); :class:`Options` validates each field, and unknown option names are refused
with the list of valid ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike

from ..data import PreferenceData, check_indices
from ..design.candidates import CandidateSampler
from ..design.criteria import check_criterion
from ..design.groups import GroupCap
from ..dpo import fit_dpo
from ..registry import Entry
from ..validation import (RenamedOptionsMeta, Seed, as_labels, as_rng, positive_int,
                          positive_scalar)


class LabelOracle:
    """Reveals ``s[i]`` only for rows that have been asked for; records what it revealed.

    Designs with replacement pass ``draw`` (rows (k,) -> fresh labels (k,), e.g.
    ``lambda r: data.draw_labels(r, rng)``): the first ask of a row reveals its logged label
    s_i, every later ask of the same row (in a later call or the same batch) a fresh draw, so
    the k-th label of a pair is independent of the first k - 1. Without ``draw`` a repeated
    row reveals s_i again (designs without replacement never repeat a row).

    Attributes: ``revealed`` (rows, in order), ``labels`` (the labels returned, in order).
    """

    def __init__(self, s: np.ndarray,
                 draw: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self._s = as_labels(s, "s")
        self._draw = draw
        self._seen = np.zeros(self._s.size, dtype=bool)
        self.revealed: list[int] = []
        self.labels: list[int] = []

    @property
    def pure(self) -> bool:
        """Whether a call returns s[idx] whatever was asked before (no fresh draws), so one
        call for several batches reveals what one call per batch would, in the same order."""
        return self._draw is None

    def __call__(self, indices: ArrayLike) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        out = self._s[idx]
        if self._draw is not None:
            again = self._seen[idx].copy()
            first = np.unique(idx, return_index=True)[1]
            again[np.setdiff1d(np.arange(idx.size), first)] = True  # repeats within the batch
            if again.any():
                out = out.copy()
                out[again] = self._draw(idx[again])
            self._seen[idx] = True
        self.revealed.extend(idx.tolist())
        self.labels.extend(out.tolist())
        return out


# ====================================================================== refit schedules
class RefitSchedule(Protocol):
    """When a selector recomputes what depends on theta_hat. ``due(t, last)``: whether a refit
    falls in (last, t], t being the round about to be played (1-based: t - 1 labels told) and
    ``last`` the round of the previous refit (the first round always refits)."""

    def due(self, t: int, last: int) -> bool: ...


@dataclass(frozen=True)
class Pow2:
    """Refit at rounds t = 2, 4, 8, ... (the paper's "t = 2^i, i > 0"; Algorithm 1 line 4)."""

    def due(self, t: int, last: int) -> bool:
        return t >= 1 << last.bit_length()  # the smallest power of two > last


@dataclass(frozen=True)
class Every:
    """Refit at every round."""

    def due(self, t: int, last: int) -> bool:
        return t > last


@dataclass(frozen=True)
class EveryK:
    """Refit at rounds 1 + K, 1 + 2K, ..."""

    k: int

    def due(self, t: int, last: int) -> bool:
        return t >= last + self.k


@dataclass(frozen=True)
class Once:
    """Compute the weights once, before the first pick (fixed-weight rules: ADPO+, APO, ...)."""

    def due(self, t: int, last: int) -> bool:
        return False


def refit_schedule(spec: str | int) -> RefitSchedule:
    """The schedule for ``refit`` = "pow2" | "every" | K (a positive int), else ValueError."""
    if spec == "pow2":
        return Pow2()
    if spec == "every":
        return Every()
    try:
        return EveryK(positive_int(int(spec), "refit"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"refit: must be 'pow2', 'every' or a positive integer K, got {spec!r}") \
            from None


# ====================================================================== options
def _n_candidates(v: Any) -> int | None:
    return None if v is None or (isinstance(v, str) and v == "all") else positive_int(
        v, "n_candidates (m)")


def _refit(v: Any) -> str | int:
    refit_schedule(v)
    return v if v in ("pow2", "every") else int(v)


def _bool(name: str) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{name}: expected true or false, got {v!r}")
        return bool(v)
    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "gamma": lambda v: positive_scalar(v, "gamma"),
    "fit_ridge": lambda v: positive_scalar(v, "fit_ridge", allow_zero=True),
    "radius": lambda v: None if v is None else positive_scalar(v, "radius"),
    "n_candidates": _n_candidates,
    "alpha": lambda v: positive_scalar(v, "alpha", allow_zero=True),
    "refit": _refit,
    "batch_size": lambda v: positive_int(v, "batch_size"),
    "record_kappa": _bool("record_kappa"),
    "criterion": lambda v: check_criterion(v),
    "replace": _bool("replace"),
    "max_per_prompt": lambda v: None if v is None else positive_int(v, "max_per_prompt"),
}


@dataclass(frozen=True)
class Options(metaclass=RenamedOptionsMeta):
    """Base of every method's config: validates (and normalises) each field it declares."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = _CHECKS.get(f.name)
            if check is not None:
                object.__setattr__(self, f.name, check(getattr(self, f.name)))


@dataclass(frozen=True)
class PoolOptions(Options):
    """How the pool may be used: ``replace`` (designs with replacement: a picked pair stays
    selectable and each repeat gets a fresh label) and ``max_per_prompt`` (at most this many
    picks per prompt, the data's ``group`` key; None: unlimited)."""

    replace: bool = field(default=False, metadata={
        "help": "designs with replacement: a picked pair stays selectable, each repeat a fresh "
                "label draw (needs theta_true to simulate labels)"})
    max_per_prompt: int | None = field(default=None, metadata={
        "help": "at most this many picks per prompt (the data's 'group' key, `adpo env --kind "
                "prompts`); None: unlimited"})


@dataclass(frozen=True)
class CandidateOptions(PoolOptions):
    """``n_candidates``: None (the exact argmax over all unselected rows) or m (the best of a
    fresh random subset of m per pick, paper sec. 3.1)."""

    n_candidates: int | None = field(default=None, metadata={
        "help": "None/'all': exact argmax over all unselected rows; m: a fresh random subset of "
                "m per pick (paper sec. 3.1: 256)"})


@dataclass(frozen=True)
class DesignOptions(CandidateOptions):
    """Options of a greedy design: ``gamma``, the ridge of H_0 = gamma I, and the candidates."""

    gamma: float = field(default=1.0, metadata={"help": "design ridge: H_0 = gamma I"})


@dataclass(frozen=True)
class CriterionOptions(Options):
    """``criterion``: the gain of a greedy pick, the method's weights unchanged (v_i = sqrt(w_i)
    phi_i). "d": log det H, the paper's eq. 10 (the default: every pick as before); "a":
    tr H^{-1}; "g": max_j phi_j^T H^{-1} phi_j over all N unweighted rows, the largest
    predicted logit variance (eq. 7's pairs; O(N^2 d) per pick). See
    :mod:`sim.design.criteria` (engine :class:`~sim.design.criteria.CriterionGreedy`)."""

    criterion: Literal["d", "a", "g"] = field(default="d", metadata={
        "help": "gain of each greedy pick: d = log det H (eq. 10), a = tr H^-1, g = the largest "
                "predicted logit variance max_j phi_j^T H^-1 phi_j"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.criterion != "d" and getattr(self, "record_kappa", False):
            raise ValueError("record_kappa: Assumption 4's kappa is defined for the D criterion; "
                             f"drop it or use criterion='d' (got {self.criterion!r})")


@dataclass(frozen=True)
class FitOptions(Options):
    """Options of the theta_hat fits on told labels: ridge ``fit_ridge``, optional ball
    ``radius`` (Assumption 2), ``refit`` schedule ("pow2" | "every" | K) and ``batch_size``
    (picks per round before their labels are told)."""

    fit_ridge: float = field(default=1e-3, metadata={"help": "ridge of the theta_hat fits"})
    radius: float | None = field(default=None, metadata={
        "help": "ball constraint ||theta_hat|| <= radius of the fits (Assumption 2)"})
    refit: Literal["pow2", "every"] | int = field(default="pow2", metadata={
        "help": "refit theta_hat at t = 2, 4, 8, ... ('pow2'), every round, or every K rounds"})
    batch_size: int = field(default=1, metadata={"help": "picks per round before labels"})


# ====================================================================== the protocol
class Selector:
    """The protocol: ``ask(k)``, ``tell(indices, labels)``, ``select(n)``, ``observe(...)``.

    Subclasses set ``Config`` (their options dataclass: with :class:`CandidateOptions` fields the
    candidate sampler draws m rows, with :class:`FitOptions` fields the ``refit`` schedule and
    ``batch_size`` apply, otherwise weights are computed :class:`Once`), ``uses_labels``, and
    implement ``_refit(t)`` and ``_pick_one() -> (i, v)``.

    Attributes after use: ``selected_`` (ordered indices asked so far; with ``replace=True``
    rows may repeat), ``labels_`` (dict of the last label told per row), ``n_refits_``,
    ``refit_seconds_`` (wall time spent in refits: theta_hat fits and weights), ``theta_``
    (the current theta_hat where there is one).
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type] = Options
    uses_labels: ClassVar[bool] = False  # whether the method's choices depend on told labels
    #: Why the method cannot pick a row twice (``replace=True`` is then refused), or None.
    replace_refusal: ClassVar[str | None] = None

    def __init__(self, data: PreferenceData, *, seed: Seed = 0, **options: Any) -> None:
        if not isinstance(data, PreferenceData):
            raise ValueError("data: expected a PreferenceData (see sim.data)")
        self.cfg = Entry(self.name, type(self), self.Config, "", "method").make_config(options)
        self._logged_labels = data.s  # only offline methods (adpo+) may read these
        self.data = data.with_(s=None)
        self.rng = as_rng(seed)
        cfg = self.cfg
        self.candidates = CandidateSampler(
            cfg.n_candidates if isinstance(cfg, CandidateOptions) else None, self.rng)
        self.schedule: RefitSchedule = (refit_schedule(cfg.refit) if isinstance(cfg, FitOptions)
                                        else Once())
        self.batch_size = cfg.batch_size if isinstance(cfg, FitOptions) else 1
        self.selected_: list[int] = []
        self.labels_: dict[int, int] = {}
        self.n_refits_ = 0
        self.refit_seconds_ = 0.0
        self.theta_: np.ndarray | None = None
        self._available = np.ones(data.N, dtype=bool)
        self.replace = bool(getattr(cfg, "replace", False))
        if self.replace and self.replace_refusal:
            raise ValueError(f"replace: method {self.name!r} cannot use designs with "
                             f"replacement: {self.replace_refusal}")
        self._cap = GroupCap(data.group, getattr(cfg, "max_per_prompt", None))
        self._pending = np.zeros(data.N, dtype=np.int64)  # asked, not yet told
        self._told_rows: list[int] = []
        self._told_labels: list[int] = []
        self._last_refit: int | None = None
        self._on_pick: list[Callable[[int, np.ndarray], None]] = []
        self._on_refit: list[Callable[[int, np.ndarray | None], None]] = []

    # ------------------------------------------------------------------ hooks
    def observe(self, *, on_pick: Callable[[int, np.ndarray], None] | None = None,
                on_refit: Callable[[int, np.ndarray | None], None] | None = None) -> Selector:
        """Register observers; returns self. ``on_pick(i, v)`` after each pick (v (d,) the
        vector added to the design, Algorithm 1 line 8), ``on_refit(t, theta_hat)`` after each
        refit before round t (theta_hat (d,) or None)."""
        if on_pick is not None:
            self._on_pick.append(on_pick)
        if on_refit is not None:
            self._on_refit.append(on_refit)
        return self

    # ------------------------------------------------------------------ protocol
    def ask(self, k: int = 1) -> np.ndarray:
        """The next ``k`` rows (int64 array (k,), in selection order): distinct unselected
        rows, or with ``replace=True`` any rows (repeats allowed); within ``max_per_prompt``.

        A batch is chosen before any of its labels arrive: theta_hat is refitted (if due) once,
        then each pick updates the design before the next one (within-batch rank-one updates).
        """
        k = positive_int(k, "k")
        left = self._room()
        if k > left:
            raise ValueError(f"k: asked for {k} rows but only {left} picks remain (N = "
                             f"{self.data.N}{self._room_note()})")
        t = self._round()
        if self._last_refit is None or self.schedule.due(t, self._last_refit):
            t0 = time.perf_counter()
            self._refit(t)
            self.refit_seconds_ += time.perf_counter() - t0
            self._last_refit = t
            for cb in self._on_refit:
                cb(t, self.theta_)
        with self._picking():
            picks = self._pick_many(k)
        return np.asarray(picks, dtype=np.int64)

    def _picking(self) -> Any:
        """The context the picks of one ask() run in (none here; the blocked greedy engine's
        selectors pin BLAS to one thread, :func:`sim.design.greedy.row_threads`)."""
        return contextlib.nullcontext()

    def _pick_many(self, k: int) -> list[int]:
        picks = []
        for _ in range(k):
            i, v = self._pick_one()
            i = int(i)
            self._available[i] = self.replace
            blocked = self._cap.picked(i)
            if blocked.size:  # the prompt is full: none of its rows may be picked again
                self._available[blocked] = False
                self._exclude(blocked)
            self._pending[i] += 1
            self.selected_.append(i)
            picks.append(i)
            for pick_cb in self._on_pick:
                pick_cb(i, v)
        return picks

    def tell(self, indices: ArrayLike, labels: ArrayLike) -> None:
        """Feed back labels (1 = the first response preferred) for previously asked rows."""
        idx = check_indices(np.atleast_1d(indices), self.data.N, repeats=self.replace)
        lab = as_labels(np.atleast_1d(labels), "labels", length=idx.size)
        early = np.flatnonzero(np.bincount(idx, minlength=self.data.N) > self._pending)
        if early.size:  # told more often than asked
            raise ValueError(f"indices: row {int(early[0])} was told before it was asked; "
                             "ask() first")
        self._record(idx, lab)

    def _round(self) -> int:
        """The round t of the next ask: 1 + the number of labels told (Algorithm 1's t)."""
        return len(self._told_rows) + 1 if self.replace else len(self.labels_) + 1

    def _round_after(self, k: int) -> int:
        """The round of the ask that follows ``k`` more picks in :meth:`select` (which tells
        each batch's labels before the next ask): ``_round() + k`` for a method that uses
        labels (without replacement the k rows are new, with it each pick is one more label),
        ``_round()`` for one that reads none. A subclass whose rounds count something else
        overrides both."""
        return self._round() + k if self.uses_labels else self._round()

    def _free_picks(self, left: int) -> int:
        """How many of the next ``left`` picks :meth:`select` takes in one :meth:`ask`.

        Whole batches of ``batch_size``, up to (not including) the first batch before which
        a refit would fall due: the picks are then exactly those of asking batch by batch (a
        pick depends on the labels only through the refits), with one call's overhead instead
        of one per batch. :meth:`select` still reveals the labels batch by batch, in order.
        """
        b = self.batch_size
        if isinstance(self.schedule, Once):  # never due: one ask for all
            return left
        t = self._round()
        last = t if self._last_refit is None or self.schedule.due(t, self._last_refit) \
            else self._last_refit
        k = min(b, left)
        while k < left and not self.schedule.due(self._round_after(k), last):
            k += min(b, left - k)
        return k

    def _record(self, idx: np.ndarray, lab: np.ndarray) -> None:
        np.subtract.at(self._pending, idx, 1)
        self.labels_.update(zip(idx.tolist(), lab.tolist()))
        self._told_rows.extend(idx.tolist())
        self._told_labels.extend(lab.tolist())

    def _told(self) -> tuple[np.ndarray, np.ndarray]:
        """The told labels as (rows (k,), labels (k,)): one entry per row, or with
        ``replace=True`` one per label (a row labelled r times appears r times, each with its
        own label: the MLE's sum over labels, eq. 6)."""
        if self.replace:
            return (np.asarray(self._told_rows, dtype=np.int64),
                    np.asarray(self._told_labels, dtype=np.int8))
        return (np.fromiter(self.labels_.keys(), dtype=np.int64, count=len(self.labels_)),
                np.fromiter(self.labels_.values(), dtype=np.int8, count=len(self.labels_)))

    def _room(self) -> int:
        """How many more picks are possible (the cap of ``max_per_prompt`` included)."""
        cap = self._cap.capacity(self._available, self.replace)
        if cap is not None:
            return cap
        if self.replace:
            return np.iinfo(np.int64).max if self._available.any() else 0
        return self.data.N - len(self.selected_)

    def _room_note(self) -> str:
        return "" if not self._cap.active else f", max_per_prompt = {self._cap.cap}"

    def _exclude(self, rows: np.ndarray) -> None:
        """Rows (k,) that just became ineligible (a full prompt); engines with their own
        eligibility mask override this."""

    def select(self, n: int, labels: Callable[[np.ndarray], ArrayLike] | None = None
               ) -> np.ndarray:
        """Select ``n`` rows offline; labels come from ``labels`` (a callable idx -> s[idx]) or
        from the data's logged labels, revealed as rows are selected. Returns (n,) indices."""
        n = positive_int(n, "n")
        remaining = self._room()
        if n > remaining:
            raise ValueError(f"n: budget {n} exceeds the {remaining} possible picks "
                             f"(N = {self.data.N}{self._room_note()}); choose n <= {remaining}")
        if labels is None and self.uses_labels:
            if self._logged_labels is None:
                raise ValueError(f"s: method {self.name!r} needs labels; the data has none")
            draw = None
            if self.replace:  # repeats get fresh labels, from a stream of their own
                if self.data.theta_true is None:
                    raise ValueError("replace: repeated picks need fresh labels, drawn from "
                                     "theta_true, which the data lacks; pass labels=")
                label_rng = self.rng.spawn(1)[0]
                draw = lambda rows: self.data.draw_labels(rows, label_rng)  # noqa: E731
            labels = LabelOracle(self._logged_labels, draw=draw)
        # A LabelOracle without fresh draws returns s[idx] and records the rows in order
        # whatever the batches, so a chunk's labels are revealed in one call, not one per batch.
        whole = isinstance(labels, LabelOracle) and labels.pure
        out: list[int] = []
        while len(out) < n:
            chunk = self.ask(self._free_picks(n - len(out)))
            if self.uses_labels:  # revealed batch by batch, as asking batch by batch would
                assert labels is not None
                step = chunk.size if whole else self.batch_size
                for lo in range(0, chunk.size, step):
                    idx = chunk[lo:lo + step]  # from ask(): only labels need checks
                    lab = np.asarray(labels(idx))
                    if lab.shape != idx.shape or not ((lab == 0) | (lab == 1)).all():
                        lab = as_labels(lab, "labels", length=idx.size)  # raises, naming it
                    self._record(idx, lab.astype(np.int8))
            out.extend(chunk.tolist())
        return np.asarray(out, dtype=np.int64)

    # ------------------------------------------------------------------ the rule
    def _refit(self, t: int) -> None:
        """Recompute whatever depends on theta_hat before round t (called when due)."""

    def _pick_one(self) -> tuple[int, np.ndarray]:
        """One pick: (row index, the vector it adds to the design)."""
        raise NotImplementedError

    def _eligible(self) -> np.ndarray:
        """Unselected rows, ascending (N_left,)."""
        return np.flatnonzero(self._available)

    # ------------------------------------------------------------------ theta_hat
    def _fit_told(self) -> np.ndarray:
        """theta_hat on the labels told so far (theta_hat_0 = 0 when none), (d,)."""
        self.n_refits_ += 1
        idx, s = self._told()
        if not idx.size:
            return np.zeros(self.data.d)
        return self._fit(idx, s)

    def _fit(self, idx: np.ndarray, s: np.ndarray) -> np.ndarray:
        """The DPO MLE (eq. 6, ridge ``fit_ridge``, optional ball ``radius``) on rows idx."""
        d = self.data
        return fit_dpo(d.phi[idx], d.b[idx], d.beta, s, fit_ridge=self.cfg.fit_ridge,
                       radius=self.cfg.radius).theta
