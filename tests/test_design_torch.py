"""The torch blocked greedy engine (sim.design.torch_greedy) on CPU: the same picks as the numpy
engine in float64 and float32, ties to the lowest index, weights, exclusions, and a streamed
memory-mapped pool with bounded memory."""

import numpy as np
import pytest

import torch  # noqa: F401,E402  (the dev venv and CI install the CPU build)

from bench.bench_scale import peak_anon_mb  # noqa: E402
from sim.design import greedy_select  # noqa: E402
from sim.design.torch_greedy import greedy_select_torch  # noqa: E402

from helpers import torch_devices  # noqa: E402

# the device code path (per-pick work on tensors) on the CPU, and on CUDA where a GPU is present
DEVICE_PATHS = [("cpu", False)] + [(dev, False) for dev in torch_devices() if dev != "cpu"]


@pytest.mark.parametrize("device, host_picks", [("cpu", True)] + DEVICE_PATHS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_picks_as_the_numpy_engine(dtype, device, host_picks):
    # host_picks=False runs the CUDA code path (per-pick work on torch tensors), on the CPU too
    rng = np.random.default_rng(0)
    V = rng.standard_normal((4000, 24)) * rng.uniform(0.3, 2.0, (4000, 1))
    ref = greedy_select(V, 600, gamma=0.5, dtype=dtype)
    out = greedy_select_torch(V, 600, gamma=0.5, dtype=dtype, block=64, device=device,
                              host_picks=host_picks)
    assert out.info["host_picks"] is host_picks
    assert np.array_equal(out.indices, ref.indices)
    assert out.logdet == pytest.approx(ref.logdet, rel=1e-12)
    assert np.allclose(out.gains, ref.gains, rtol=1e-10)
    assert out.info["blocks"] > 3 and out.info["reanchors"] >= 1   # both mechanisms exercised
    if host_picks:   # the numpy engine itself, its bulk products on torch
        assert out.info["products"] == "torch"


@pytest.mark.parametrize("product", ["rowsq", "quad"])
def test_a_wrong_torch_product_changes_the_picks(product, monkeypatch):
    # The CPU path's picks depend on torch's bulk products (refresh and re-anchor): one 0.1% off
    # must change a float64 pick, so the test above compares torch's arithmetic, not numpy's.
    from sim.design.torch_greedy import TorchProducts
    right = getattr(TorchProducts, product)
    monkeypatch.setattr(TorchProducts, product, lambda self, X, W: 0.999 * right(self, X, W))
    rng = np.random.default_rng(0)
    V = rng.standard_normal((4000, 24)) * rng.uniform(0.3, 2.0, (4000, 1))
    ref = greedy_select(V, 600, gamma=0.5)
    out = greedy_select_torch(V, 600, gamma=0.5, block=64)
    assert not np.array_equal(out.indices, ref.indices)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compaction_keeps_the_picks_and_their_indices(dtype):
    # n > N / 2: the host path compacts its bulk (whenever a quarter of its rows are gone,
    # exclusions counted), several times, so picks must be mapped back to the original rows
    # through every compaction; the device path masks instead. Both must pick what numpy picks.
    rng = np.random.default_rng(4)
    V = rng.standard_normal((800, 10)) * rng.uniform(0.5, 1.5, (800, 1))
    excl = rng.choice(800, 60, replace=False)
    ref = greedy_select(V, 500, exclude=excl, dtype=dtype)
    for device, host in [("cpu", True)] + DEVICE_PATHS:
        out = greedy_select_torch(V, 500, exclude=excl, dtype=dtype, block=32, device=device,
                                  host_picks=host)
        assert (out.info["compactions"] >= 3) if host else (out.info["compactions"] == 0)
        assert np.array_equal(out.indices, ref.indices)
        assert out.logdet == pytest.approx(ref.logdet, rel=1e-12)


@pytest.mark.parametrize("device, host_picks", [("cpu", None)] + DEVICE_PATHS)
def test_ties_go_to_the_lowest_index_weights_and_exclude(device, host_picks):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((300, 8))
    V = np.vstack([base, base])                 # rows i and i + 300 tie exactly
    w = rng.uniform(0, 2, 600)
    w[300:] = w[:300]
    excl = [5, 17]
    ref = greedy_select(V, 40, weights=w, exclude=excl)
    out = greedy_select_torch(V, 40, weights=w, exclude=excl, device=device,
                              host_picks=host_picks)
    assert np.array_equal(out.indices, ref.indices)
    picks = out.indices.tolist()
    assert not set(excl) & set(picks)
    # of two identical rows, the lower index is always picked first
    assert all(p < 300 or (p - 300 in picks[:t] or p - 300 in excl) for t, p in enumerate(picks))
    assert any(p >= 300 for p in picks)


def test_streamed_pool_gives_the_same_picks(tmp_path):
    rng = np.random.default_rng(2)
    V = rng.standard_normal((5000, 16)).astype(np.float32)
    np.save(tmp_path / "phi.npy", V)
    mm = np.load(tmp_path / "phi.npy", mmap_mode="r")
    ref = greedy_select(V.astype(np.float64), 300, dtype=np.float32)
    out = greedy_select_torch(mm, 300, dtype=np.float32, rows_per_block=700)
    assert out.info["streamed"] and np.array_equal(out.indices, ref.indices)


def test_streaming_bounds_peak_memory(tmp_path):
    # phi is 61 MB in float64; streamed in 1024-row blocks the engine holds 0.5 MB of rows (and
    # a few temporaries of that size) plus O(N) scores: measured ~12 MB here. The in-memory
    # engine on the same rows holds all of them (so the check can fail).
    N, d = 120_000, 64
    path = tmp_path / "phi.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(N, d))
    rng = np.random.default_rng(3)
    for lo in range(0, N, 60_000):
        mm[lo:lo + 60_000] = rng.standard_normal((60_000, d))
    mm.flush()
    del mm
    mm = np.load(path, mmap_mode="r")
    greedy_select_torch(mm[:1000], 5, rows_per_block=4096, stream=True)   # warm up torch
    streamed, mb_stream = peak_anon_mb(
        lambda: greedy_select_torch(mm, 8, rows_per_block=1024))
    inmem, mb_inmem = peak_anon_mb(lambda: greedy_select_torch(np.array(mm), 8))
    assert np.array_equal(streamed.indices, inmem.indices)
    assert mb_stream < 25, mb_stream
    assert mb_inmem > 55, mb_inmem


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("resident", [5000, 2100])
@pytest.mark.parametrize("dtype, file_dtype, weighted", [
    (np.float32, np.float32, False), (np.float32, np.float64, False), (np.float32, np.float32, True),
    (np.float64, np.float64, True)])
def test_a_pool_loaded_onto_the_device_once_gives_the_same_picks(tmp_path, monkeypatch, dtype,
                                                                  file_dtype, weighted, resident,
                                                                  device):
    # On CUDA a memory-mapped pool is read once into device memory as far as it fits (all of it,
    # or its first 3 blocks of 700 rows with the rest streamed at every pass). Forced here (on
    # the CPU device path too, where the engine never loads a pool by itself): the numpy engine's
    # picks, with the last row block partial (700 does not divide 5000), and the exact rows
    # taken from the loaded bulk only when they are the file's values (same dtype, no weights).
    import sim.design.torch_greedy as tg
    assert tg.device_rows(torch, torch.device("cpu"), 5000, 16, 4, 700) == 0  # never on the CPU
    rng = np.random.default_rng(5)
    V = (rng.standard_normal((5000, 16)) * rng.uniform(0.5, 1.5, (5000, 1))).astype(file_dtype)
    np.save(tmp_path / "phi.npy", V)
    mm = np.load(tmp_path / "phi.npy", mmap_mode="r")
    w = rng.uniform(0.2, 2.0, 5000) if weighted else None
    ref = greedy_select(V.astype(np.float64), 300, weights=w, dtype=dtype)
    streamed = greedy_select_torch(mm, 300, weights=w, dtype=dtype, rows_per_block=700,
                                   host_picks=False, device=device, stream=True)
    assert streamed.info["streamed"] and np.array_equal(streamed.indices, ref.indices)
    assert streamed.info["resident_rows"] == 0
    monkeypatch.setattr(tg, "device_rows", lambda *a: resident)
    sources = []
    monkeypatch.setattr(tg.RowSource, "_resident", lambda self, rows, right=tg.RowSource._resident:
                        (right(self, rows), sources.append(self)))
    out = greedy_select_torch(mm, 300, weights=w, dtype=dtype, rows_per_block=700,
                              host_picks=False, device=device)
    assert np.array_equal(out.indices, ref.indices)
    assert out.logdet == pytest.approx(ref.logdet, rel=1e-12)
    assert out.info["resident_rows"] == resident and out.info["streamed"] == (resident < 5000)
    src, = sources
    assert tuple(src._bulk.shape) == (resident, 16)
    assert (src._src is src._bulk) == (file_dtype == dtype and not weighted)
    assert out.info["load_seconds"] > 0 and streamed.info["load_seconds"] is None


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("file_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("resident", [0, 1400])
def test_row_blocks_are_the_files_rows_cast_and_scaled(tmp_path, monkeypatch, device, file_dtype,
                                                       weighted, resident):
    # RowSource.blocks against the file read by numpy: every row block, resident or streamed
    # (cast and scaled by sqrt(w) on the device), is v_i = sqrt(w_i) phi_i in the bulk dtype or
    # float64, exactly, in order, and again on a second pass (the host buffers are reused)
    import sim.design.torch_greedy as tg
    rng = np.random.default_rng(8)
    V = rng.standard_normal((3000, 8)).astype(file_dtype)
    np.save(tmp_path / "phi.npy", V)
    mm = np.load(tmp_path / "phi.npy", mmap_mode="r")
    w = rng.uniform(0.2, 2.0, 3000) if weighted else None
    monkeypatch.setattr(tg, "device_rows", lambda *a: resident)
    spans = [(lo, min(lo + 700, 3000)) for lo in range(0, 3000, 700)]
    for bulk in (np.float32, np.float64):
        src = tg.RowSource(mm, w, bulk, torch.device(device), rows_per_block=700)
        assert src.resident == resident
        for request, dt in ((None, bulk), (torch.float64, np.float64)):
            want = V.astype(dt) * (np.sqrt(w).astype(dt)[:, None] if weighted else dt(1))
            for _ in range(2):
                got = [(lo, hi, X.cpu().numpy()) for lo, hi, X in src.blocks(request)]
                assert [(lo, hi) for lo, hi, _ in got] == spans
                assert all(X.dtype == dt for *_, X in got)
                np.testing.assert_array_equal(np.concatenate([X for *_, X in got]), want)


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_streamed_pass_refuses_a_non_finite_row_at_its_end(tmp_path, monkeypatch, device, bad):
    # the streamed rows' own check (the engine's exact re-reads would catch a NaN row that enters
    # the active set, but not one that never does): the first pass over them raises once it has
    # seen every block; a resident bad row is refused when it is loaded
    import sim.design.torch_greedy as tg
    V = np.random.default_rng(9).standard_normal((3000, 8)).astype(np.float32)
    V[1500, 2] = bad
    np.save(tmp_path / "phi.npy", V)
    mm = np.load(tmp_path / "phi.npy", mmap_mode="r")
    monkeypatch.setattr(tg, "device_rows", lambda *a: 1400)
    src = tg.RowSource(mm, None, np.float32, torch.device(device), rows_per_block=700)
    seen = []
    with pytest.raises(ValueError, match="phi: contains NaN or infinite values"):
        for lo, hi, _ in src.blocks():
            seen.append(lo)
    assert seen == [0, 700, 1400, 2100, 2800]
    monkeypatch.setattr(tg, "device_rows", lambda *a: 2100)
    with pytest.raises(ValueError, match="phi: contains NaN or infinite values"):
        tg.RowSource(mm, None, np.float32, torch.device(device), rows_per_block=700)


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("nan_row, resident", [(2999, 0), (2999, 2100), (2999, 3000),
                                               (100, 2100)])
def test_a_pool_with_a_nan_is_refused_streamed_or_loaded(tmp_path, monkeypatch, nan_row,
                                                         resident, device):
    # the loaded rows are checked on the device (after the copy), the streamed ones on the
    # host: either way a NaN, in the streamed or the loaded part, is refused in one line, before
    # any pick
    import sim.design.torch_greedy as tg
    V = np.random.default_rng(6).standard_normal((3000, 8)).astype(np.float32)
    V[nan_row, 3] = np.nan
    np.save(tmp_path / "phi.npy", V)
    mm = np.load(tmp_path / "phi.npy", mmap_mode="r")
    monkeypatch.setattr(tg, "device_rows", lambda *a: resident)
    with pytest.raises(ValueError, match="phi: contains NaN"):
        greedy_select_torch(mm, 10, dtype=np.float32, rows_per_block=700, host_picks=False,
                            device=device)


def test_device_rows_leave_the_engines_working_memory_free():
    # A CUDA device's free memory, faked: all rows when they fit beside the engine's working
    # memory, else whole blocks of rows_per_block (the streamed rest starts at a block
    # boundary) that fit beside it, and none below one block
    import types

    import sim.design.torch_greedy as tg
    N, d, item, rpb = 10_000, 64, 4, 1000
    work, block = tg.working_bytes(N, d, rpb), rpb * d * item
    assert work >= 5 * rpb * d * 8 + 32 * N       # a re-anchor's float64 blocks and the scores
    dev = types.SimpleNamespace(type="cuda")

    def rows(free):
        fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
            mem_get_info=lambda device: (free, 2 * free)))
        return tg.device_rows(fake, dev, N, d, item, rpb)
    assert rows(work + N * d * item) == N
    assert rows(work + N * d * item - 1) == 9 * rpb
    assert rows(work + 2 * block + block // 2) == 2 * rpb
    assert rows(work + block - 1) == 0 and rows(work // 2) == 0
    for free in np.linspace(work, work + 2 * N * d * item, 37).astype(np.int64):
        r = rows(int(free))
        assert r * d * item + work <= free and (r == N or r % rpb == 0)
