"""The shared thread pool: results in order, and no deadlock when a task itself shares work out."""

from __future__ import annotations

import threading

from pathwaygrad import _threads


def test_results_in_order():
    assert _threads.run([lambda i=i: i * i for i in range(7)]) == [i * i for i in range(7)]
    assert _threads.run([]) == []


def test_nested_run_from_the_pools_threads_does_not_deadlock():
    def nest():
        return sum(_threads.run([lambda: 1, lambda: 2]))

    out = []
    # Every worker runs a task that shares work out again: waiting on the pool from inside
    # it would block all workers for good.
    worker = threading.Thread(
        target=lambda: out.append(_threads.run([nest] * (2 * _threads.threads()))), daemon=True
    )
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "nested run() deadlocked"
    assert out == [[3] * (2 * _threads.threads())]
