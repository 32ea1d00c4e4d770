"""The paper's theory as code: constants, bounds and empirical checks (Kveton et al., 2025, sec. 5)."""
