"""Small fixtures shared by several test modules (imported as ``from helpers import ...``: pytest
puts this folder on ``sys.path``)."""

import numpy as np

# Six short TRL-style (prompt, chosen, rejected) pairs for the LLM bridge's tests.
PAIRS = [("Name a fruit.", "An apple.", "A brick."),
         ("Say hello.", "Hello there!", "Goodbye."),
         ("Count to three.", "One, two, three.", "Seven."),
         ("What colour is grass?", "Green.", "Purple, mostly, on Tuesdays."),
         ("Is ice cold?", "Yes.", "No, ice is hot."),
         ("Pick a number.", "Seven.", "Banana.")]


def ball(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(n, d) points drawn uniformly from the unit ball of R^d (Assumption 2's feature set)."""
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * rng.random((n, 1)) ** (1 / d)


def torch_devices() -> list[str]:
    """The devices the torch backend's equality tests run on: "cpu" always, "cuda" where torch
    sees a GPU (never in CI; run the torch test files on a GPU machine to exercise it)."""
    import torch
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
