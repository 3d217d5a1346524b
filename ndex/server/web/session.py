"""The home page's login: a token kept in an HttpOnly, SameSite=Strict cookie.

The cookie authenticates reads only (GET, HEAD): a write still needs an `Authorization` header, so a
page on another site can never make a logged-in browser change data, whatever the browser does with
SameSite. The API's header always wins over the cookie.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "ndex_token"
COOKIE_METHODS = frozenset({"GET", "HEAD"})
MAX_AGE = 7 * 24 * 3600


def cookie_authorization(request: Request) -> str | None:
    """`Token <cookie>` for a read carrying the login cookie, else None."""
    token = request.cookies.get(COOKIE, "").strip()
    if not token or request.method.upper() not in COOKIE_METHODS:
        return None
    return f"Token {token}"


def set_login(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, max_age=MAX_AGE, path="/", httponly=True, samesite="strict", secure=secure)


def clear_login(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
