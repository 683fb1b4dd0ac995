"""One shared redis-py client per process, for locks and semaphores (the cache API has neither)."""
import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client = None
_client_url = None


def get_redis() -> redis.Redis:
    global _client, _client_url
    with _lock:
        if _client is None or _client_url != settings.REDIS_URL:
            _client = redis.Redis.from_url(settings.REDIS_URL, health_check_interval=30)
            _client_url = settings.REDIS_URL
        return _client
