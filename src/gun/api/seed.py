"""The seed's paths, exactly as its curl shows them."""

from __future__ import annotations

from fastapi import APIRouter

from gun import formation as formations
from gun.api.auth import Gun, Who

router = APIRouter()


@router.get("/apps/show/{app}")
def show(app: str, who: Who, gun: Gun) -> dict[str, str]:
    """`{"formation.<layer>": "web=1,worker=2", ...}`"""
    shares = gun.formation.shares(who, app)
    return {f"formation.{layer}": formations.format_counts(s) for layer, s in shares.items()}


@router.get("/config_vars/show/{app}")
async def config_vars(app: str, who: Who, gun: Gun) -> dict[str, str | None]:
    """On the event loop: one small query, and the decrypted values are cached. A viewer
    gets the names with null values."""
    return gun.config.get(who, app)
