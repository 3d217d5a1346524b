"""The server's web face, for people and browser clients: the home page and login cookie, the
neuroglancer viewer, `/zarr/` (channels as OME-Zarr over HTTP), offline API docs, and what BOSS web
clients need (`/latest/`, CORS, npygz/JPEG cutouts: see compat.py and encodings.py)."""
from __future__ import annotations

from fastapi import FastAPI

from ndex.server.settings import ServerSettings


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Add the web routes and the outermost middlewares; call after every other middleware, so CORS
    also reaches the error answers made by the inner ones."""
    from ndex.server.web import compat, docs, home, viewer, zarr_routes

    for module in (home, zarr_routes, viewer):
        app.include_router(module.router)
    docs.add_docs(app)
    app.add_middleware(compat.LatestAlias)
    app.add_middleware(compat.Cors, origins=compat.parse_origins(settings.cors_origins))
