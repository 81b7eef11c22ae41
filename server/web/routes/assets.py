"""``/.well-known/lanterne-assets.json`` and the templates' view of the static files."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from server.web.assets import Assets
from server.web.i18n import Pages

MANIFEST_PATH = "/.well-known/lanterne-assets.json"

router = APIRouter()


@router.get(MANIFEST_PATH)
async def asset_manifest(request: Request) -> JSONResponse:
    assets: Assets = request.app.state.assets
    return JSONResponse(assets.manifest())


def install(app: FastAPI, pages: Pages, assets: Assets) -> None:
    """Serve the manifest and give every template ``asset_url`` and ``asset_integrity``."""
    app.state.assets = assets
    app.include_router(router)
    pages.add_globals(asset_url=assets.url, asset_integrity=assets.integrity)
