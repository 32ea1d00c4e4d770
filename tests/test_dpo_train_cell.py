"""The runner's ``dpo_train`` cells (sim.experiment.run_dpo_train_cell) on the tiny random Llama.

The files are the llm_dpo figure's (``figures.fig_llm_dpo.build_files``: 16 simulated-label
Chit Chat pairs, one forward pass of the tiny network). References: a literal run of the
steps (the split, the selector, a freshly built network trained with the library's Trainer, the
log-linear fit, the metrics written out here), per seed; the runner's own store for caching.
"""

import functools

import numpy as np
import pytest

from sim import experiment, llm, runner
from sim import llm_train as lt

torch = pytest.importorskip("torch")  # torch is a declared dependency: this never skips here
TRAINER = lt.Trainer  # the literal runs train with it while a mutant patches lt.Trainer

OPTS = {"N": 16, "n_messages": 1, "max_chars": 30, "scale_reward": 4.0, "data_seed": 0,
        "model": "tiny", "max_length": 32, "top_k_blocks": 1, "device": "cpu", "threads": 1,
        "beta": 0.1}


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny network's ops are too small for two threads (spinning threads on a shared
    machine make each op many times slower); the cells use the cache's one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from figures import fig_llm_dpo as fig

    feat, cache = fig.build_files(OPTS, tmp_path_factory.mktemp("dpo"))
    return str(feat), str(cache)


def _env(files, **train):
    feat, cache = files
    return {"kind": "file", "path": feat, "holdout": 0.3, "label": "tiny",
            "train": {"cache": cache, "steps": 2, "lr": 3e-4, "batch_size": 8, **train}}


class _Counts:
    """Counts of trainings and of network / cache-file loads (the functions wrapped in place)."""

    def __init__(self, monkeypatch):
        self.n = {"train": 0, "network": 0, "cache": 0}
        for mod, name, what in ((lt, "train_and_score", "train"), (llm, "tiny_model", "network"),
                                (lt, "load_cache", "cache")):
            monkeypatch.setattr(mod, name, self._counted(getattr(mod, name), what))
        lt._network.cache_clear()
        lt._cache_file.cache_clear()

    def _counted(self, fn, what):
        def wrapped(*a, **k):
            self.n[what] += 1
            return fn(*a, **k)
        return wrapped

    def take(self):
        out, self.n = self.n, dict.fromkeys(self.n, 0)
        return out


def _sweep(files, **train):
    return runner.make_sweep(_env(files, **train), ["uniform", "apo"], [0], budgets=[4, 8],
                             cell="dpo_train")


NET = ["net_accuracy", "net_margin", "net_nll", "train_loss_last"]


def _check_settings_rerun(files, out, counts, base):
    """Each training setting changed: both cells rerun and train (4 trainings), and the rows
    move (so the setting reaches the training, and the key)."""
    for key, value in (("steps", 3), ("lr", 3e-3), ("batch_size", 2)):
        res = runner.run_sweep(_sweep(files, **{key: value}), out)
        assert (res.n_ran, counts.take()["train"]) == (2, 4), key
        moved = res.table[res.table.metric.isin(NET)].value.to_numpy()
        assert not np.allclose(moved, base[base.metric.isin(NET)].value.to_numpy()), key


