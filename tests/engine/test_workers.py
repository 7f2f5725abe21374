"""runtime/workers.Workers, the registry client's thread pool (instead of
concurrent.futures, whose import costs berthd 1.3 MB on Python 3.6)."""

import threading
import time

import pytest

from runtime.workers import Workers


def test_map_keeps_the_order_and_runs_at_most_count_at_once():
    lock = threading.Lock()
    running, peak = [0], [0]

    def work(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i * i

    with Workers(3, "t") as pool:
        assert pool.map(work, range(12)) == [i * i for i in range(12)]
        assert len(pool._threads) == 3
    assert peak[0] == 3  # in parallel, never more than asked
    assert not any(t.is_alive() for t in pool._threads)


def test_an_error_is_raised_by_result_and_the_others_still_run():
    done = []

    def work(i):
        if i == 2:
            raise KeyError("item 2")
        done.append(i)
        return i

    with Workers(2) as pool:
        jobs = [pool.submit(work, i) for i in range(5)]
        with pytest.raises(KeyError, match="item 2"):
            jobs[2].result()
        assert [j.result() for j in jobs if j is not jobs[2]] == [0, 1, 3, 4]
        with pytest.raises(KeyError):
            pool.map(work, [1, 2, 3])
    assert sorted(done) == [0, 1, 1, 3, 3, 4]


def test_leaving_the_block_waits_for_the_work_handed_in():
    finished = []
    with Workers(2) as pool:
        for i in range(6):
            pool.submit(lambda i=i: (time.sleep(0.01), finished.append(i)))
    assert sorted(finished) == list(range(6))  # all done when `with` returned
    with pytest.raises(RuntimeError, match="pool is closed"):
        pool.submit(print)


def test_waiting_threads_take_new_work_before_new_threads_are_made():
    with Workers(4) as pool:
        for _ in range(5):  # one at a time: the one thread there takes each
            pool.submit(time.sleep, 0).result()
            time.sleep(0.01)
        assert len(pool._threads) == 1
    with pytest.raises(ValueError, match="at least one thread"):
        Workers(0)
