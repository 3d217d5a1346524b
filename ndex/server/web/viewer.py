"""`GET /view/{c}/{e}/{ch}/[?channels=a,b]`: opens neuroglancer on channels of one experiment.

The caller's read permission on every channel is checked here (token header, login cookie, or public
channels); then the process's neuroglancer server (ndex/viewer.py, started on first use, bound to the
address `ndex serve` listens on) gets a new viewer reading exactly those channels, and the browser is
sent there (303). Image channels become image layers, annotation channels segmentation layers.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse

from ndex.geometry import Box
from ndex.server.http_errors import INVALID_ARGUMENT, BossError
from ndex.server.services import identify, services
from ndex.server.web.zarr_routes import chunk_body, zarr_channel

router = APIRouter(tags=["web"])
MAX_CHANNELS = 16


@router.get("/view/{c}/{e}/{ch}", summary="Open neuroglancer on a channel (?channels=a,b: several of the "
                                          "experiment's channels together); redirects to the viewer")
def view(request: Request, c: str, e: str, ch: str):
    from ndex.viewer import ViewedChannel

    svc = services(request)
    ident = identify(request)
    names = [n for n in request.query_params.get("channels", "").split(",") if n.strip()] or [ch]
    if len(names) > MAX_CHANNELS:
        raise BossError(INVALID_ARGUMENT, f"{len(names)} channels are too many for one view: open at most "
                                          f"{MAX_CHANNELS}")
    viewed = []
    for name in dict.fromkeys(n.strip() for n in names):
        info = svc.catalog.channel_info(c, e, name)
        svc.auth.require(ident, "channel", info.id, "read_volumetric_data", public=info.channel["public"],
                         name=f"{c}/{e}/{name}")
        viewed.append(ViewedChannel(c, e, zarr_channel(info)))

    def read(c_: str, e_: str, ch_: str, res: int, t: int, box: Box) -> bytes | None:
        return chunk_body(svc, svc.catalog.channel_info(c_, e_, ch_), res, t, box)

    url = viewer_host(request).open(viewed, read, request.url.hostname or "127.0.0.1")
    return RedirectResponse(url, status_code=303)


def viewer_host(request: Request):
    """The process's neuroglancer server, started on the first view."""
    from ndex.viewer import viewer_host as shared

    settings = services(request).settings
    return shared(settings.viewer_bind, settings.viewer_port)
