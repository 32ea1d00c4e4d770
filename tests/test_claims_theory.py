"""figures.claims_theory: the theory section's figure claims follow the sidecars, say
'vacuous' when the bound is above the ceiling, and change when a sidecar number changes."""

import json

from figures import claims


def _write(tmp_path, name, obj):
    (tmp_path / f"{name}.json").write_text(json.dumps(obj))


def _bound_sidecar(corrected):
    return {"config": {"d": 8, "N": 8192, "n_grid": [16, 4096], "scale": "default"},
            "trivial_ceiling": 2.0,
            "bound_over_ceiling": {"printed": [18.0, 6.2], "corrected": corrected,
                                   "corrected, exact self-normalized": [12.0, 5.6]},
            "vacuous_at_every_n": {"printed": True, "corrected": min(corrected) >= 1,
                                   "corrected, exact self-normalized": True},
            "informative_from_n_kappa1": {"printed": 411938.0, "corrected": 603063.0,
                                          "corrected, exact self-normalized": 391510.0}}


def test_theory_bound_claim_says_vacuous_and_tracks_the_sidecar(tmp_path):
    claims.load_providers()
    _write(tmp_path, "theory_bound", _bound_sidecar([23.0, 7.5]))
    text = claims.render("theory-bound", claims.Sidecars(tmp_path))
    assert "vacuous at every n shown" in text and "23–7.5×" in text and "6.0·10⁵" in text
    # Mutant sidecar: the corrected bound dips below the ceiling -> the claim changes its word.
    _write(tmp_path, "theory_bound", _bound_sidecar([23.0, 0.5]))
    text2 = claims.render("theory-bound", claims.Sidecars(tmp_path))
    assert "vacuous at every n shown" not in text2 and "informative at some n" in text2


def test_theory_coverage_claim_counts_informative_deltas(tmp_path):
    claims.load_providers()
    side = {"config": {"d": 2, "N": 2000, "n": 1000, "trials": 150, "scale": "default"},
            "deltas": [0.001, 0.05, 0.5], "radius": [16.9, 14.1, 12.1],
            "per_method": {"uniform": {"informative": [False, True, True],
                                       "coverage_theorem3": [1.0, 1.0, 1.0], "ceiling_min": 16.2,
                                       "radius_over_quantile": [5.7, 6.6, 12.8]}}}
    _write(tmp_path, "theory_coverage", side)
    text = claims.render("theory-coverage", claims.Sidecars(tmp_path))
    assert "radius below it at 2 of 3 δ" in text and "coverage 100%" in text
    side["per_method"]["uniform"]["coverage_theorem3"][1] = 0.9
    _write(tmp_path, "theory_coverage", side)
    text2 = claims.render("theory-coverage", claims.Sidecars(tmp_path))
    assert "coverage 90" in text2 and "–100%" in text2


def test_theory_claims_render_placeholders_for_old_sidecars(tmp_path):
    claims.load_providers()
    _write(tmp_path, "theory_kappa", {"config": {}, "kappa": {"adpo, m = 256": {"max": 1.2}}})
    assert "not yet computed" in claims.render("theory-kappa", claims.Sidecars(tmp_path))
