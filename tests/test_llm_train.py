"""Tests of sim.llm_train (DPO with cached frozen activations) on a tiny random Llama built
offline, plus one short run on the real SmolLM2-135M-Instruct.

References are independent of the code under test: the model's own full forward pass
(``model(input_ids).logits`` on each unpadded sequence alone, response log-probs summed by an
explicit loop, no cache, no padding helper), and TRL's ``DPOTrainer.compute_loss`` on the same
pairs and weights.
"""

import copy
import json
import math
import socket

import numpy as np
import pytest

from sim import llm
from sim import llm_train as lt
from sim import textdata as td
from sim.data import read_subset

torch = pytest.importorskip("torch")  # torch is a declared dependency: this never skips here



@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model's ops are too small for two threads (on a shared machine, spinning threads
    make each op ~20x slower); the SmolLM2 test sets its own count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


from helpers import PAIRS  # noqa: E402


def _rows():
    return [td.PairRow(k + 1, p, c, r, 1) for k, (p, c, r) in enumerate(PAIRS)]


def _trl_file(path, pairs=PAIRS):
    td.write_jsonl([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs], path)
    return path


def _full_logp(model, tok, prompt, response):
    """log pi(response | prompt) by the plain full forward pass of the unpadded sequence."""
    p = llm.prompt_ids(tok, prompt)
    r = llm.response_ids(tok, response)
    ids = torch.tensor([p + r])
    lsm = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    t = torch.arange(len(p), ids.shape[1])
    return lsm[t - 1, ids[0, t]].sum()  # token t is predicted at position t - 1


def _full_loss(policy, ref, tok, pairs, beta):
    """-mean log sigmoid(beta [(log pi - log pi_0)(y_w) - (...)(y_l)]) with the full model."""
    terms = []
    for p, c, r in pairs:
        with torch.no_grad():
            rc, rr = _full_logp(ref, tok, p, c), _full_logp(ref, tok, p, r)
        z = beta * ((_full_logp(policy, tok, p, c) - rc) - (_full_logp(policy, tok, p, r) - rr))
        terms.append(-torch.nn.functional.logsigmoid(z))
    return torch.stack(terms).mean()


