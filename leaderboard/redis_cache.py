"""Django's Redis cache with one redis-py client per connection pool, rather than a new one per operation.
Building a client fills its table of ~170 response callbacks: on this project's machine that cost more than the
GET it was built for (75 µs against 45 µs), and a signed-in request answered from the ranking API's response cache
makes three cache reads. redis-py clients are safe to share between threads (a command takes a connection from
the pool), and Django keeps a cache object per thread anyway."""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}  # by connection pool

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
