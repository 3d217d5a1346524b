"""BOSS's error answers: `{"status", "code", "message"}` envelopes, and DRF's `{"detail"}` ones.

Every refusal inside the server raises `BossError`; the app turns it into the envelope. The codes
are those of boss-api.md section 0.5.
"""
from __future__ import annotations

from starlette.responses import JSONResponse

INVALID_URL = 1000
INVALID_CUTOUT_ARGS = 1001
TYPE_ERROR = 1002
INVALID_POST_ARGUMENT = 1003
UNABLE_TO_VALIDATE = 1004
INVALID_ARGUMENT = 1005
BAD_REQUEST = 1006
REQUEST_TOO_LARGE = 2000
DATATYPE_DOES_NOT_MATCH = 2001
DATA_DIMENSION_MISMATCH = 2002
DATATYPE_NOT_SUPPORTED = 2003
INVALID_STATE = 2006
MISSING_ROLE = 3000
MISSING_PERMISSION = 3001
ACCESS_DENIED_UNKNOWN = 3004  # BOSS's code in a 429 (throttled) rendered by its binary renderers
RESOURCE_NOT_FOUND = 4000
GROUP_NOT_FOUND = 4001
USER_NOT_FOUND = 4002
INTEGRITY_ERROR = 4003
OBJECT_NOT_FOUND = 4004
GROUP_EXISTS = 6001
INVALID_ROLE = 7002
BOSS_SYSTEM_ERROR = 9001
UNHANDLED_EXCEPTION = 9002
UNSUPPORTED_VERSION = 9003

STATUS_OF = {
    REQUEST_TOO_LARGE: 413, INVALID_STATE: 409, MISSING_ROLE: 403, MISSING_PERMISSION: 403, INVALID_ROLE: 403,
    RESOURCE_NOT_FOUND: 404, GROUP_NOT_FOUND: 404, USER_NOT_FOUND: 404, OBJECT_NOT_FOUND: 404,
    GROUP_EXISTS: 404,  # sic: BOSS answers 404 for an existing group
    UNHANDLED_EXCEPTION: 500,
}


class BossError(Exception):
    """A refusal with BOSS's status and code; `message` says what is wrong and how to fix it."""

    def __init__(self, code: int, message: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_OF.get(code, 400)
        self.headers = headers  # e.g. Retry-After on a 503


class NotAuthenticated(Exception):
    """DRF-style 401: no credentials for an unsafe verb, or an unknown token."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def envelope(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "message": message}, status_code=status, headers=headers)


def detail(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": text}, status_code=status, headers=headers)


def not_found(what: str) -> BossError:
    return BossError(RESOURCE_NOT_FOUND, f"{what} not found: check the name (list the parent to see what exists)")


def invalid(message: str) -> BossError:
    return BossError(INVALID_POST_ARGUMENT, message)
