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

_ACQUIRE = """
local key, now, stale, limit, token = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - stale)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, token)
  redis.call('EXPIRE', key, math.ceil(stale) + 60)
  return 1
end
return 0
"""


class JobCallSlots:
    def __init__(self, job_id: int, limit: int, *, scope: str = "job", stale_after: float = 600.0,
                 poll: float = 0.02):
        self.key = f"mhsd:{scope}:{job_id}:call-slots"
        self.limit = max(1, int(limit))
        self.stale_after = stale_after
        self.poll = poll
        self._redis = get_redis()
        self._script = self._redis.register_script(_ACQUIRE)

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
        delay = self.slots.poll
        while not self.slots._script(
            keys=[self.slots.key], args=[time.time(), self.slots.stale_after, self.slots.limit, self.token]
        ):
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        return self

    def __exit__(self, *exc):
        self.slots._redis.zrem(self.slots.key, self.token)
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