def test_cells_train_once_then_come_from_the_store_until_a_setting_changes(files, tmp_path,
                                                                            monkeypatch):
    """First run: 2 cells, 2 budgets each = 4 trainings, the network and the cache loaded once
    (mutant: no memo -> 2 loads of each); second run: nothing trained, the same table; a changed
    steps / lr / batch_size reruns every cell (mutant: a cell key without lr -> the lr change is
    served from the store, caught by the same check)."""
    counts = _Counts(monkeypatch)
    first = runner.run_sweep(_sweep(files), tmp_path / "a")
    assert first.n_ran == 2 and counts.take() == {"train": 4, "network": 1, "cache": 1}
    again = runner.run_sweep(_sweep(files), tmp_path / "a")
    assert again.n_ran == 0 and counts.take()["train"] == 0
    assert again.table.equals(first.table)
    _check_settings_rerun(files, tmp_path / "a", counts, first.table)

    plain = runner.Cell.config

    def without_lr(self):
        cfg = plain(self)
        cfg["env"] = dict(cfg["env"], train={k: v for k, v in cfg["env"]["train"].items()
                                             if k != "lr"})
        return cfg

    monkeypatch.setattr(runner.Cell, "config", without_lr)
    runner.run_sweep(_sweep(files), tmp_path / "mutant")
    counts.take()
    with pytest.raises(AssertionError, match="lr"):
        _check_settings_rerun(files, tmp_path / "mutant", counts, first.table)


def test_the_network_and_cache_load_once_per_process(files, tmp_path, monkeypatch):
    """The memo is what keeps loads at one: without it every cell reloads (mutant caught)."""
    counts = _Counts(monkeypatch)
    monkeypatch.setattr(lt, "_network", lt._network.__wrapped__)
    runner.run_sweep(_sweep(files), tmp_path)
    assert counts.take()["network"] == 2  # the count the memo brings down to 1 (test above)


@functools.lru_cache(maxsize=4)
def _literal(files, seed, n, steps, batch_size, lr=3e-4):
    """The cell's numbers by hand: split, uniform picks (seeded by the seed itself), the log-linear
    fit, a fresh tiny network DPO-trained on the picks (batches seeded by the seed)."""
    from sim.data import PreferenceData
    from sim.dpo import fit_dpo
    from sim.selectors import make_selector
    from sim.splits import SPLIT_STREAM, group_split

    feat, cache_path = files
    data = PreferenceData.load(feat)
    split = group_split(data.group, 0.3, np.random.SeedSequence([seed, SPLIT_STREAM]))
    picks = split.train[make_selector("uniform", data.subset(split.train), seed=seed).select(n)]
    test = split.test
    lm = llm.tiny_model(seed=0)
    cache, info = lt.load_cache(cache_path)
    trainer = TRAINER(lm, cache, picks, lt.TrainConfig(beta=data.beta, lr=lr, steps=steps,
                                                       batch_size=batch_size, seed=seed))
    losses = [trainer.step()["loss"] for _ in range(steps)]
    seqs = [j for i in test for j in (2 * i, 2 * i + 1)]
    with torch.no_grad():
        ratio = (lt.policy_logp(lm.model, cache, seqs) - cache.ref_logp[seqs]).numpy()
    net = data.beta * (ratio[0::2] - ratio[1::2])
    theta = fit_dpo(data.phi[picks], data.b[picks], data.beta, data.s[picks],
                    fit_ridge=1e-3).theta
    sign = np.where(data.s[test] == 1, 1.0, -1.0)
    loglin = sign * data.beta * (data.phi[test] @ theta - data.b[test])
    true = info.reward[2 * test] - info.reward[2 * test + 1]
    out = {"train_loss_first": losses[0], "train_loss_last": losses[-1],
           "n_pool": split.train.size, "n_heldout": test.size}
    for who, m in (("net", net), ("loglinear", loglin)):
        tie = np.abs(m) <= lt.TIE_TOL  # counted 1/2
        out.update({f"{who}_accuracy": np.mean((m > lt.TIE_TOL) + 0.5 * tie),
                    f"{who}_margin": np.mean(m),
                    f"{who}_nll": np.mean(np.log1p(np.exp(-m))),
                    f"{who}_reward_agreement": np.mean(np.sign(m[true != 0])
                                                       == np.sign(true[true != 0]))})
    out["corr"] = np.corrcoef(loglin, net)[0, 1]
    return out


