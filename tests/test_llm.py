"""Tests for sim.llm on a tiny randomly initialised Llama built offline, plus one short test on
the real SmolLM2-135M-Instruct (loads offline with sockets disabled; orders facts correctly).

References are independent of the code under test: the model's own full forward pass
(``model(...).logits`` and ``hidden_states``) on each unpadded sequence alone, with the
log-probabilities summed by an explicit loop.
"""

import json
import socket

import numpy as np
import pytest

from sim import llm
from sim import textdata as td
from adpo.cli import main as cli_main
from sim.data import PreferenceData

torch = pytest.importorskip("torch")  # torch is a declared dependency: this never skips here


@pytest.fixture(scope="module")
def tiny():
    return llm.tiny_model(seed=3)


def _seq(tok, prompt, response):
    ids, n_p, _ = llm.join_ids(llm.prompt_ids(tok, prompt), llm.response_ids(tok, response), 512)
    return ids, n_p


def _reference(model, ids, n_prompt):
    """Last hidden state at the last token, mean over response tokens, and the response log-prob
    by an explicit loop over the full model's logits."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    h = out.hidden_states[-1][0].double().numpy()
    lsm = torch.log_softmax(out.logits[0].double(), dim=-1).numpy()
    lp = 0.0
    for t in range(n_prompt, len(ids)):
        lp += lsm[t - 1, ids[t]]
    return h[-1], h[n_prompt:].mean(0), lp


SEQS = [("What is two plus two?", "Four."),
        ("A much longer prompt that takes many more bytes to write down", "ok"),
        ("Q", "A medium-length response with some words"),
        ("Hi", "Hi")]


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_pooling_and_logprobs_match_unpadded_reference_under_both_paddings(tiny, pooling):
    seqs = [_seq(tiny.tokenizer, p, r) for p, r in SEQS]
    assert len({len(s[0]) for s in seqs}) == len(seqs)  # real padding happens
    refs = [_reference(tiny.model, ids, n) for ids, n in seqs]
    want_phi = np.array([r[0] if pooling == "last" else r[1] for r in refs])
    want_lp = np.array([r[2] for r in refs])
    assert np.std(want_phi, axis=0).mean() > 1e-2  # features differ between rows
    for side in ("right", "left"):
        phi, lp = llm.forward_sequences(tiny.model, seqs, pooling=pooling, padding_side=side)
        np.testing.assert_allclose(phi, want_phi, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(lp, want_lp, rtol=1e-5, atol=1e-3)
    for k, s in enumerate(seqs):  # unpadded: each row alone
        phi, lp = llm.forward_sequences(tiny.model, [s], pooling=pooling)
        np.testing.assert_allclose(phi[0], want_phi[k], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(lp[0], want_lp[k], rtol=1e-5, atol=1e-3)


def test_padding_test_can_fail(tiny):
    """Guard that the test above discriminates: on a left-padded row, the right-padding rule
    (last index = number of real tokens - 1) reads the wrong position."""
    seqs = [_seq(tiny.tokenizer, p, r) for p, r in SEQS[:2]]
    ids, n = min(seqs, key=lambda s: len(s[0]))
    L = max(len(s[0]) for s in seqs)
    pad = [0] * (L - len(ids))
    with torch.no_grad():
        h = tiny.model.base_model(input_ids=torch.tensor([pad + ids]),
                                  attention_mask=torch.tensor([[0] * len(pad) + [1] * len(ids)])
                                  ).last_hidden_state[0].double().numpy()
    want = _reference(tiny.model, ids, n)[0]
    assert np.abs(h[-1] - want).max() < 1e-4  # mask-based: the last position
    assert np.abs(h[len(ids) - 1] - want).max() > 1e-2  # count-based: wrong under left padding


def test_prompt_and_response_are_tokenized_separately_with_the_chat_template():
    tok = llm.tiny_tokenizer()
    assert not tok.chat_template
    assert llm.prompt_ids(tok, "ab") == tok("ab")["input_ids"]
    tok.chat_template = ("{% for m in messages %}<s>[{{ m['role'] }}] {{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}")
    p = llm.prompt_ids(tok, "ab")
    assert tok.decode(p) == "<s>[user] ab\n[assistant] "
    r = llm.response_ids(tok, " xy")
    assert r[-1] == tok.eos_token_id and tok.decode(r[:-1]) == " xy"
    assert llm.response_ids(tok, " xy", append_eos=False) == r[:-1]
    ids, n_p, cut = llm.join_ids(p, r, 100)
    assert ids == p + r and n_p == len(p) and not cut


def test_join_ids_truncation_keeps_prompt_tail_and_response_head():
    p, r = list(range(10)), list(range(100, 130))
    ids, n_p, cut = llm.join_ids(p, r, 20)
    assert cut and len(ids) == 20 and n_p == 10 and ids == p + r[:10]
    ids, n_p, cut = llm.join_ids(p, r, 16)  # response keeps max(16 - 10, 8) = 8
    assert ids == p[-8:] + r[:8] and n_p == 8
    with pytest.raises(ValueError, match="prompt"):
        llm.join_ids([], r, 16)


def test_featurize_no_sequences_gives_empty_arrays(tiny):
    """Found by mypy (phi was ``None`` until the first batch): no sequences returned
    ``(None, (0,))``, not the documented ``(phi (0, d), logp (0,))``."""
    phi, logp = llm.featurize_sequences(tiny.model, [])
    assert phi.shape == (0, tiny.model.config.hidden_size) and logp.shape == (0,)


def _trl_file(path, pairs):
    td.write_jsonl([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs], path)
    return path


from helpers import PAIRS  # noqa: E402


def test_extract_file_keeps_chosen_rejected_order_and_random_orientation(tiny, tmp_path):
    src = _trl_file(tmp_path / "p.jsonl", PAIRS)
    want = []
    for p, c, r in PAIRS:
        fc, _, lc = _reference(tiny.model, *_seq(tiny.tokenizer, p, c))
        fr, _, lr = _reference(tiny.model, *_seq(tiny.tokenizer, p, r))
        want.append((fc - fr, lc - lr))
    want_phi = np.array([w[0] for w in want])
    want_b = np.array([w[1] for w in want])

    meta = llm.extract_file(tiny, src, tmp_path / "asis.npz", orient="as-is", chunk_rows=4,
                            batch_size=3, progress=False)
    d = PreferenceData.load(tmp_path / "asis.npz")
    np.testing.assert_array_equal(d.s, np.ones(len(PAIRS)))
    np.testing.assert_allclose(d.phi, want_phi, atol=2e-4)
    np.testing.assert_allclose(d.b, want_b, atol=2e-3)
    assert meta["row_lines"] == [1, 2, 3, 4, 5, 6] and meta["n_chunks"] == 2
    assert not (tmp_path / "asis.npz.parts").exists()

    meta = llm.extract_file(tiny, src, tmp_path / "rnd.npz", orient="random", seed=1,
                            progress=False, beta=2.0)
    d = PreferenceData.load(tmp_path / "rnd.npz")
    sw = np.array(meta["swapped"])
    assert 0 < sw.sum() < len(PAIRS)  # seed 1 swaps some rows, not all
    np.testing.assert_array_equal(d.s, np.where(sw, 0, 1))
    sign = np.where(sw, -1.0, 1.0)
    np.testing.assert_allclose(d.phi, sign[:, None] * want_phi, atol=2e-4)
    np.testing.assert_allclose(d.b, sign * want_b, atol=2e-3)
    assert d.beta == 2.0
    saved = json.loads(td.meta_path(tmp_path / "rnd.npz").read_text())
    assert saved["source_sha256"] == td.file_sha256(src) and saved["format"] == "trl"


def test_pair_rows_keep_their_labels_or_have_none(tiny, tmp_path):
    rows = [{"prompt": p, "response_1": c, "response_2": r, "label": k % 2}
            for k, (p, c, r) in enumerate(PAIRS[:3])]
    td.write_jsonl(rows, tmp_path / "l.jsonl")
    llm.extract_file(tiny, tmp_path / "l.jsonl", tmp_path / "l.npz", progress=False)
    assert PreferenceData.load(tmp_path / "l.npz").s.tolist() == [0, 1, 0]
    for r in rows:
        del r["label"]
    td.write_jsonl(rows, tmp_path / "u.jsonl")
    meta = llm.extract_file(tiny, tmp_path / "u.jsonl", tmp_path / "u.npz", progress=False)
    assert PreferenceData.load(tmp_path / "u.npz").s is None and meta["labels"] == "none"


class Interrupted(Exception):
    pass


def test_interrupted_extraction_resumes_without_recomputing(tiny, tmp_path, monkeypatch):
    src = _trl_file(tmp_path / "p.jsonl", PAIRS)
    llm.extract_file(tiny, src, tmp_path / "full.npz", chunk_rows=2, progress=False)
    full = PreferenceData.load(tmp_path / "full.npz")

    real = llm.featurize_sequences
    calls, fail_at = [], [2]

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) in fail_at:
            raise Interrupted  # stands for Ctrl-C or a crash mid-run
        return real(*a, **kw)

    monkeypatch.setattr(llm, "featurize_sequences", flaky)
    with pytest.raises(Interrupted):
        llm.extract_file(tiny, src, tmp_path / "r.npz", chunk_rows=2, progress=False)
    assert sorted(p.name for p in (tmp_path / "r.npz.parts").glob("chunk_*")) == [
        "chunk_00000.npz"]
    with pytest.raises(ValueError, match="other settings"):
        llm.extract_file(tiny, src, tmp_path / "r.npz", chunk_rows=2, pooling="mean",
                         progress=False)
    calls.clear()
    fail_at.clear()
    meta = llm.extract_file(tiny, src, tmp_path / "r.npz", chunk_rows=2, progress=False)
    assert meta["chunks_computed_now"] == 2 and len(calls) == 2
    resumed = PreferenceData.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(resumed.phi, full.phi)
    np.testing.assert_array_equal(resumed.b, full.b)
    np.testing.assert_array_equal(resumed.s, full.s)


def test_cli_features_on_a_model_directory_then_select_emits_jsonl(tmp_path, capsys):
    model_dir = llm.save_tiny_model(tmp_path / "tiny", seed=0)
    assert list(model_dir.glob("*.safetensors"))
    src = _trl_file(tmp_path / "p.jsonl", PAIRS)
    out = tmp_path / "f.npz"
    assert cli_main(["features", "--model", str(model_dir), "--data", str(src), "--out",
                     str(out), "--device", "cpu", "--batch-size", "4", "--quiet"]) == 0
    assert PreferenceData.load(out).phi.shape == (6, 32)
    sel = tmp_path / "sel.json"
    assert cli_main(["select", "--data", str(out), "--method", "uniform", "--n", "3",
                     "--out", str(sel), "--emit-jsonl", str(tmp_path / "sel.jsonl")]) == 0
    idx = json.loads(sel.read_text())["indices"]
    src_lines = src.read_text().splitlines()
    assert (tmp_path / "sel.jsonl").read_text().splitlines() == [src_lines[i] for i in idx]


def test_cli_reports_malformed_rows_before_loading_a_model(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p"}\n')
    code = cli_main(["features", "--model", str(tmp_path / "no-model"), "--data", str(bad),
                     "--out", str(tmp_path / "f.npz")])
    assert code == 3 and "line 2:" in capsys.readouterr().err


def test_bad_model_spec_and_options(tmp_path, tiny):
    with pytest.raises(ValueError, match="model"):
        llm.load_model(str(tmp_path), device="cpu")
    with pytest.raises(ValueError, match="pooling"):
        llm.forward_sequences(tiny.model, [([1, 2, 3], 1)], pooling="max")
    with pytest.raises(ValueError, match="out"):
        llm.extract_file(tiny, td.HANDWRITTEN_PATH, tmp_path / "x.txt", progress=False)


def test_real_smollm2_loads_offline_and_orders_facts(tmp_path, monkeypatch):
    """The embedded SmolLM2-135M-Instruct: loads with every socket connection refused, and its
    response log-prob margin b puts each correct fact above the wrong one."""
    def refuse(*a, **kw):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    torch.set_num_threads(2)
    lm = llm.load_model("smollm2", device="cpu")
    assert lm.model.config.hidden_size == 576 and lm.tokenizer.chat_template
    facts = td.handwritten_pairs("fact")[:5]
    td.write_jsonl(facts, tmp_path / "facts.jsonl")
    meta = llm.extract_file(lm, tmp_path / "facts.jsonl", tmp_path / "f.npz", orient="as-is",
                            progress=False)
    data = PreferenceData.load(tmp_path / "f.npz")
    assert meta["chat_template"] and data.d == 576
    assert np.all(data.b > 0), data.b


def test_figure_llm_tiny_scale_writes_files_and_reuses_its_cache(tmp_path, monkeypatch):
    from figures import fig_llm

    monkeypatch.chdir(tmp_path)  # the feature and run caches go under ./results/
    paths = fig_llm.main("tiny", out_dir=tmp_path / "out", jobs=1)
    assert [p.suffix for p in paths] == [".png", ".pdf", ".json"]
    assert all(p.stat().st_size > 0 for p in paths)
    side = json.loads(paths[2].read_text())
    assert side["scale"] == "tiny" and side["d"] == 32
    assert set(side["summary"]) == set(side["config"]["methods"]) == set(side["truth"])
    for curves in side["truth"].values():  # the known-theta environment, in sample and held out
        for m in ("max_logit_error_true", "heldout_max_logit_error_true", "max_logit_error"):
            assert len(curves[m]["mean"]) == len(side["n"])
            assert all(v > 0 for v in curves[m]["mean"])
    assert all(len(c["heldout_accuracy"]["mean"]) == len(side["n"])
               for c in side["summary"].values())
    assert side["heldout_N"] and min(side["heldout_N"]) >= 12  # holdout 0.25 of N = 48
    feats = list((tmp_path / "results/figures/llm").glob("features-*/features.npz"))
    assert len(feats) == 1
    stamp = feats[0].stat().st_mtime_ns
    cells = {p: p.stat().st_mtime_ns for p in (tmp_path / "results/figures/llm/cells").iterdir()}
    assert len(cells) == 2 * len(side["config"]["methods"]) * 2  # envs x methods x seeds

    def no_model(*a, **kw):
        raise AssertionError("features recomputed instead of read from the cache")

    monkeypatch.setattr("sim.llm.tiny_model", no_model)
    again = json.loads(fig_llm.main("tiny", out_dir=tmp_path / "out2", jobs=1)[2].read_text())
    assert feats[0].stat().st_mtime_ns == stamp
    assert {p: p.stat().st_mtime_ns for p in cells} == cells  # every cell read, none rerun
    assert again["truth"] == side["truth"] and again["summary"] == side["summary"]


def test_progress_bar_has_a_total_and_resumes_from_finished_chunks(tiny, tmp_path, capsys,
                                                                     monkeypatch):
    """The features bar counts sequences (2 per pair) against a known total, so tqdm shows an
    ETA; a resumed run starts at the sequences of the chunks already on disk. (tqdm redraws at
    most every 0.1 s by default; the bar is made to redraw at every update so that a fast machine
    still prints the final count.)"""
    import functools

    import tqdm
    monkeypatch.setattr(tqdm, "tqdm", functools.partial(tqdm.tqdm, mininterval=0, miniters=1))
    src = _trl_file(tmp_path / "p.jsonl", PAIRS)
    llm.extract_file(tiny, src, tmp_path / "f.npz", chunk_rows=4, progress=True, keep_parts=True)
    err = capsys.readouterr().err
    assert f"/{2 * len(PAIRS)} " in err and f"{2 * len(PAIRS)}/{2 * len(PAIRS)}" in err
    (tmp_path / "f.npz.parts" / "chunk_00001.npz").unlink()  # the last chunk (2 pairs) is redone
    llm.extract_file(tiny, src, tmp_path / "f.npz", chunk_rows=4, progress=True)
    err = capsys.readouterr().err
    assert f" 8/{2 * len(PAIRS)} " in err and f" 0/{2 * len(PAIRS)} " not in err
