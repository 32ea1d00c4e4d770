"""Tests for sim.textdata: JSONL reading, the offline pair sources and the selected-row write-back.

The one statistical test (simulated labels vs their generating probabilities) uses a fixed seed
and Bernstein's inequality for a sum of independent Bernoullis at level 1e-6: false-failure
probability <= 1e-6.
"""

import json
import math

import numpy as np
import pytest

from sim import textdata as td
from adpo.cli import main as cli_main


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_trl_rows_with_line_numbers_extras_and_blank_lines(tmp_path):
    p = _write(tmp_path / "a.jsonl", [
        json.dumps({"prompt": "p1", "chosen": "good", "rejected": "bad", "extra": 3}),
        "",
        json.dumps({"prompt": "", "chosen": "c2", "rejected": "r2"}),
    ])
    rows, fmt = td.read_pairs(p)
    assert fmt == "trl"
    assert [r.line for r in rows] == [1, 3]
    assert (rows[0].response_1, rows[0].response_2, rows[0].label) == ("good", "bad", 1)
    assert rows[1].prompt == ""


def test_reads_pair_rows_with_and_without_labels(tmp_path):
    lab = _write(tmp_path / "l.jsonl", [
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b", "label": 0}),
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b", "label": True}),
    ])
    rows, fmt = td.read_pairs(lab)
    assert fmt == "pair" and [r.label for r in rows] == [0, 1]
    unl = _write(tmp_path / "u.jsonl", [
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b"})])
    rows, _ = td.read_pairs(unl)
    assert rows[0].label is None


def test_every_malformed_row_is_reported_with_its_line_number(tmp_path):
    good = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})
    p = _write(tmp_path / "bad.jsonl", [
        good,                                                                # 1 ok
        "{not json",                                                         # 2
        json.dumps({"prompt": "p", "chosen": "a"}),                          # 3 missing rejected
        json.dumps({"prompt": "p", "chosen": 5, "rejected": "b"}),           # 4 not a string
        json.dumps({"prompt": "p", "chosen": "  ", "rejected": "b"}),        # 5 empty
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b"}),   # 6 other format
        json.dumps(["a", "b"]),                                              # 7 not an object
        good,                                                                # 8 ok
    ])
    with pytest.raises(ValueError) as err:
        td.read_pairs(p)
    msg = str(err.value)
    assert "6 malformed row(s)" in msg
    for line in (2, 3, 4, 5, 6, 7):
        assert f"line {line}:" in msg
    assert "line 1:" not in msg and "line 8:" not in msg
    assert "'rejected'" in msg or "rejected" in msg


def test_bad_and_partial_labels_are_reported(tmp_path):
    p = _write(tmp_path / "l.jsonl", [
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b", "label": 1}),
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b", "label": 2}),
        json.dumps({"prompt": "p", "response_1": "a", "response_2": "b"}),
    ])
    with pytest.raises(ValueError, match=r"line 2: 'label' must be 0 or 1.*line 3: 'label'"):
        td.read_pairs(p)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        td.read_pairs(tmp_path / "none.jsonl")
    with pytest.raises(ValueError, match="no rows"):
        td.read_pairs(_write(tmp_path / "e.jsonl", ["", "  "]))


def _fake_features(tmp_path, src, row_lines):
    """A sidecar as `adpo features` writes it (only the keys the write-back reads)."""
    feats = tmp_path / "sub" / "f.npz"
    feats.parent.mkdir()
    meta = {"source": str(src), "source_relative": "../" + src.name,
            "source_sha256": td.file_sha256(src), "row_lines": row_lines}
    td.meta_path(feats).write_text(json.dumps(meta))
    return feats


def test_write_selected_jsonl_keeps_order_and_verbatim_lines(tmp_path):
    lines = [json.dumps({"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}", "k": i},
                        separators=(",", ":")) for i in range(5)]
    src = _write(tmp_path / "src.jsonl", [lines[0], "", lines[1], lines[2], lines[3], lines[4]])
    feats = _fake_features(tmp_path, src, [1, 3, 4, 5, 6])
    out = tmp_path / "sel.jsonl"
    assert td.write_selected_jsonl(feats, [3, 0, 4], out) == 3
    assert out.read_text().splitlines() == [lines[3], lines[0], lines[4]]
    with pytest.raises(ValueError, match="duplicate"):
        td.write_selected_jsonl(feats, [1, 1], out)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        td.write_selected_jsonl(feats, [5], out)


def test_write_selected_jsonl_finds_a_moved_source_by_relative_path(tmp_path):
    src = _write(tmp_path / "src.jsonl", [json.dumps({"prompt": "p", "chosen": "a",
                                                     "rejected": "b"})])
    feats = _fake_features(tmp_path, src, [1])
    meta = json.loads(td.meta_path(feats).read_text())
    meta["source"] = str(tmp_path / "elsewhere" / "src.jsonl")
    td.meta_path(feats).write_text(json.dumps(meta))
    td.write_selected_jsonl(feats, [0], tmp_path / "o.jsonl")
    assert (tmp_path / "o.jsonl").read_text() == src.read_text()


