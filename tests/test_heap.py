"""weights.heap: large buffers handed back between face passes and reused within a window, as its rules say."""

from __future__ import annotations

import pytest

from facewatch.weights import heap


@pytest.fixture()
def calls(monkeypatch) -> list[tuple]:
    """The glibc calls the module makes, recorded instead of made; the process starts lean or not per test."""
    made: list[tuple] = []
    monkeypatch.setattr(heap, "_call", lambda name, *args: made.append((name, *args)))
    monkeypatch.setattr(heap, "_lean", False)
    return made


def test_the_window_reuses_then_hands_everything_back_and_defers_trims(calls):
    heap.lean_heap()
    assert calls == [("mallopt", heap.M_MMAP_THRESHOLD, heap.LEAN_MMAP_BYTES)]
    calls.clear()
    with heap.reusing_freed_memory():
        with heap.reusing_freed_memory():  # nested: the outer window decides
            heap.release_freed_memory()  # rule 4: deferred
        assert calls == [("mallopt", heap.M_MMAP_THRESHOLD, heap.REUSE_BYTES),
                         ("mallopt", heap.M_TRIM_THRESHOLD, heap.REUSE_BYTES)]
    assert calls[2:] == [("mallopt", heap.M_MMAP_THRESHOLD, heap.LEAN_MMAP_BYTES),
                         ("mallopt", heap.M_TRIM_THRESHOLD, heap.LEAN_TRIM_BYTES), ("malloc_trim", 0)]
    heap.release_freed_memory()
    assert calls[-1] == ("malloc_trim", 0) and len(calls) == 6


def test_without_the_lean_heap_the_window_only_trims_at_its_end(calls):
    with heap.reusing_freed_memory():
        heap.release_freed_memory()
    assert calls == [("malloc_trim", 0)]


def test_an_error_inside_the_window_still_restores_the_lean_heap(calls):
    heap.lean_heap()
    with pytest.raises(RuntimeError), heap.reusing_freed_memory():
        raise RuntimeError("a network failed")
    assert calls[-3:] == [("mallopt", heap.M_MMAP_THRESHOLD, heap.LEAN_MMAP_BYTES),
                          ("mallopt", heap.M_TRIM_THRESHOLD, heap.LEAN_TRIM_BYTES), ("malloc_trim", 0)]
    assert heap._windows == 0


def test_the_real_calls_run_on_this_c_library():
    with heap.reusing_freed_memory():
        heap.release_freed_memory()  # glibc here; a C library without these functions is skipped inside _call
