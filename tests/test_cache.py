"""meta's config vars cache: until the app's next change (tokens: test_tokens.py)."""

from __future__ import annotations

from gun.core import Platform
from gun.core.cache import VersionedCache
from gun.model import Principal


def test_versioned_cache_misses_on_a_new_version() -> None:
    cache: VersionedCache[int, str] = VersionedCache()
    cache.put(1, 7, "seven")
    assert cache.get(1, 7) == "seven"
    assert cache.get(1, 8) is None


def test_a_config_change_is_seen_at_once_despite_the_cache(
    platform: Platform, admin: Principal
) -> None:
    platform.apps.create(admin, "cached")
    platform.config.change(admin, "cached", {"A": "1"})
    assert platform.config.get(admin, "cached") == {"A": "1"}
    platform.config.change(admin, "cached", {"A": "2"})
    assert platform.config.get(admin, "cached") == {"A": "2"}
    platform.releases.rollback(admin, "cached", 2)
    assert platform.config.get(admin, "cached") == {"A": "1"}
    # what a caller does with the answer never reaches the cache
    platform.config.get(admin, "cached")["A"] = "tampered"
    assert platform.config.get(admin, "cached") == {"A": "1"}
