"""Slice files (or tiles) in an S3 bucket: `--datasource s3`, the same names as local under the bucket.

boto3 is imported here only, when an S3 source is opened, so ndex runs without it otherwise.
Credentials come from boto3's usual chain (--aws_profile, env, ~/.aws); the endpoint from
--s3 endpoint or AWS_ENDPOINT_URL (MinIO, Ceph, moto).
"""
from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable
from typing import IO, Any, TypeVar

from ndex.errors import ConfigError, SourceError, UsageError
from ndex.sources.base import SourceSpec
from ndex.sources.slices import FileStore, SliceSource

MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
RANGE_BUFFER = 2**16  # bytes per ranged GET at least: a TIFF's tags are read in a request or two, not dozens
S = TypeVar("S")


def _boto() -> tuple[Any, Any]:
    try:
        import boto3
        import botocore.exceptions
    except ModuleNotFoundError as exc:
        raise UsageError("reading from S3 needs boto3, which is not installed: pip install 'ndex[s3]'") from exc
    return boto3, botocore.exceptions


class S3Files:
    """FileStore over one S3 bucket; locations are object keys."""

    def __init__(self, bucket: str, *, profile: str | None = None, endpoint: str | None = None,
                 max_connections: int = 10) -> None:
        boto3, self._errors = _boto()
        from botocore.config import Config

        try:
            session = boto3.session.Session(profile_name=profile)
        except self._errors.ProfileNotFound:
            raise ConfigError(f"AWS profile {profile!r} not found in ~/.aws/config or ~/.aws/credentials: "
                              "fix --aws_profile") from None
        self.bucket = bucket
        self._client = session.client("s3", endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL") or None,
                                      config=Config(max_pool_connections=max(max_connections, 10)))

    def join(self, directory: str, name: str) -> str:
        return "/".join(part.strip("/") for part in (directory, name) if part.strip("/"))

    def read(self, location: str) -> bytes | None:
        url = f"s3://{self.bucket}/{location}"
        try:
            return self._client.get_object(Bucket=self.bucket, Key=location)["Body"].read()
        except self._errors.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in MISSING_CODES:
                return None
            if code == "NoSuchBucket":
                raise SourceError(f"S3 bucket {self.bucket!r} does not exist: fix --s3_bucket_name") from None
            raise SourceError(f"cannot read {url}: {code} {error.get('Message', '')}".rstrip()) from exc
        except (self._errors.BotoCoreError, OSError) as exc:  # no credentials, endpoint unreachable, cut body
            raise SourceError(f"cannot read {url}: {exc}") from exc

    def open_file(self, location: str) -> IO[bytes] | None:
        """The object as a seekable file read by ranged GETs (a band of a TIFF slice); None if it does not exist."""
        url = f"s3://{self.bucket}/{location}"
        try:
            size = int(self._client.head_object(Bucket=self.bucket, Key=location)["ContentLength"])
        except self._errors.ClientError:
            return None  # missing, or an error that the whole read reports in its own words
        except (self._errors.BotoCoreError, OSError) as exc:
            raise SourceError(f"cannot read {url}: {exc}") from exc
        return io.BufferedReader(RangedObject(self, location, size), buffer_size=RANGE_BUFFER)

    def read_range(self, location: str, start: int, stop: int) -> bytes:
        """Bytes start:stop of an object (one ranged GET)."""
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=location, Range=f"bytes={start}-{stop - 1}")
            return body["Body"].read()
        except (self._errors.ClientError, self._errors.BotoCoreError, OSError) as exc:
            raise SourceError(f"cannot read s3://{self.bucket}/{location} bytes {start}:{stop}: {exc}") from exc

    def describe(self) -> str:
        endpoint = self._client.meta.endpoint_url
        return f"s3://{self.bucket} ({endpoint})"

    def close(self) -> None:
        self._client.close()


class RangedObject(io.RawIOBase):
    """A read-only, seekable file over an S3 object: each read is one ranged GET (buffered by the caller)."""

    def __init__(self, store: S3Files, location: str, size: int) -> None:
        self.store, self.location, self.size, self.pos = store, location, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        stop = min(self.size, self.pos + len(buffer))
        if stop <= self.pos:
            return 0
        data = self.store.read_range(self.location, self.pos, stop)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def s3_location(spec: SourceSpec) -> SourceSpec:
    """The spec with bucket and key prefix split out of an `s3://bucket/prefix` base_path."""
    bucket, prefix = spec.s3_bucket, spec.base_path
    if prefix.startswith("s3://"):
        url_bucket, _, prefix = prefix[len("s3://"):].partition("/")
        if bucket and bucket != url_bucket:
            raise UsageError(f"--base_path names bucket {url_bucket!r} but --s3_bucket_name is {bucket!r}")
        bucket = url_bucket
    if not bucket:
        raise UsageError("the s3 datasource needs a bucket: give --s3_bucket_name (or --base_path s3://BUCKET/PREFIX)")
    return dataclasses.replace(spec, s3_bucket=bucket, base_path=prefix)


def open_in_s3(spec: SourceSpec, make: Callable[[SourceSpec, FileStore], S]) -> S:
    """`make(spec, store)` over the bucket the spec names, the key prefix split out of an s3:// base_path;
    the store is closed if the source cannot be made (once made, the source closes it)."""
    spec = s3_location(spec)
    store = S3Files(spec.s3_bucket or "", profile=spec.aws_profile, endpoint=spec.s3_endpoint,
                    max_connections=spec.read_threads)
    try:
        return make(spec, store)
    except BaseException:
        store.close()
        raise


def open_s3(spec: SourceSpec) -> SliceSource:
    return open_in_s3(spec, SliceSource)
