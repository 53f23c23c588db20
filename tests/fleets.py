"""A fleet on the Platform alone (no meta, no agent): the app `shop`, released from a Procfile
of web and worker, on instances of a provider that starts nothing, every agent registered."""

from __future__ import annotations

from pathlib import Path

from gun import formation
from gun.build.slug import pack
from gun.build.slugstore import LocalSlugStore
from gun.core import Platform
from gun.model import Principal
from gun.store import Store
from tests.fakes import RecordingProvider


class Fleet:
    def __init__(self, store: Store, tmp_path: Path, count: int) -> None:
        self.store = store
        self.fake = RecordingProvider()
        self.platform = p = Platform(
            store,
            slugs=LocalSlugStore(tmp_path / "slugs"),
            providers={"fake": self.fake},
            meta_url="http://meta",
            max_processes=1000,
        )
        self.admin = p.tokens.authenticate(p.tokens.bootstrap_admin(None) or "")
        p.apps.create(self.admin, "shop")
        src = tmp_path / "src"
        src.mkdir()
        (src / "Procfile").write_text("web: run-web $PORT\nworker: run-worker\n")
        slug = pack(src, tmp_path / "slug.tar.gz")
        slug_id, _ = p.slugs.add(self.admin, "shop", slug.path, slug.sha256, slug.size)
        p.deploys.release(self.admin, "shop", slug_id)
        for made in range(0, count, 20):  # instances.create makes 20 at most
            p.instances.create(
                self.admin, "shop", "default", min(20, count - made), provider="fake"
            )
        self.ids = [m.id for m in self.fake.made]
        self.who: dict[str, Principal] = {}
        for m in self.fake.made:
            self.who[m.id] = p.tokens.authenticate(m.token)
            p.agents.register(self.who[m.id], m.id, None)

    @property
    def agents(self) -> list[tuple[Principal, str]]:
        return [(self.who[i], i) for i in self.ids]

    def scale(self, words: str) -> None:
        self.platform.formation.scale(self.admin, "shop", formation.parse(words))
