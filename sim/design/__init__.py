"""D-optimal experimental design, independent of DPO (paper sec. 2-3).

Exact designs (n distinct rows maximizing log det(gamma I + sum v v^T)):
    greedy_select, naive_greedy, GreedyState   greedy with rank-one updates (sim.design.greedy)
Approximate designs (pi on the simplex maximizing log det sum pi_i v_i v_i^T), each with the
Kiefer-Wolfowitz efficiency certificate d / max_i v_i^T M(pi)^{-1} v_i:
    fw_design, multiplicative_design, cvxpy_design                  (sim.design.relaxed)
Public objects are re-exported here; see each module for the maths.
"""

from .common import (DesignResult, design_vectors, efficiency_certificate, information_matrix,
                     subset_logdet)
from .greedy import GreedyState, greedy_select, naive_greedy
from .relaxed import cvxpy_design, fw_design, multiplicative_design

__all__ = ["DesignResult", "GreedyState", "cvxpy_design", "design_vectors",
           "efficiency_certificate", "fw_design", "greedy_select", "information_matrix",
           "multiplicative_design", "naive_greedy", "subset_logdet"]
