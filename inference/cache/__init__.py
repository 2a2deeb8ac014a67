"""The response cache: answers to deterministic requests, kept in Redis and served by the
worker without the engine (docs/operations.md, "Response cache")."""

from inference.cache.keys import cache_namespace
from inference.cache.service import CacheLookup, cache_lookup

__all__ = ["CacheLookup", "cache_lookup", "cache_namespace"]
