"""The one exception tree of ndex.

    NdexError
    ├── UsageError (ValueError)          the caller asked for something impossible; fix the input
    │   ├── ConfigError                  no token / URL, unreadable config file
    │   ├── InvalidBox                   empty, inverted or misaligned ranges
    │   ├── OutOfBounds                  a range outside the coordinate frame or resolution hierarchy
    │   └── FieldError                   one field of a spec or options is wrong (the CLI names its flag)
    ├── RemoteError                      the server answered with an error (status, BOSS code, message)
    │   ├── BadRequest                   400
    │   ├── AuthError (PermissionError)  401 / 403: missing, wrong or insufficient token
    │   ├── ResourceNotFound (LookupError) 404
    │   ├── Conflict                     409 (e.g. downsample already running)
    │   ├── RequestTooLarge              413
    │   ├── QuotaExceeded                429 without Retry-After (BossDB's daily usage quota): not retried
    │   └── RetryableRemoteError         retried with backoff before it surfaces
    │       ├── ServerError              5xx
    │       └── Throttled                429 with Retry-After (a gateway) / 503 (carries retry_after)
    ├── TransportError (OSError)         no usable answer at all; retried
    │   ├── RemoteUnreachable            connection refused / DNS / reset
    │   ├── RemoteTimeout
    │   └── CorruptBody                  truncated or undecodable body
    ├── SinkError (OSError)              writing local output failed (disk full, permissions)
    ├── SourceError (OSError)            reading input images failed (missing, unreadable)
    │   └── BadInput                     a file is not what the run needs (not an image, truncated,
    │       │                            wrong size or dtype, RGB): ends the run, exit code 2
    │       └── MissingSlice             a slice of the series does not exist
    └── TransferFailed                   some blocks failed after retries; carries the failed blocks

`is_retryable(exc)` is the single rule the client and the schedulers use for retries;
`ends_transfer(exc)` the rule for giving up on a whole transfer after a block's retries are spent.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NdexError(Exception):
    """Root of every error ndex raises on purpose."""


class UsageError(NdexError, ValueError):
    """The request cannot be satisfied as given; the message says what to change."""


class ConfigError(UsageError):
    """Missing or unreadable connection settings (URL, token, config file)."""


class InvalidBox(UsageError):
    """A range or box is empty, inverted or otherwise malformed."""


class OutOfBounds(UsageError):
    """A range lies outside the coordinate frame, or a resolution outside the hierarchy."""


class FieldError(UsageError):
    """A value of one field of a spec or of transfer options is impossible.

    The message names the field as `{field}`; the library says the field's name, a CLI its flag
    (`renamed`), so flag names never reach the library.
    """

    def __init__(self, field: str, template: str) -> None:
        self.field, self.template = field, template
        super().__init__(template.replace("{field}", field))

    def renamed(self, names: dict[str, str]) -> FieldError:
        """The same error naming `names[field]` (a flag) instead of the field."""
        out = FieldError(names.get(self.field, self.field), self.template)
        out.field = self.field
        return out


class RemoteError(NdexError):
    """An HTTP error answer from a BOSS server, with its status, BOSS code and message."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.url = url

    def __str__(self) -> str:
        parts = [self.message]
        tag = ", ".join(p for p in (f"HTTP {self.status}" if self.status else "",
                                    f"BOSS code {self.code}" if self.code else "") if p)
        if tag:
            parts.append(f"({tag})")
        return " ".join(parts)


class BadRequest(RemoteError):
    """HTTP 400: the server refused the request's arguments or body."""


class AuthError(RemoteError, PermissionError):
    """HTTP 401/403: the token is missing, unknown or lacks a permission."""


class ResourceNotFound(RemoteError, LookupError):
    """HTTP 404: collection, experiment, channel, frame, group or object does not exist."""


class Conflict(RemoteError):
    """HTTP 409: the resource is in a state that forbids the request."""


class RequestTooLarge(RemoteError):
    """HTTP 413: the cutout exceeds the server's size cap."""


class QuotaExceeded(RemoteError):
    """HTTP 429 without Retry-After, or with BOSS code 3004: BossDB's usage quota is spent ("Expected
    available tomorrow"). Retrying cannot help before it resets, and every refused call notifies
    BossDB's administrators, so the run ends at once."""


class RetryableRemoteError(RemoteError):
    """A server answer worth retrying after a pause."""


class ServerError(RetryableRemoteError):
    """HTTP 5xx other than 503."""


class Throttled(RetryableRemoteError):
    """HTTP 503, or 429 with Retry-After: slow down; `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransportError(NdexError, OSError):
    """No usable answer from the server."""


class RemoteUnreachable(TransportError):
    """The server could not be reached (refused, reset, name not resolved)."""


class RemoteTimeout(TransportError):
    """The server did not answer in time."""


class CorruptBody(TransportError):
    """The server's body was truncated or could not be decoded."""


class SinkError(NdexError, OSError):
    """Writing the local output failed."""


class SourceError(NdexError, OSError):
    """Reading the input images failed."""


class BadInput(SourceError):
    """An input file is not what the run needs: not an image, truncated, the wrong size or datatype,
    RGB. Every retry reads the same bytes, so the run ends with it; the fix is the file or the flags."""


class MissingSlice(BadInput):
    """A slice file of the series does not exist. Like a bad file, every retry meets the same gap, so the
    run ends with one line naming z, the file expected and the ways round it."""

    def __init__(self, z: int, location: str) -> None:
        super().__init__(f"slice z={z}: {location} does not exist: fix --base_path/--base_filename, push only "
                         "the slices there are (--z_range), or pass --warn_missing_files to ingest zeros for it")
        self.z, self.location = z, location


class TransferFailed(NdexError):
    """Some blocks failed after every retry; `failures` maps each block to its error."""

    def __init__(self, message: str, failures: Mapping[Any, BaseException | str] | None = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})


def is_retryable(exc: BaseException) -> bool:
    """True for errors a retry may cure: transport failures, 5xx, 429/503."""
    return isinstance(exc, (TransportError, RetryableRemoteError))


def ends_transfer(exc: BaseException) -> bool:
    """True when a block's final error would be every other block's too, so the run should stop now
    (and be re-run later) instead of spending every block's retries: a wrong token or name, bad input,
    or a server that cannot be reached or stopped answering."""
    return isinstance(exc, (AuthError, ResourceNotFound, UsageError, BadInput, QuotaExceeded, RemoteUnreachable,
                            RemoteTimeout))
