"""The conformance suite: the contracts every selection method and environment kind keeps.

Like scikit-learn's ``check_estimator``, these checks run on built-ins and third-party plug-ins
alike (``tests/test_conformance.py`` runs them over every registered entry)::

    from sim.testing import check_selector, check_env
    check_selector("my-rule")                      # a registered name, or
    check_selector(lambda data, seed, **o: MyRule(data, seed=seed, **o))
    check_env("my-env", options={"N": 50})

Each returns the names of the contracts it checked, or raises :class:`ContractError` whose
message starts with the failed contract's name.

Selector contracts (the protocol of :class:`sim.selectors.Selector`: ``ask(k)``,
``tell(indices, labels)``, ``select(n, labels=None)``, attribute ``selected_``):

==========================  ==============================================================
shapes                      ``select(n)``: a 1-D integer array of n row indices in [0, N)
no-duplicates               ``select(N)`` returns every row exactly once
determinism                 two selectors built with the same seed pick the same rows
budget-errors               ``select(N + 1)``, ``select(0)``, ``ask(k)`` past the unselected
                            rows raise ``ValueError``
ask-tell                    the ask/tell loop (batches of ``batch_size``) picks what
                            ``select`` picks with the same seed
batch-size                  ``ask(k)`` returns k rows; with option ``batch_size = b``,
                            ``select`` reveals labels in batches of b
labels-after-selection      labels are read (from the recording oracle given to
                            ``select``) only for rows already selected, and online methods
                            run without the data's label array
unknown-options             an unknown option is refused with a ``ValueError`` naming it
picklable                   a selector survives pickling mid-run and continues identically
                            (Dask ships work between processes)
==========================  ==============================================================

Environment contracts: ``returns-data`` (a :class:`~sim.data.PreferenceData` with the
configured N), ``determinism`` (same seed, same arrays), ``unknown-options``, ``config-
defaults`` (the factory's keyword defaults equal its config's), ``theta-star`` (a stated
theta_star is the ridge MLE of eq. 5 on the environment's labels: gradient ~ 0), ``picklable``.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .data import PreferenceData

#: Marker for an option no method or environment takes (the unknown-options contract).
UNKNOWN_OPTION = "no_such_option_for_conformance"


class ContractError(AssertionError):
    """A conformance contract failed; the message starts with the contract's name."""


def _fail(contract: str, detail: str) -> ContractError:
    return ContractError(f"{contract}: {detail}")


class RecordingOracle:
    """A label oracle (``oracle(indices) -> s[indices]``) that records every call and checks
    that each asked row was already selected by ``selector`` at the time of the call."""

    def __init__(self, s: np.ndarray, selector: Any = None) -> None:
        self.s = np.asarray(s)
        self.selector = selector
        self.calls: list[list[int]] = []
        self.early: list[int] = []

    def __call__(self, indices: Any) -> np.ndarray:
        idx = [int(i) for i in np.atleast_1d(indices)]
        self.calls.append(idx)
        if self.selector is not None:
            chosen = set(getattr(self.selector, "selected_", ()))
            self.early.extend(i for i in idx if i not in chosen)
        return self.s[np.asarray(idx, dtype=np.int64)]


def probe_data(N: int = 40, d: int = 3, seed: int = 0) -> PreferenceData:
    """The small labelled environment the checks run on (gaussian, with theta_star)."""
    from .envs import make_env

    return make_env("gaussian", seed=seed, N=N, d=d, beta=1.0, theta_norm=2.0)


# ============================================================================ selectors
def _selector_factory(factory: Any, options: Mapping[str, Any] | None
                      ) -> tuple[Callable[..., Any], frozenset[str], tuple[str, ...], str]:
    """(build(data, seed, **extra), tags, option names or (), display name)."""
    options = dict(options or {})
    if isinstance(factory, str):
        from .registry import METHODS
        from .selectors import make_selector

        entry = METHODS.get(factory)

        def build(data: PreferenceData, seed: Any, **extra: Any) -> Any:
            return make_selector(entry.name, data, seed=seed, **{**options, **extra})

        return build, entry.tags, entry.option_names(), entry.name

    def build_callable(data: PreferenceData, seed: Any, **extra: Any) -> Any:
        return factory(data, seed=seed, **{**options, **extra})

    name = getattr(factory, "__qualname__", repr(factory))
    return build_callable, frozenset(), (), name