def _perturb_top(model, start, seed=0, scale=0.05):
    """Move the top blocks away from the reference so log-ratios are not all zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in lt.trained_names(model, start):
            p = dict(model.named_parameters())[n]
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _cached_loss_and_grads(lm, k, beta):
    """Our path: cache from the reference, then the perturbed top blocks on the cache."""
    start = lt.split_index(lm.model, k)
    cache = lt.build_cache(lm, _rows(), start, max_length=512, batch_size=4)
    _perturb_top(lm.model, start)
    params = lt.freeze_all_but_top(lm.model, start)
    logp = lt.policy_logp(lm.model, cache, list(range(2 * len(PAIRS))))
    loss, _ = lt.dpo_terms(logp, cache.ref_logp, beta)
    loss.backward()
    return loss, {n: p.grad.clone() for n, p in params.items()}, logp.detach(), cache


@pytest.mark.parametrize("k", [1, 2])
def test_cached_loss_and_gradients_equal_the_full_model(k):
    """float64: the cached top-k path equals the plain full forward/backward to 1e-10."""
    lm = llm.tiny_model(seed=5)
    lm.model.double()
    ref = copy.deepcopy(lm.model)
    beta = 0.7
    loss, grads, logp, cache = _cached_loss_and_grads(lm, k, beta)
    full = copy.deepcopy(lm.model)  # perturbed weights, no cache
    # per sequence (the DPO loss alone cannot see a dropped response mask: the prompt's
    # log-prob is the same for y_w and y_l and cancels)
    with torch.no_grad():
        want_lp = [_full_logp(m, lm.tokenizer, p, y) for p, c, r in PAIRS for y in (c, r)
                   for m in (full, ref)]
    np.testing.assert_allclose(logp.numpy(), [float(x) for x in want_lp[0::2]], atol=1e-10)
    np.testing.assert_allclose(cache.ref_logp.numpy(), [float(x) for x in want_lp[1::2]],
                               atol=1e-10)
    for p in full.parameters():
        p.grad = None
    want = _full_loss(full, ref, lm.tokenizer, PAIRS, beta)
    want.backward()
    assert abs(loss.item() - math.log(2)) > 1e-3  # the perturbation makes margins non-zero
    assert float(loss) == pytest.approx(float(want), abs=1e-10)
    full_params = dict(full.named_parameters())
    assert len(grads) == 9 * k + 1  # 9 tensors per Llama block + the final norm
    for n, g in grads.items():
        assert g.abs().max() > 0, n
        np.testing.assert_allclose(g.numpy(), full_params[n].grad.numpy(), atol=1e-10, rtol=1e-8)
    # nothing below the split moved or got a gradient
    assert all(p.grad is None for n, p in lm.model.named_parameters() if n not in grads)


def test_full_model_reference_rejects_wrong_masks_orientation_and_beta():
    """Guards of the test above: the reference loss moves under each mutant of the loss -- the
    prompt tokens counted as response, chosen/rejected swapped, another beta."""
    lm = llm.tiny_model(seed=5)
    lm.model.double()
    ref = copy.deepcopy(lm.model)
    _perturb_top(lm.model, 1)
    with torch.no_grad():
        base = float(_full_loss(lm.model, ref, lm.tokenizer, PAIRS, 0.7))
        swapped = float(_full_loss(lm.model, ref, lm.tokenizer,
                                   [(p, r, c) for p, c, r in PAIRS], 0.7))
        other_beta = float(_full_loss(lm.model, ref, lm.tokenizer, PAIRS, 0.5))
        start = lt.split_index(lm.model, 1)
        cache = lt.build_cache(lm, _rows(), start, max_length=512)
        # mutant: the prompt is scored too (response mask dropped) -> cache ref log-probs move
        cache_np = copy.copy(cache)
        cache_np.seqs = [(ids, 1) for ids, _ in cache.seqs]
        logp = lt.policy_logp(lm.model, cache, list(range(12)))
        logp_np = lt.policy_logp(lm.model, cache_np, list(range(12)))
    for other in (swapped, other_beta):
        assert abs(other - base) > 1e-3
    assert (logp_np - logp).abs().min() > 1e-2


def test_loss_and_gradients_equal_trls_dpo_trainer(tmp_path):
    """TRL's DPOTrainer (sigmoid loss, reference model given) on the same pairs and weights:
    same loss and same gradients of the trained tensors as our cached path, float32."""
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    lm = llm.tiny_model(seed=6)
    beta = 0.3
    ref = copy.deepcopy(lm.model)
    loss, grads, _, _ = _cached_loss_and_grads(lm, 1, beta)
    policy = copy.deepcopy(lm.model)
    for p in policy.parameters():
        p.grad = None
    args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=beta, report_to="none",
                     per_device_train_batch_size=len(PAIRS), max_length=None, use_cpu=True,
                     bf16=False,  # else accelerate runs the reference under bf16 autocast
                     precompute_ref_log_probs=False, dataloader_num_workers=0, seed=0,
                     logging_steps=1)
    ds = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS])
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=ds,
                         processing_class=lm.tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train(False)
    trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_loss.backward()
    assert trl_loss.item() == pytest.approx(loss.item(), abs=1e-5)
    trl_params = dict(trainer.model.named_parameters())
    for n, g in grads.items():
        np.testing.assert_allclose(g.numpy(), trl_params[n].grad.numpy(), atol=1e-5, rtol=1e-3)


def test_training_lowers_the_loss_and_the_run_reloads_to_identical_logprobs(tmp_path):
    src = _trl_file(tmp_path / "p.jsonl")
    lm = llm.tiny_model(seed=1)
    cfg = lt.TrainConfig(model="tiny", top_k_blocks=1, beta=0.5, lr=2e-3, steps=12,
                         batch_size=3, checkpoint_every=5)
    out = lt.train(src, tmp_path / "run", cfg, lm=lm, progress=False)
    assert out["finished"] and out["steps_done"] == 12
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == list(range(1, 13))
    assert lines[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy = reference
    first, last = np.mean([m["loss"] for m in lines[:2]]), np.mean([m["loss"] for m in lines[-2:]])
    assert last < 0.5 * first, (first, last)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.safetensors", "config.json", "metrics.jsonl", "model.safetensors"]
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / "run/model.safetensors"))
    assert sorted(saved) == sorted(lt.trained_names(lm.model, 1))  # top block + norm only
    # held-out style evaluation on the training pairs: the trained run beats the reference
    res = lt.evaluate_pairs(src, run_dir=tmp_path / "run", lm=llm.tiny_model(seed=1))
    assert res["accuracy"] == 1.0 and res["margin"] > 0.5 and res["nll"] < 0.5 * math.log(2)
    # a fresh model + the saved tensors gives the trained model's log-probs exactly
    fresh = llm.tiny_model(seed=1)
    lt.load_weights(fresh.model, tmp_path / "run")
    cache = lt.build_cache(fresh, _rows(), 1, max_length=128)
    with torch.no_grad():
        a = lt.policy_logp(lm.model, cache, list(range(12)))
        b = lt.policy_logp(fresh.model, cache, list(range(12)))
        c = lt.policy_logp(llm.tiny_model(seed=1).model, cache, list(range(12)))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-2  # the untrained model differs: the check can fail


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    src = _trl_file(tmp_path / "p.jsonl")
    cfg = lt.TrainConfig(model="tiny", beta=0.5, lr=2e-3, steps=5, batch_size=2,
                         checkpoint_every=2)
    lt.train(src, tmp_path / "a", cfg, lm=llm.tiny_model(seed=2), progress=False)
    part = lt.train(src, tmp_path / "b", cfg, lm=llm.tiny_model(seed=2), progress=False,
                    stop_after=3)
    assert not part["finished"] and not (tmp_path / "b/model.safetensors").exists()
    assert len((tmp_path / "b/metrics.jsonl").read_text().splitlines()) == 3  # step 3 unsaved
    with pytest.raises(ValueError, match="other settings"):
        lt.train(src, tmp_path / "b", lt.TrainConfig(model="tiny", beta=0.6, steps=5),
                 lm=llm.tiny_model(seed=2), progress=False)
    done = lt.train(src, tmp_path / "b", cfg, lm=llm.tiny_model(seed=2), progress=False)
    assert done["finished"] and done["steps_this_call"] == 3  # resumed from step 2
    assert (tmp_path / "a/metrics.jsonl").read_text() == (tmp_path / "b/metrics.jsonl").read_text()
    from safetensors.torch import load_file
    wa, wb = (load_file(str(tmp_path / f"{x}/model.safetensors")) for x in "ab")
    assert all(torch.equal(wa[n], wb[n]) for n in wa)


def test_untrained_model_has_zero_margin_on_held_out_pairs(tmp_path):
    """The untrained policy through the cached top-block path against the full-model reference:
    margin 0 to float error, accuracy 1/2 (ties), NLL log 2."""
    src = _trl_file(tmp_path / "p.jsonl")
    lm = llm.tiny_model(seed=4)
    cache = lt.build_cache(lm, _rows(), 1, batch_size=5)  # the features of `adpo features`
    np.testing.assert_allclose(cache.phi, llm.featurize_sequences(lm.model, cache.seqs)[0],
                               atol=1e-5)
    res = lt.evaluate_pairs(src, lm=lm, beta=1.0)
    assert abs(res["margin"]) < 1e-5 and res["accuracy"] == 0.5
    assert res["nll"] == pytest.approx(math.log(2), abs=1e-5)
    assert res["n_pairs"] == len(PAIRS) and res["run"] is None and res["reward_agreement"] is None


def test_reward_agreement_maps_chosen_back_to_response_order(tmp_path):
    rows = [{"prompt": "p", "response_1": "a", "response_2": "b", "label": lab,
             "reward_1": r1, "reward_2": r2}
            for lab, r1, r2 in [(1, 1.0, 0.0), (0, 1.0, 0.0), (0, 0.0, 2.0), (1, 0.5, 0.5)]]
    td.write_jsonl(rows, tmp_path / "s.jsonl")
    read, _ = td.read_pairs(tmp_path / "s.jsonl")
    # log-ratios of (chosen, rejected): chosen wins in rows 0, 1, 3; loses in row 2
    ratios = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # implied (r_1 - r_2) signs: +, -, +, +; true: +, +, -, tie (left out) -> 1/3 agree
    assert lt.reward_agreement(tmp_path / "s.jsonl", read, ratios) == pytest.approx(1 / 3)
    td.write_jsonl([{k: v for k, v in r.items() if not k.startswith("reward")} for r in rows],
                   tmp_path / "n.jsonl")
    read, _ = td.read_pairs(tmp_path / "n.jsonl")
    assert lt.reward_agreement(tmp_path / "n.jsonl", read, ratios) is None


def test_bad_inputs_give_one_line_errors(tmp_path, monkeypatch):
    src = _trl_file(tmp_path / "p.jsonl")
    lm = llm.tiny_model(seed=0)
    cfg = lt.TrainConfig(model="tiny", steps=1)
    with pytest.raises(ValueError, match="subset: no pairs"):
        lt.train(src, tmp_path / "r", cfg, subset=[], lm=lm, progress=False)
    with pytest.raises(ValueError, match=r"subset: indices must lie in \[0, 6\)"):
        lt.train(src, tmp_path / "r", cfg, subset=[0, 9], lm=lm, progress=False)
    with pytest.raises(ValueError, match="top_k_blocks: the model has 2 blocks"):
        lt.train(src, tmp_path / "r", lt.TrainConfig(top_k_blocks=3), lm=lm, progress=False)
    (tmp_path / "sel.json").write_text('{"indices": []}')
    with pytest.raises(ValueError, match="empty; select at least one row"):
        read_subset(tmp_path / "sel.json", 6)  # the one subset reader (adpo train uses it)
    td.write_jsonl([{"prompt": "p", "response_1": "a", "response_2": "b"}], tmp_path / "u.jsonl")
    with pytest.raises(ValueError, match="line 1: the pair has no label"):
        lt.train(tmp_path / "u.jsonl", tmp_path / "r2", cfg, lm=lm, progress=False)
    monkeypatch.setattr(lt.os, "sysconf", lambda name: 1)  # 1 free page of 1 byte
    with pytest.raises(ValueError, match="GiB free on cpu"):
        lt.train(src, tmp_path / "r3", cfg, lm=lm, progress=False)
    with pytest.raises(ValueError, match="no config.json"):
        lt.evaluate_pairs(src, run_dir=tmp_path / "nothing", lm=lm)


def test_real_smollm2_few_dpo_steps_lower_the_loss(tmp_path, monkeypatch):
    """The embedded SmolLM2-135M-Instruct, offline (sockets refused): 6 steps on 4 handwritten
    pairs with the top block trained; the loss falls from log 2."""
    def refuse(*a, **kw):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    torch.set_num_threads(2)
    td.write_jsonl(td.handwritten_pairs("topic")[:4], tmp_path / "h.jsonl")
    cfg = lt.TrainConfig(model="smollm2", top_k_blocks=1, beta=0.1, lr=1e-4, steps=6,
                         batch_size=4, max_length=64)
    lt.train(tmp_path / "h.jsonl", tmp_path / "run", cfg, device="cpu", progress=False)
    loss = [json.loads(x)["loss"] for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert loss[0] == pytest.approx(math.log(2), abs=2e-3)
    assert loss[-1] < loss[0] - 0.05, loss


def test_cli_pairs_split_features_select_train_evaluate(tmp_path, capsys):
    """The README walkthrough on the tiny model directory: the held-out file shares no prompt
    with the pool; train and evaluate exchange files; evaluate's JSON has the documented keys."""
    from adpo.cli import main

    model = str(llm.save_tiny_model(tmp_path / "tiny", seed=0))
    f = {k: str(tmp_path / v) for k, v in dict(
        pairs="p.jsonl", pool="pool.jsonl", held="held.jsonl", rec="split.json",
        feats="pool.npz", sel="sel.json", run="run", ev="eval.json").items()}
    assert main(["pairs", "--source", "simulated", "--n", "40", "--max-chars", "60",
                 "--out", f["pairs"]]) == 0
    assert main(["split", "--data", f["pairs"], "--pool", f["pool"], "--heldout", f["held"],
                 "--holdout", "0.25", "--seed", "1", "--record", f["rec"]]) == 0
    src = [json.loads(x) for x in open(f["pairs"])]
    pool = [json.loads(x) for x in open(f["pool"])]
    held = [json.loads(x) for x in open(f["held"])]
    assert len(pool) + len(held) == len(src) and len(held) >= 10
    assert not {r["prompt"] for r in pool} & {r["prompt"] for r in held}
    assert sorted(map(json.dumps, pool + held)) == sorted(map(json.dumps, src))
    assert main(["features", "--model", model, "--data", f["pool"], "--out", f["feats"],
                 "--device", "cpu", "--quiet"]) == 0
    assert main(["select", "--data", f["feats"], "--method", "uniform", "--n", "6",
                 "--out", f["sel"]]) == 0
    assert main(["train", "--data", f["pool"], "--subset", f["sel"], "--out", f["run"],
                 "--model", model, "--device", "cpu", "--steps", "4", "--batch-size", "3",
                 "--lr", "1e-3", "--quiet"]) == 0
    cfg = json.loads((tmp_path / "run/config.json").read_text())
    assert cfg["subset"] == json.loads(open(f["sel"]).read())["indices"]
    assert main(["evaluate", "--run", f["run"], "--data", f["held"], "--out", f["ev"],
                 "--device", "cpu", "--quiet"]) == 0
    ev = json.loads(open(f["ev"]).read())
    assert {"accuracy", "margin", "nll", "n_pairs", "model", "run",
            "reward_agreement"} <= set(ev)
    assert ev["n_pairs"] == len(held) and 0 <= ev["reward_agreement"] <= 1
    capsys.readouterr()
    # one-line errors, before any model loads
    (tmp_path / "empty.json").write_text('{"indices": []}')
    assert main(["train", "--data", f["pool"], "--subset", str(tmp_path / "empty.json"),
                 "--out", str(tmp_path / "r2"), "--model", "nowhere"]) == 3  # bad input file
    assert "empty; select at least one row" in capsys.readouterr().err
    assert main(["split", "--data", f["pairs"], "--pool", f["pairs"], "--heldout",
                 f["held"]]) == 2
    err = capsys.readouterr().err
    assert "input" in err and len(err.strip().splitlines()) == 1


