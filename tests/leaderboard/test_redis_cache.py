"""leaderboard.redis_cache: Django's Redis cache, building one redis-py client per connection pool."""

from leaderboard.redis_cache import RedisCache


def test_every_operation_of_a_cache_uses_the_same_client():
    cache = RedisCache("redis://127.0.0.1:1/0", {})  # no connection is made until a command runs
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b") is client
    assert cache._cache.get_client("a", write=True) is client  # one server: reads and writes share its pool