def _force_seed_zero(monkeypatch, mutant):
    if mutant == "training batches":
        plain = lt.Trainer

        def trainer(lm, cache, pairs, cfg):
            cfg.seed = 0
            return plain(lm, cache, pairs, cfg)
        monkeypatch.setattr(lt, "Trainer", trainer)
    elif mutant == "split":
        split = experiment.holdout_split
        monkeypatch.setattr(experiment, "holdout_split", lambda d, h, seed: split(d, h, 0))
    elif mutant == "selector":
        sel = experiment._cell_selector
        monkeypatch.setattr(experiment, "_cell_selector",
                            lambda *a, selector_seed: sel(*a, selector_seed=0))


@pytest.mark.parametrize("mutant", [None, "training batches", "split", "selector"])
def test_a_cell_is_the_literal_run_of_its_seed(files, mutant, monkeypatch):
    """For seeds 0 and 1 the cell's rows equal the literal run of that seed to 1e-9, and the
    shared network is back at its initial weights after the cells. Mutants that use seed 0 for
    the training batches, the split or the selector differ from the literal run of seed 1."""
    _force_seed_zero(monkeypatch, mutant)
    env = _env(files, steps=3, batch_size=2)
    agree = []
    for seed in (0, 1) if mutant is None else (1,):
        rows = experiment.run_dpo_train_cell(env, {"name": "uniform"}, seed, [8])
        got = {r["metric"]: r["value"] for r in rows}
        want = _literal(files, seed, 8, steps=3, batch_size=2)
        agree.append(all(got[k] == pytest.approx(v, rel=1e-9, abs=1e-12)
                         for k, v in want.items()))
    if mutant is None:
        assert agree == [True, True]
        fresh = dict(llm.tiny_model(seed=0).model.named_parameters())
        shared, _, _ = lt.open_cache(files[1])
        for name, p in shared.model.named_parameters():
            assert torch.equal(p, fresh[name]), name
    else:
        assert agree == [False], mutant


@pytest.mark.parametrize("edit, msg", [
    (lambda e: e.pop("train"), r"env\.train: missing"),
    (lambda e: e["train"].update(stepz=2), r"env\.train\.stepz: unknown key"),
    (lambda e: e["train"].pop("lr"), r"env\.train\.lr: missing"),
    (lambda e: e["train"].update(cache="nope.npz"), r"env\.train\.cache: expected an existing"),
    (lambda e: e["train"].update(steps=0), r"env\.train\.steps"),
    (lambda e: e.update(rows=4), r"env\.kind: a dpo_train cell needs a 'file' env .*rows"),
    (lambda e: e.pop("holdout"), r"env\.holdout: missing"),
])
def test_bad_train_envs_are_refused_when_the_sweep_is_parsed(files, edit, msg):
    env = _env(files)
    edit(env)
    with pytest.raises(ValueError, match=msg):
        runner.make_sweep(env, ["uniform"], [0], budgets=[4], cell="dpo_train")


def test_train_tables_belong_to_dpo_train_cells_only(files, tmp_path):
    """A select sweep refuses the train table as an unknown file-env option; a dpo_train sweep
    refuses selector series and designs with replacement; a cache of other pairs than the
    file's rows is refused by the cell."""
    with pytest.raises(ValueError, match=r"train: not an option of environment 'file'"):
        runner.make_sweep(_env(files), ["uniform"], [0], budgets=[4])
    for extra in ({"series": ["kappa_t"], "record_kappa": True}, {"replace": True}):
        with pytest.raises(ValueError, match=r"methods\[0\]\.(series|replace): not available"):
            runner.make_sweep(_env(files), [{"name": "adpo", **extra}], [0], budgets=[4],
                              cell="dpo_train")
    from sim.data import PreferenceData

    fewer = tmp_path / "fewer.npz"
    PreferenceData.load(files[0]).subset(np.arange(12)).save(fewer)
    with pytest.raises(ValueError, match=r"cache: 16 pairs, but the env file has 12 rows"):
        experiment.run_dpo_train_cell(dict(_env(files), path=str(fewer)), {"name": "uniform"},
                                      0, [4])
