"""wmstats._procfs.paused_gc: the collector is off inside, and back as it was after;
what settle freezes, and which cyclic garbage it collects."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from wmstats._procfs import paused_gc


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_off_inside_and_on_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_on_again_after_an_exception() -> None:
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outer_one() -> None:
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_turned_off_before_stays_off() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_of_two_threads() -> None:
    """The first pause ends while the second runs: the collector stays off until
    the second ends too."""
    second_in, first_out = threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        with paused_gc():
            second_in.set()
            assert first_out.wait(10)
            seen.append(gc.isenabled())

    with paused_gc():
        thread = threading.Thread(target=second)
        thread.start()
        assert second_in.wait(10)
    assert not gc.isenabled()  # the second pause still runs
    first_out.set()
    thread.join(10)
    assert seen == [False] and gc.isenabled()


class _Node:
    """An object that can be part of a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    """A reference cycle no one refers to; a weak reference to one of its objects."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_freezes_and_collects_the_young_once_in_a_while(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with paused_gc() as pause:
        monkeypatch.setattr(pause, "COLLECT_EVERY", 3600.0)
        gone_later = _cycle()
        pause.settle()  # not collected: frozen
        assert gone_later() is not None and gc.get_freeze_count() > 0
        monkeypatch.setattr(pause, "COLLECT_EVERY", 0.0)
        gone_now = _cycle()
        pause.settle()  # collected first: the young objects only
        assert gone_now() is None
        assert gone_later() is not None
    assert gc.get_freeze_count() == 0  # unfrozen when the pause ends
    gc.collect()
    assert gone_later() is None


def test_mem_available_is_read_from_meminfo() -> None:
    from wmstats._procfs import mem_available_kib

    available = mem_available_kib()
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    assert available is not None and 0 < available <= total
