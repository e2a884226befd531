"""The references are timed at 1 thread and at all threads and the faster counts
(benchmarks/threads.py), checked with a fake clock: nothing here is timed."""
from __future__ import annotations

import pytest

from benchmarks import threads


class FakePool:
    """A thread pool whose 'work' advances a fake clock by ``cost[threads]`` seconds."""

    def __init__(self, cost: dict[int, float], start: int = 2):
        self.cost, self.n, self.now, self.cpu, self.calls = cost, start, 100.0, 5.0, []

    def set(self, n: int) -> None:
        self.n = n

    def get(self) -> int:
        return self.n

    def work(self):
        self.calls.append(self.n)
        self.now += self.cost[self.n]
        self.cpu += self.cost[self.n] * self.n  # every thread busy
        return f"result at {self.n}"

    def time(self, run, settings, **kw):
        return threads.time_at_threads(run, settings, set_threads=self.set, get_threads=self.get,
                                       clock=lambda: self.now, cpu_clock=lambda: self.cpu, **kw)


def test_settings_are_one_and_all_threads_unless_overridden():
    assert threads.thread_settings(available=2) == (1, 2)
    assert threads.thread_settings(available=16) == (1, 16)
    assert threads.thread_settings(available=1) == (1,)
    assert threads.thread_settings(3, available=16) == (3,)
    assert threads.thread_settings(1, available=16) == (1,)
    assert threads.thread_settings()[0] == 1 and len(threads.thread_settings()) <= 2


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_override_is_named(bad):
    with pytest.raises(ValueError, match=r"--torch-threads=.*must be an integer >= 1"):
        threads.thread_settings(bad)


@pytest.mark.parametrize("cost,faster", [({1: 8.4, 2: 16.4}, 1), ({1: 8.0, 16: 2.5}, 16)])
def test_the_faster_setting_is_chosen_and_both_recorded(cost, faster):
    pool = FakePool(cost, start=7)
    fastest, timings = pool.time(pool.work, tuple(cost))
    assert pool.calls == list(cost)  # each setting ran once, in order, at its thread count
    assert [t["threads"] for t in timings] == list(cost)
    assert [t["wall_s"] for t in timings] == pytest.approx(list(cost.values()))
    assert [t["cpu_s"] for t in timings] == pytest.approx([c * n for n, c in cost.items()])
    assert fastest["threads"] == faster and fastest["result"] == f"result at {faster}"
    assert pool.n == 7  # the setting in force before is restored
    rec = threads.record(timings, fastest, per=2)
    assert rec["reference_threads_used"] == faster
    assert rec["reference_threads_timed"] == {str(n): pytest.approx(dict(wall_s=c / 2, cpu_s=c * n / 2))
                                              for n, c in cost.items()}
    line = threads.describe(timings, fastest)
    assert all(f"{n} thread" in line for n in cost) and f"fastest, {faster} thread(s)" in line


def test_override_times_only_that_setting():
    pool = FakePool({1: 1.0, 2: 2.0, 4: 0.5})
    fastest, timings = pool.time(pool.work, threads.thread_settings(4, available=2))
    assert pool.calls == [4] and len(timings) == 1 and fastest["threads"] == 4 and pool.n == 2


def test_own_times_replace_the_clocks():
    pool = FakePool({1: 1.0, 2: 3.0})
    # the reference's own timer says the 2-thread run was faster (e.g. its set-up dominated the clock)
    own = {"result at 1": (5.0, 5.0), "result at 2": (4.0, 8.0)}
    fastest, timings = pool.time(pool.work, (1, 2), own_times=own.__getitem__)
    assert fastest["threads"] == 2 and [t["wall_s"] for t in timings] == [5.0, 4.0]


def test_threads_restored_when_the_reference_fails():
    pool = FakePool({1: 1.0, 2: 1.0}, start=2)

    def fails():
        pool.work()
        if pool.n == 1:
            raise RuntimeError("reference broke")

    with pytest.raises(RuntimeError, match="reference broke"):
        pool.time(fails, (2, 1))
    assert pool.calls == [2, 1] and pool.n == 2
    with pytest.raises(ValueError, match="at least one"):
        pool.time(pool.work, ())


def test_ties_keep_the_first_setting():
    pool = FakePool({1: 2.0, 2: 2.0})
    assert pool.time(pool.work, (1, 2))[0]["threads"] == 1