def test_write_selected_jsonl_errors(tmp_path):
    src = _write(tmp_path / "src.jsonl", [json.dumps({"prompt": "p", "chosen": "a",
                                                     "rejected": "b"})])
    with pytest.raises(ValueError, match="sidecar .* not found"):
        td.write_selected_jsonl(tmp_path / "nothing.npz", [0], tmp_path / "o.jsonl")
    feats = _fake_features(tmp_path, src, [1])
    src.write_text(src.read_text() + "\n")
    with pytest.raises(ValueError, match="changed since"):
        td.write_selected_jsonl(feats, [0], tmp_path / "o.jsonl")
    src.unlink()
    with pytest.raises(ValueError, match="not found"):
        td.write_selected_jsonl(feats, [0], tmp_path / "o.jsonl")


def test_handwritten_pairs_are_marked_and_readable():
    rows = td.handwritten_pairs()
    assert len(rows) >= 10
    assert all(r["note"] == "written by the adpo-testbed project" for r in rows)
    assert {r["kind"] for r in rows} == {"fact", "topic"}
    assert len(td.handwritten_pairs("fact")) + len(td.handwritten_pairs("topic")) == len(rows)
    parsed, fmt = td.read_pairs(td.HANDWRITTEN_PATH)
    assert fmt == "trl" and len(parsed) == len(rows)


def _raw_chitchat():
    with open(td.chitchat_path(), encoding="utf-8") as f:
        return json.load(f)


def test_chitchat_pairs_obey_the_rules_against_the_raw_file():
    raw = _raw_chitchat()
    rows = td.chitchat_pairs(300, min_gap=3, seed=5)
    assert len(rows) == 300
    assert len({tuple(r["ids"]) for r in rows}) == 300
    for r in rows:
        hi, lo = (raw[c] for c in r["ids"])
        mean = [float(np.mean(list(c["ratings"].values()))) for c in (hi, lo)]
        assert mean == [r["rating_chosen"], r["rating_rejected"]]
        assert mean[0] - mean[1] >= 3 and 5.0 not in mean
        assert hi["prompt"].strip() == lo["prompt"].strip() == r["prompt"]
        first = " ".join(u["text"].strip() for u in hi["messages"][0])
        assert r["chosen"].startswith("A: " + first[:20])
        assert "noisy" in r["source"]
    assert rows == td.chitchat_pairs(300, min_gap=3, seed=5)
    assert rows != td.chitchat_pairs(300, min_gap=3, seed=6)


def test_chitchat_eligible_pairs_match_a_brute_force_count():
    raw = _raw_chitchat()
    groups = {}
    for c in raw.values():
        vals = list((c.get("ratings") or {}).values())
        if c.get("prompt") and c.get("messages") and vals:
            m = sum(vals) / len(vals)
            if m != 5.0:
                groups.setdefault(c["prompt"].strip(), []).append(m)
    expected = sum(abs(a - b) >= 4 for g in groups.values()
                   for i, a in enumerate(g) for b in g[i + 1:])
    assert len(td.chitchat_pairs(10 ** 7, min_gap=4, seed=0)) == expected


def test_lexicon_reward_by_hand():
    # 9 words: 2 positive (love, fun), 2 negative (not, boring)
    assert td.lexicon_reward("I love this, it is fun and not boring") == 0.0
    assert td.lexicon_reward("I love this, it is fun and very good") == pytest.approx(3 / 3)
    assert td.lexicon_reward("great great") == pytest.approx(2 / math.sqrt(2))
    assert td.lexicon_reward("...") == 0.0


def test_simulated_labels_follow_their_stated_probabilities():
    rows = td.simulated_pairs(1500, scale=4.0, seed=11)
    assert all(r["simulated"] is True and "SIMULATED" in r["source"] for r in rows)
    assert len({(r["prompt"], *sorted(r["ids"])) for r in rows}) == len(rows)
    for r in rows[:50]:
        assert r["reward_1"] == td.lexicon_reward(r["response_1"])
    p = np.array([1 / (1 + math.exp(-4.0 * (r["reward_1"] - r["reward_2"]))) for r in rows])
    s = np.array([r["label"] for r in rows])
    # Bernstein: P(|S - ES| >= t) <= 2 exp(-t^2 / (2 (V + t/3))); t solves 2 exp(...) = 1e-6
    v, c = (p * (1 - p)).sum(), math.log(2 / 1e-6)
    t = c / 3 + math.sqrt((c / 3) ** 2 + 2 * c * v)
    assert abs(s.sum() - p.sum()) < t
    # the labels carry the reward: agreement with sign(r1 - r2) well above chance where it differs
    diff = p != 0.5
    assert np.mean(s[diff] == (p[diff] > 0.5)) > 0.6


def test_pairs_cli_writes_each_source(tmp_path):
    for source in ("handwritten", "chitchat", "simulated"):
        out = tmp_path / f"{source}.jsonl"
        assert cli_main(["pairs", "--source", source, "--out", str(out), "--n", "20"]) == 0
        rows, fmt = td.read_pairs(out)
        assert fmt == ("pair" if source == "simulated" else "trl")
        assert len(rows) == (12 if source == "handwritten" else 20)
