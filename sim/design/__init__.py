"""D-optimal experimental design, independent of DPO (paper sec. 2-3).

Exact designs: n distinct rows maximizing log det(gamma I + sum_{i in S} v_i v_i^T)
    greedy_select, naive_greedy, GreedyState    greedy with rank-one updates   (.greedy)
    BlockedGreedy, IncrementalGreedy            the two greedy engines, pick by pick
    CandidateSampler                            the random candidate subsets   (.candidates)
    exchange, round_design                      local search; pi -> n rows     (.rounding)
    brute_force_design                          exhaustive, tiny instances     (.brute)
Approximate designs: pi on the simplex maximizing log det sum_i pi_i v_i v_i^T, each with the
Kiefer-Wolfowitz efficiency certificate d / max_i v_i^T M(pi)^{-1} v_i
    fw_design, multiplicative_design, cvxpy_design                             (.relaxed)
    rex_design                                  randomized exchange (REX)     (.rex)
    efficient_rounding, sample_design           apportionment; i.i.d. sampling (.rounding)
All routines take V (N, d), optional weights w (N,) >= 0 (the design uses sqrt(w_i) v_i) and
return a DesignResult (.common).
"""

from .brute import brute_force_design
from .common import (DesignResult, design_vectors, efficiency_certificate, information_matrix,
                     subset_logdet)
from .candidates import CandidateSampler
from .greedy import BlockedGreedy, GreedyState, greedy_select, naive_greedy
from .incremental import IncrementalGreedy
from .relaxed import cvxpy_design, fw_design, multiplicative_design
from .rex import rex_design
from .rounding import efficient_rounding, exchange, round_design, sample_design

__all__ = ["BlockedGreedy", "CandidateSampler", "DesignResult", "GreedyState",
           "IncrementalGreedy", "brute_force_design", "cvxpy_design",
           "design_vectors", "efficiency_certificate", "efficient_rounding", "exchange",
           "fw_design", "greedy_select", "information_matrix", "multiplicative_design",
           "naive_greedy", "rex_design", "round_design", "sample_design", "subset_logdet"]
