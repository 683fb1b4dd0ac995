"""JobCallSlots against the real Redis: the limit holds across threads, a freed slot wakes a waiter at
once (not after its poll interval), and a dead holder's slot is reclaimed."""
import threading
import time

from core.redis_client import get_redis
from generation.concurrency import JobCallSlots


def test_the_limit_holds_across_threads_and_every_caller_gets_through():
    slots = JobCallSlots(901, 3, scope="test-run")
    lock, holding, most, done = threading.Lock(), [0], [0], []

    def call():
        with slots():
            with lock:
                holding[0] += 1
                most[0] = max(most[0], holding[0])
            time.sleep(0.05)
            with lock:
                holding[0] -= 1
        done.append(1)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(done) == 12 and most[0] == 3
    assert slots.in_flight() == 0
    # Nobody is left counted as waiting, so later releases push no stale wake-ups.
    assert int(get_redis().get(slots.waiters_key) or 0) == 0
    assert get_redis().llen(slots.wake_key) == 0


def test_a_released_slot_wakes_a_waiter_at_once_rather_than_after_its_poll_interval():
    slots = JobCallSlots(902, 1, scope="test-run", poll=5.0)
    acquired_after = []

    def wait_for_slot(started):
        with slots():
            acquired_after.append(time.monotonic() - started)

    with slots():
        waiter = threading.Thread(target=wait_for_slot, args=(time.monotonic(),))
        waiter.start()
        time.sleep(0.3)
        assert not acquired_after  # still waiting: the limit is 1
    waiter.join(timeout=10)
    # Without the wake-up it would have slept its 5 s poll interval.
    assert acquired_after and acquired_after[0] < 2.0


def test_a_dead_holders_slot_is_reclaimed_after_stale_after():
    slots = JobCallSlots(903, 1, scope="test-run", stale_after=0.5)
    slots().__enter__()  # never exited: its holder "died"
    assert slots.in_flight() == 1
    started = time.monotonic()
    with slots():
        assert 0.3 < time.monotonic() - started < 5
