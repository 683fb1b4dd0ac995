"""A Redis cache backend whose redis-py client is built once per process, for the session store.

Django's RedisCache builds a new `redis.Redis` for every cache call. Its set-up (a table of about 170
response callbacks) cost about as much CPU as the GET it wraps (0.3 ms measured in a rater's
submission, of a 0.5 ms session read). Sessions are read on every signed-in request, so the session
store's cache alias uses this backend (settings.SESSION_CACHE_ALIAS). A redis-py client is thread-safe:
each command borrows a connection from the pool, so one client per pool serves every thread, as
core.redis_client's clients do. The pool notices a fork (gunicorn) and reconnects in the child.
"""
import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class KeptClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._kept_clients = {}
        self._kept_lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._kept_clients.get(index)
        if client is None:
            with self._kept_lock:  # Django's own pool dict is filled without a lock; this one is not
                client = self._kept_clients.get(index)
                if client is None:
                    client = self._client(connection_pool=self._get_connection_pool(write))
                    self._kept_clients[index] = client
        return client


class KeptClientRedisCache(RedisCache):
    """django.core.cache.backends.redis.RedisCache with one client per connection pool (see the module)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = KeptClientRedisCacheClient
