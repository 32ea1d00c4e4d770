"""D-optimal experimental design, independent of DPO (paper sec. 2-3).

Exact designs (n distinct rows maximizing log det(gamma I + sum v v^T)):
    greedy_select, naive_greedy, GreedyState   greedy with rank-one updates (sim.design.greedy)
Public objects are re-exported here; see each module for the maths.
"""

from .common import (DesignResult, design_vectors, efficiency_certificate, information_matrix,
                     subset_logdet)
from .greedy import GreedyState, greedy_select, naive_greedy

__all__ = ["DesignResult", "GreedyState", "design_vectors", "efficiency_certificate",
           "greedy_select", "information_matrix", "naive_greedy", "subset_logdet"]
