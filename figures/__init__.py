"""Figure scripts: one module ``fig_<name>.py`` per figure, each with ``<name>.toml`` beside it."""
