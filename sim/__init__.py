"""adpo-testbed: active learning for Direct Preference Optimization (Kveton et al., 2025)."""

__version__ = "0.1.0"
