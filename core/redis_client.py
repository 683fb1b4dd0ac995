"""Shared redis-py clients per process, for locks and semaphores (the cache API has neither).

Every client has socket timeouts, so an unreachable or hung Redis raises instead of blocking a thread
for ever. Two flavours:

* `get_redis()`: workers' locks, leases and semaphores. Timeouts of a few seconds and redis-py's
  default retries, so a brief hiccup under load does not fail a generation.
* `get_redis(fast=True)`: for code on a user's request path (e.g. scheduling a results recomputation
  after a rater submits). About one second to connect or answer and no retries: a dead Redis costs the
  request at most ~1 s per command, and callers there treat Redis as optional.
"""
import threading

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

WORKER_CONNECT_TIMEOUT = 5.0
WORKER_SOCKET_TIMEOUT = 15.0
FAST_TIMEOUT = 1.0

_lock = threading.Lock()
_clients: dict[bool, tuple[str, redis.Redis]] = {}


def _make(url: str, fast: bool) -> redis.Redis:
    if fast:
        return redis.Redis.from_url(
            url, socket_connect_timeout=FAST_TIMEOUT, socket_timeout=FAST_TIMEOUT,
            retry=Retry(NoBackoff(), 0), health_check_interval=30,
        )
    return redis.Redis.from_url(
        url, socket_connect_timeout=WORKER_CONNECT_TIMEOUT, socket_timeout=WORKER_SOCKET_TIMEOUT,
        health_check_interval=30,
    )


def get_redis(*, fast: bool = False) -> redis.Redis:
    with _lock:
        url = settings.REDIS_URL
        cached = _clients.get(fast)
        if cached is None or cached[0] != url:
            cached = (url, _make(url, fast))
            _clients[fast] = cached
        return cached[1]
