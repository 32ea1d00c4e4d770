"""PreferenceData: validation, .npz round trip, refusal of pickles and unknown keys."""

import numpy as np
import pytest

from sim.data import PreferenceData, check_indices


def make(**kw):
    args = dict(phi=np.ones((4, 2)), b=np.zeros(4), beta=1.0)
    args.update(kw)
    return PreferenceData(**args)


def test_round_trip(tmp_path, small_data):
    p = tmp_path / "d.npz"
    small_data.save(p)
    back = PreferenceData.load(p)
    for k in ("phi", "b", "s", "theta_star", "theta_true"):
        np.testing.assert_array_equal(getattr(back, k), getattr(small_data, k))
    assert back.beta == small_data.beta
    with np.load(p, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(["phi", "b", "beta", "s", "theta_star", "theta_true"])
    assert not list(tmp_path.glob("*.tmp*"))


def test_optional_keys_are_omitted(tmp_path):
    p = tmp_path / "d.npz"
    make().save(p)
    with np.load(p) as f:
        assert sorted(f.files) == ["b", "beta", "phi"]
    assert PreferenceData.load(p).s is None


@pytest.mark.parametrize("kw,field", [
    (dict(phi=np.ones(4)), "phi"), (dict(phi=np.full((4, 2), np.nan)), "phi"),
    (dict(b=np.zeros(3)), "b"), (dict(b=np.array([0, 0, np.inf, 0])), "b"),
    (dict(beta=0.0), "beta"), (dict(beta=-2.0), "beta"), (dict(beta=float("inf")), "beta"),
    (dict(s=np.array([0, 1, 2, 1])), "s"), (dict(s=np.array([0.0, 1.0, np.nan, 1.0])), "s"),
    (dict(s=np.array([0, 1, 1])), "s"), (dict(theta_star=np.ones(3)), "theta_star"),
    (dict(theta_true=np.array([np.nan, 1.0])), "theta_true"),
])
def test_bad_fields_are_named(kw, field):
    with pytest.raises(ValueError, match=field):
        make(**kw)


def test_arrays_are_read_only():
    d = make(s=np.array([0, 1, 1, 0]))
    with pytest.raises(ValueError):
        d.phi[0, 0] = 5.0


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        PreferenceData.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        PreferenceData.load(bad)
    obj = tmp_path / "obj.npz"
    np.savez(obj, phi=np.array([object()], dtype=object), b=np.zeros(1), beta=1.0)
    with pytest.raises(ValueError, match="pickle"):
        PreferenceData.load(obj)
    extra = tmp_path / "extra.npz"
    np.savez(extra, phi=np.ones((2, 2)), b=np.zeros(2), beta=1.0, surprise=np.ones(1))
    with pytest.raises(ValueError, match="surprise"):
        PreferenceData.load(extra)
    missing = tmp_path / "missing_b.npz"
    np.savez(missing, phi=np.ones((2, 2)), beta=1.0)
    with pytest.raises(ValueError, match="'b'"):
        PreferenceData.load(missing)
    with pytest.raises(ValueError, match=".npz"):
        make().save(tmp_path / "x.pkl")


def test_subset_and_indices():
    d = make(s=np.array([0, 1, 1, 0]))
    sub = d.subset([2, 0])
    assert sub.N == 2 and sub.s.tolist() == [1, 0]
    for bad, msg in (([0, 0], "duplicate"), ([4], "range|lie"), ([[0]], "1-D"), ([0.5], "integer")):
        with pytest.raises(ValueError, match=msg):
            check_indices(bad, 4)
