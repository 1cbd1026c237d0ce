"""A node's start-up objects are frozen out of the collector's full collections, and what
start-up left as garbage is not kept."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from swarmdash import metrics
from swarmdash.gcfreeze import freeze_start_up


class Part:
    """Stands for something a node builds at start-up; refers to itself (a cycle)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "an earlier test left the process frozen"
    yield
    gc.unfreeze()
    metrics.GC_FROZEN.set(0)


def test_start_up_garbage_goes_and_what_lives_is_frozen(unfrozen: None) -> None:
    kept = Part()
    dropped = Part()
    gone = weakref.ref(dropped)
    del dropped  # a cycle: only the collector frees it

    frozen = freeze_start_up()

    assert gone() is None, "garbage from start-up would be kept for good"
    assert frozen == gc.get_freeze_count() > 0
    assert metrics.REGISTRY.get_sample_value("swarmdash_gc_frozen_objects") == frozen
    assert not any(o is kept for o in gc.get_objects()), \
        "a live start-up object is still walked by every full collection"
    gc.collect()
    assert kept.me is kept  # frozen, not freed