def test_pair_rows_are_oriented_by_their_label(tmp_path):
    """label 0 means response_2 won: training and evaluation see (chosen, rejected) as TRL rows."""
    trl, _ = td.read_pairs(_trl_file(tmp_path / "p.jsonl"))
    td.write_jsonl([{"prompt": p, "response_1": r, "response_2": c, "label": 0} if k % 2 else
                    {"prompt": p, "response_1": c, "response_2": r, "label": 1}
                    for k, (p, c, r) in enumerate(PAIRS)], tmp_path / "q.jsonl")
    pair, _ = td.read_pairs(tmp_path / "q.jsonl")
    key = [(r.prompt, r.response_1, r.response_2) for r in lt.oriented_rows(trl)]
    assert [(r.prompt, r.response_1, r.response_2) for r in lt.oriented_rows(pair)] == key


def test_lora_trains_saves_adapters_only_resumes_and_reloads_exactly(tmp_path):
    """--train lora: adapters on the top block only (B = 0: the first loss is log 2), the loss
    falls, model.safetensors holds the adapters alone, the cached path equals the full model's
    forward with the same adapters, a resumed run equals the uninterrupted one, and a fresh model
    + the saved adapters gives the trained log-probs exactly. Mutants seen red: adapters on every
    block (saved names), A drawn from the global torch state (resume), load_weights without
    adding adapters first (reload)."""
    src = _trl_file(tmp_path / "p.jsonl")
    cfg = lt.TrainConfig(model="tiny", top_k_blocks=1, beta=0.5, lr=2e-2, steps=12,
                         batch_size=3, checkpoint_every=5, train="lora", lora_r=4)
    lm = llm.tiny_model(seed=1)
    base = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    out = lt.train(src, tmp_path / "run", cfg, lm=lm, progress=False)
    assert out["finished"]
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert lines[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    first, last = np.mean([m["loss"] for m in lines[:2]]), np.mean([m["loss"] for m in lines[-2:]])
    assert last < 0.7 * first, (first, last)
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / "run/model.safetensors"))
    assert saved and all(".lora_" in n and n.startswith("model.layers.1.") for n in saved)
    own = {n.replace(".base_layer", ""): p for n, p in lm.model.named_parameters()}
    assert all(torch.equal(own[n], base[n]) for n in base)  # the base weights never moved
    # the cached top-block path = the plain full forward of the model with the adapters
    cache = lt.build_cache(llm.tiny_model(seed=1), _rows(), 1, max_length=128)
    with torch.no_grad():
        a = lt.policy_logp(lm.model, cache, list(range(12)))
        full = [float(_full_logp(lm.model, lm.tokenizer, p, y)) for p, c, r in PAIRS
                for y in (c, r)]
    np.testing.assert_allclose(a.numpy(), full, atol=1e-4)
    # reload: a fresh model + the saved adapters
    fresh = llm.tiny_model(seed=1)
    lt.load_weights(fresh.model, tmp_path / "run")
    with torch.no_grad():
        b = lt.policy_logp(fresh.model, cache, list(range(12)))
    assert torch.equal(a, b) and (a - cache.ref_logp).abs().max() > 1e-2
    # resume: stopped after 7 steps (checkpoint at 5), then finished = the uninterrupted run
    again = llm.tiny_model(seed=1)
    torch.rand(7)  # the global torch state moves on: A must come from the run's seed alone
    lt.train(src, tmp_path / "b", cfg, lm=again, progress=False, stop_after=7)
    lt.train(src, tmp_path / "b", cfg, lm=llm.tiny_model(seed=1), progress=False)
    assert (tmp_path / "run/metrics.jsonl").read_text() == (tmp_path / "b/metrics.jsonl").read_text()
    wb = load_file(str(tmp_path / "b/model.safetensors"))
    assert all(torch.equal(saved[n], wb[n]) for n in saved)
    with pytest.raises(ValueError, match="train"):
        lt.TrainConfig(train="prefix").validate()
