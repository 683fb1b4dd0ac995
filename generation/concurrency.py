"""Limits shared by every worker process, kept in Redis.

* `JobCallSlots`: at most `limit` LLM calls of one job (a generation job, or another kind of run
  named by `scope`, e.g. a judge run) in flight at once, across all workers and threads, so a
  provider's rate limit is respected however many workers run. A holder that dies (SIGKILL) cannot
  leak its slot: entries older than `stale_after` seconds are dropped.
* `WorkLease`: who is working on one item (a conversation, a judge item) right now. It is renewed
  by a heartbeat thread while the task runs; when a worker is killed, the lease lapses within `ttl`
  seconds and a reaper (generation.work_items.reap_lost_items, run by the beat schedule) hands the
  item to another worker. `ConversationLease` is the generation job's.
"""
import threading
import time
import uuid

from core.redis_client import get_redis

# Take a slot if one is free. A caller that finds none is counted as waiting (it then blocks on the
# wake list until a release, or its poll interval, ends the wait); `was_waiting` uncounts it first.
_ACQUIRE = """
local key, waiters, wake, now, stale, limit, token, was_waiting =
  KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
if was_waiting == '1' and tonumber(redis.call('GET', waiters) or '0') > 0 then
  redis.call('DECR', waiters)
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - stale)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, token)
  redis.call('EXPIRE', key, math.ceil(stale) + 60)
  -- Nobody waits any more: a wake-up pushed for a waiter that timed out meanwhile is dropped.
  if tonumber(redis.call('GET', waiters) or '0') <= 0 then
    redis.call('DEL', wake)
  end
  return 1
end
redis.call('INCR', waiters)
redis.call('EXPIRE', waiters, math.ceil(stale) + 60)
return 0
"""

# Give the slot back and wake one waiter, if any is waiting and not already being woken.
_RELEASE = """
local key, waiters, wake, token, ttl = KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2])
redis.call('ZREM', key, token)
if tonumber(redis.call('GET', waiters) or '0') > redis.call('LLEN', wake) then
  redis.call('LPUSH', wake, '1')
  redis.call('EXPIRE', wake, ttl)
end
return 1
"""


class JobCallSlots:
    def __init__(self, job_id: int, limit: int, *, scope: str = "job", stale_after: float = 600.0,
                 poll: float = 0.02):
        self.key = f"mhsd:{scope}:{job_id}:call-slots"
        # Waiters block on `wake_key`, which a release pushes to, so a freed slot is taken within a
        # round trip rather than after a blind sleep; `poll` still bounds each wait (a waker can die).
        self.waiters_key = f"{self.key}:waiters"
        self.wake_key = f"{self.key}:wake"
        self.limit = max(1, int(limit))
        self.stale_after = stale_after
        self.poll = poll
        self._redis = get_redis()
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)

    def __call__(self):
        return _Slot(self)

    def in_flight(self) -> int:
        self._redis.zremrangebyscore(self.key, "-inf", time.time() - self.stale_after)
        return int(self._redis.zcard(self.key))


class _Slot:
    def __init__(self, slots: JobCallSlots):
        self.slots = slots
        self.token = uuid.uuid4().hex

    def __enter__(self):
        slots, delay, waiting = self.slots, self.slots.poll, False
        while not slots._acquire(keys=[slots.key, slots.waiters_key, slots.wake_key],
                                 args=[time.time(), slots.stale_after, slots.limit, self.token, int(waiting)]):
            waiting = True
            slots._redis.blpop([slots.wake_key], timeout=delay)
            delay = min(delay * 1.5, 0.25)
        return self

    def __exit__(self, *exc):
        slots = self.slots
        slots._release(keys=[slots.key, slots.waiters_key, slots.wake_key],
                       args=[self.token, int(slots.stale_after) + 60])
        return False


class WorkLease:
    """A Redis key `mhsd:<kind>:<id>:lease` holding a random owner token with a TTL."""

    def __init__(self, kind: str, item_id: int, ttl: int = 60):
        self.key = self.key_for(kind, item_id)
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self._redis = get_redis()
        self._stop = threading.Event()
        self._thread = None

    def acquire(self) -> bool:
        if not self._redis.set(self.key, self.token, nx=True, ex=self.ttl):
            return False
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease-{self.key}", daemon=True)
        self._thread.start()
        return True

    def _heartbeat(self):
        while not self._stop.wait(self.ttl / 3):
            # Extend only if we still own it (compare-and-expire).
            self._redis.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end"
                " return 0",
                1, self.key, self.token, self.ttl,
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            1, self.key, self.token,
        )

    @staticmethod
    def key_for(kind: str, item_id: int) -> str:
        return f"mhsd:{kind}:{item_id}:lease"

    @classmethod
    def held(cls, kind: str, item_id: int) -> bool:
        return bool(get_redis().exists(cls.key_for(kind, item_id)))


class ConversationLease(WorkLease):
    KIND = "conversation"

    def __init__(self, conversation_id: int, ttl: int = 60):
        super().__init__(self.KIND, conversation_id, ttl)

    @classmethod
    def is_held(cls, conversation_id: int) -> bool:
        return cls.held(cls.KIND, conversation_id)