def check_selector(factory: Any, *, options: Mapping[str, Any] | None = None,
                   data: PreferenceData | None = None, offline: bool | None = None,
                   option_names: tuple[str, ...] | None = None) -> list[str]:
    """Run every selector contract (module docstring) on ``factory``.

    ``factory``: a registered method name, or a callable ``(data, seed=..., **options) ->
    selector``. ``options``: options passed on every build. ``data``: the labelled
    environment to run on (default :func:`probe_data`, N = 40). ``offline``: whether the
    method may see the data's logged labels (default: the entry's ``"offline"`` tag; a plain
    callable is treated as online). ``option_names``: the options a plain callable takes (a
    registered method's come from its config); ``batch_size`` among them turns on the batch
    checks. Returns the contracts checked; raises :class:`ContractError`.
    """
    build, tags, own, name = _selector_factory(factory, options)
    option_names = own if option_names is None else tuple(option_names)
    data = probe_data() if data is None else data
    if data.s is None:
        raise ValueError("data: the conformance checks need labelled data (s)")
    labels = data.s
    offline = ("offline" in tags) if offline is None else offline
    seen = data if offline else data.with_(s=None)
    N = data.N
    n = min(12, N - 1)
    done = []

    def run(contract: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except ContractError:
            raise
        except Exception as exc:  # noqa: BLE001  (any crash is a failed contract, named)
            raise _fail(contract, f"{name} raised {type(exc).__name__}: {exc}") from exc
        done.append(contract)

    def select(sel: Any, k: int) -> tuple[np.ndarray, RecordingOracle]:
        oracle = RecordingOracle(labels, sel)
        return np.asarray(sel.select(k, labels=oracle)), oracle

    def shapes() -> None:
        idx, _ = select(build(seen, 0), n)
        if idx.ndim != 1 or idx.shape[0] != n:
            raise _fail("shapes", f"select({n}) returned shape {idx.shape}, expected ({n},)")
        if idx.dtype.kind not in "iu":
            raise _fail("shapes", f"select returned dtype {idx.dtype}, expected integers")
        if idx.size and (idx.min() < 0 or idx.max() >= N):
            raise _fail("shapes", f"indices outside [0, {N}): {idx.tolist()}")

    def no_duplicates() -> None:
        idx, _ = select(build(seen, 0), N)
        if np.unique(idx).size != idx.size or idx.size != N:
            dup = sorted({int(i) for i in idx if np.sum(idx == i) > 1})
            raise _fail("no-duplicates", f"select(N = {N}) returned {idx.size} rows, "
                        f"{np.unique(idx).size} distinct (repeated: {dup[:5]})")

    def determinism() -> None:
        a, _ = select(build(seen, 7), n)
        b, _ = select(build(seen, 7), n)
        if not np.array_equal(a, b):
            raise _fail("determinism", f"two selectors with seed 7 picked {a.tolist()} and "
                        f"{b.tolist()}; draw randomness only from the seed")

    def budget_errors() -> None:
        oracle = RecordingOracle(labels)
        for what, call in ((f"select(N + 1 = {N + 1})", lambda s: s.select(N + 1, oracle)),
                           ("select(0)", lambda s: s.select(0, oracle))):
            try:
                call(build(seen, 0))
            except ValueError:
                continue
            raise _fail("budget-errors", f"{what} did not raise ValueError")
        sel = build(seen, 0)
        select(sel, N - 2)
        try:
            sel.ask(3)
        except ValueError:
            return
        raise _fail("budget-errors", "ask(3) with 2 unselected rows left did not raise "
                    "ValueError")

    def batch() -> int:
        return 3 if "batch_size" in option_names else 1

    def ask_tell() -> None:
        b = batch()
        extra = {"batch_size": b} if b > 1 else {}
        ref, _ = select(build(seen, 3, **extra), n)
        sel = build(seen, 3, **extra)
        oracle = RecordingOracle(labels, sel)
        got: list[int] = []
        while len(got) < n:
            idx = np.asarray(sel.ask(min(b, n - len(got))))
            if getattr(sel, "uses_labels", True):
                sel.tell(idx, oracle(idx))
            got.extend(int(i) for i in idx)
        if got != ref.tolist():
            raise _fail("ask-tell", f"ask/tell (batches of {b}) picked {got}, select picked "
                        f"{ref.tolist()} with the same seed")

    def batch_size() -> None:
        for k in (1, 3):
            idx = np.asarray(build(seen, 0).ask(k))
            if idx.shape != (k,):
                raise _fail("batch-size", f"ask({k}) returned shape {idx.shape}")
        b = batch()
        if b == 1:
            return
        sel = build(seen, 0, batch_size=b)
        _, oracle = select(sel, 10)
        sizes = [len(c) for c in oracle.calls]
        if sizes and sizes != [b] * (10 // b) + ([10 % b] if 10 % b else []):
            raise _fail("batch-size", f"with batch_size = {b}, select(10) revealed labels in "
                        f"batches of {sizes}")

    def labels_after_selection() -> None:
        sel = build(seen, 0)
        _, oracle = select(sel, n)
        if oracle.early:
            raise _fail("labels-after-selection", f"labels of rows {sorted(set(oracle.early))[:5]}"
                        " were read before those rows were selected")
        told = sorted({i for c in oracle.calls for i in c})
        if not set(told) <= set(getattr(sel, "selected_", told)):
            raise _fail("labels-after-selection", "labels were read for rows never selected")

    def unknown_options() -> None:
        try:
            build(seen, 0, **{UNKNOWN_OPTION: 1})
        except ValueError as exc:
            if UNKNOWN_OPTION not in str(exc):
                raise _fail("unknown-options", f"the error does not name the option: {exc}")
            return
        except TypeError as exc:  # a plain callable's signature refusing it is enough
            if not option_names and UNKNOWN_OPTION in str(exc):
                return
            raise _fail("unknown-options", f"an unknown option raised TypeError ({exc}); "
                        "refuse it with a ValueError naming it") from None
        raise _fail("unknown-options", f"option {UNKNOWN_OPTION!r} was accepted silently")

    def picklable() -> None:
        sel = build(seen, 5)
        blob = pickle.dumps(sel)
        first, _ = select(pickle.loads(blob), 4)
        ref, _ = select(sel, 4)
        if not np.array_equal(first, ref):
            raise _fail("picklable", "an unpickled fresh selector picks differently")
        twin = pickle.loads(pickle.dumps(sel))   # mid-run: continues where the original is
        a, _ = select(sel, 4)
        b, _ = select(twin, 4)
        if not np.array_equal(a, b):
            raise _fail("picklable", f"after pickling mid-run the copy picked {b.tolist()}, "
                        f"the original {a.tolist()}")

    for contract, fn in (("shapes", shapes), ("no-duplicates", no_duplicates),
                         ("determinism", determinism), ("budget-errors", budget_errors),
                         ("ask-tell", ask_tell),
                         ("labels-after-selection", labels_after_selection),
                         ("batch-size", batch_size),
                         ("unknown-options", unknown_options), ("picklable", picklable)):
        run(contract, fn)
    return done


# ============================================================================ environments
def check_env(factory: Any, *, options: Mapping[str, Any] | None = None) -> list[str]:
    """Run every environment contract (module docstring) on ``factory``.

    ``factory``: a registered kind (its options validated through :func:`sim.envs.make_env`),
    or a callable ``(seed=..., **options) -> PreferenceData``. ``options``: the options to
    build with (required ones included, e.g. ``{"N": 50, "d": 3}``). Returns the contracts
    checked; raises :class:`ContractError`.
    """
    options = dict(options or {})
    entry = None
    if isinstance(factory, str):
        from .envs import make_env
        from .registry import ENVS

        entry = ENVS.get(factory)

        def build(seed: Any, **extra: Any) -> PreferenceData:
            return make_env(entry.name, seed=seed, **{**options, **extra})
    else:
        def build(seed: Any, **extra: Any) -> PreferenceData:
            return factory(seed=seed, **{**options, **extra})
    name = entry.name if entry is not None else getattr(factory, "__qualname__", repr(factory))
    done: list[str] = []

    def run(contract: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except ContractError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _fail(contract, f"{name} raised {type(exc).__name__}: {exc}") from exc
        done.append(contract)

    def returns_data() -> None:
        data = build(0)
        if not isinstance(data, PreferenceData):
            raise _fail("returns-data", f"returned {type(data).__name__}, not PreferenceData")
        want = options.get("N", options.get("rows"))
        if want is not None and data.N != want:
            raise _fail("returns-data", f"N = {want} was asked for, {data.N} rows returned")

    def determinism() -> None:
        a, b = build(11), build(11)
        for key in ("phi", "b", "s", "theta_star", "theta_true"):
            x, y = getattr(a, key), getattr(b, key)
            if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
                raise _fail("determinism", f"two draws with seed 11 differ in {key}")
        if a.beta != b.beta:
            raise _fail("determinism", "two draws with seed 11 differ in beta")

    def unknown_options() -> None:
        try:
            build(0, **{UNKNOWN_OPTION: 1})
        except ValueError as exc:
            if UNKNOWN_OPTION not in str(exc):
                raise _fail("unknown-options", f"the error does not name the option: {exc}")
            return
        except TypeError as exc:  # a plain callable's signature refusing it is enough
            if entry is None and UNKNOWN_OPTION in str(exc):
                return
            raise _fail("unknown-options", f"an unknown option raised TypeError ({exc})") \
                from None
        raise _fail("unknown-options", f"option {UNKNOWN_OPTION!r} was accepted silently")

    def config_defaults() -> None:
        if entry is None or entry.config is None:
            return
        params = inspect.signature(entry.factory).parameters
        for f in dataclasses.fields(entry.config):
            p = params.get(f.name)
            if p is None:
                raise _fail("config-defaults", f"config field {f.name!r} is not a parameter of "
                            f"the factory {entry.factory.__qualname__}")
            if p.default is not inspect.Parameter.empty and f.default is not dataclasses.MISSING \
                    and p.default != f.default:
                raise _fail("config-defaults", f"{f.name}: the factory's default {p.default!r} "
                            f"differs from the config's {f.default!r}")

    def theta_star() -> None:
        from .dpo import dpo_gradient

        data = build(0)
        ridge = data.info.get("fit_ridge")
        if data.theta_star is None or data.s is None or ridge is None \
                or data.info.get("radius") is not None or data.info.get("assumption2"):
            return
        th = data.theta_star
        g = dpo_gradient(th, data.phi, data.b, data.beta, data.s) + ridge * th
        scale = data.beta * np.abs(data.phi).sum(axis=0).max() + ridge * np.abs(th).max() + 1.0
        if np.abs(g).max() > 1e-6 * scale:
            raise _fail("theta-star", f"theta_star is not the ridge MLE on the environment's "
                        f"labels (max |gradient| = {np.abs(g).max():.3g})")

    def picklable() -> None:
        data = build(0)
        back = pickle.loads(pickle.dumps(data))
        if not np.array_equal(back.phi, data.phi):
            raise _fail("picklable", "the data changed through pickling")
        if entry is not None and entry.config is not None:
            cfg = entry.make_config(options)
            if pickle.loads(pickle.dumps(cfg)) != cfg:
                raise _fail("picklable", "the config changed through pickling")

    for contract, fn in (("returns-data", returns_data), ("determinism", determinism),
                         ("unknown-options", unknown_options),
                         ("config-defaults", config_defaults), ("theta-star", theta_star),
                         ("picklable", picklable)):
        run(contract, fn)
    return done
