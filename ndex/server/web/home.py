"""`GET /`: the server's home page, plain server-rendered HTML (no script, no CDN, works offline).

It lists the collections, experiments and channels the caller may see (login cookie, token header,
or anonymous: public ones), with each channel's extent, datatype, levels and downsample status and a
link to its viewer, and carries the token login form (`POST /login`, `POST /logout`).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from html import escape
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse

from ndex import __version__
from ndex.server.auth import Identity
from ndex.server.channels import ChannelInfo
from ndex.server.http_errors import BossError, NotAuthenticated
from ndex.server.services import Services, identify, services
from ndex.server.web.session import clear_login, set_login

router = APIRouter(tags=["web"], include_in_schema=False)
MAX_FORM = 4096

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .3em}h3{font-size:1em;margin:.8em 0 .2em}
table{border-collapse:collapse;margin:.2em 0 1em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#f3f3f3}.muted{color:#777}.error{color:#b00}form{display:inline}header{margin-bottom:1em}
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return HTMLResponse(html, status_code=status)


def channel_link(c: str, e: str, ch: str, kind: str = "view") -> str:
    return f"/{kind}/{quote(c)}/{quote(e)}/{quote(ch)}/"


@router.get("/")
def home(request: Request):
    svc = services(request)
    try:
        ident = identify(request)
    except NotAuthenticated:  # a stale cookie: show the public view and say so
        return render(svc, svc.auth.anonymous(), "your login token is no longer valid: log in again",
                      stale=True)
    return render(svc, ident)


def render(svc: Services, ident: Identity, error: str = "", status: int = 200, stale: bool = False):
    body = header(ident, error) + catalog_html(svc, ident)
    response = page("ndex serve", body, status)
    if stale:
        clear_login(response, secure=False)
    return response


def header(ident: Identity, error: str) -> str:
    who = ("<span class=muted>not logged in: you see public data</span>" if ident.user_id is None
           else f"logged in as <b>{escape(ident.username)}</b>")
    login = ("<form method=post action=/login><label>API token <input type=password name=token "
             "autocomplete=off size=40></label> <button>Log in</button></form>")
    logout = "<form method=post action=/logout><button>Log out</button></form>"
    problem = f"<p class=error>{escape(error)}</p>" if error else ""
    return (f"<header><h1>ndex serve <span class=muted>{escape(__version__)}</span></h1>"
            f"<p>{who} &middot; {logout if ident.user_id is not None else login} &middot; "
            f"<a href=/docs>API docs</a> &middot; <a href=/redoc>ReDoc</a></p>{problem}</header>")


def catalog_html(svc: Services, ident: Identity) -> str:
    parts = []
    for c in svc.catalog.list_collections(ident):
        experiments = [experiment_html(svc, ident, c, e) for e in svc.catalog.list_experiments(ident, c)]
        parts.append(f"<h2>{escape(c)}</h2>" + ("".join(experiments) or "<p class=muted>no experiments</p>"))
    return "".join(parts) or "<p class=muted>No collections you may see yet. Log in, or push data with ndpush.</p>"


def experiment_html(svc: Services, ident: Identity, c: str, e: str) -> str:
    rows, viewable = [], []
    for ch in svc.catalog.list_channels(ident, c, e):
        try:
            info = svc.catalog.channel_info(c, e, ch)
        except BossError:
            continue  # deleted meanwhile
        can_read = svc.auth.allowed(ident, "channel", info.id, "read_volumetric_data", public=info.channel["public"])
        if can_read:
            viewable.append(ch)
        rows.append(channel_row(c, e, info, can_read))
    if not rows:
        return f"<h3>{escape(e)}</h3><p class=muted>no channels</p>"
    together = ""
    if len(viewable) > 1 and viewer_installed():
        link = channel_link(c, e, viewable[0]) + "?channels=" + quote(",".join(viewable))
        together = f" &middot; <a href=\"{escape(link)}\">view all channels together</a>"
    head = ("<tr><th>channel</th><th>type</th><th>datatype</th><th>extent x&times;y&times;z</th><th>voxel</th>"
            "<th>time samples</th><th>levels</th><th>downsample</th><th></th></tr>")
    return f"<h3>{escape(e)}{together}</h3><table>{head}{''.join(rows)}</table>"


def channel_row(c: str, e: str, info: ChannelInfo, can_read: bool) -> str:
    f, x = info.frame, info.experiment
    extent = "&times;".join(f"{f[f'{a}_start']}:{f[f'{a}_stop']}" for a in "xyz")
    voxel = f"{f['x_voxel_size']:g}&times;{f['y_voxel_size']:g}&times;{f['z_voxel_size']:g} {escape(f['voxel_unit'])}"
    top = info.base + x["num_hierarchy_levels"] - 1
    name = info.channel["name"]
    view = (f"<a href=\"{escape(channel_link(c, e, name))}\">view</a>" if viewer_installed() else
            "<span class=muted title=\"pip install 'ndex[viewer]'\">(no viewer installed)</span>")
    links = (f"{view} &middot; <a href=\"{escape(channel_link(c, e, name, 'zarr'))}zarr.json\">zarr</a>"
             if can_read else "<span class=muted>no read permission</span>")
    cells = [escape(name), escape(info.channel["type"]), escape(info.datatype), extent, voxel,
             str(x["num_time_samples"]), f"{info.base}..{top}", escape(info.channel["downsample_status"]), links]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


@lru_cache(maxsize=1)
def viewer_installed() -> bool:
    """/view/ needs the neuroglancer package (the `viewer` extra)."""
    return importlib.util.find_spec("neuroglancer") is not None


@router.post("/login")
async def login(request: Request):
    svc = services(request)
    raw = await request.body()
    token = parse_qs(raw[:MAX_FORM].decode("utf-8", "replace")).get("token", [""])[0].strip()
    try:
        ident = svc.auth.identify("GET", f"Token {token}") if token else None
    except NotAuthenticated:
        ident = None
    if ident is None or ident.user_id is None:
        anon = svc.auth.anonymous()
        return render(svc, anon, "that token is not valid: create one with `ndex token create`", status=401)
    response = RedirectResponse("/", status_code=303)
    set_login(response, token, secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request):
    response = RedirectResponse("/", status_code=303)
    clear_login(response, secure=request.url.scheme == "https")
    return response
