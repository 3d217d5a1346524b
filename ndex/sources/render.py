"""Slices rendered by a render-ws server (Janelia's `render`): `--datasource render`.

Endpoints used (the ones ndex 1.x used):

    GET {base}/owner/{owner}/project/{project}/stack/{stack}
        -> stack metadata; stats.stackBounds minX..maxX, minY..maxY, minZ..maxZ (inclusive bounds)
    GET {base}/owner/{owner}/project/{project}/stack/{stack}/z/{z}/box/{x},{y},{w},{h},{scale}/png-image
    GET ...                                                         .../tiff16-image
        -> the box (in full-resolution stack coordinates) rendered at `scale`; ?channels=NAME picks
           a channel of a multichannel stack

{base} is the render-ws API root, e.g. http://renderer:8080/render-ws/v1 (a bare host:port gets
/render-ws/v1 appended). Slices are fetched as boxes of at most render_tile_size pixels a side,
in parallel, and stitched. uint8 comes from png-image (channel 0 of render's ARGB), uint16 from
tiff16-image. With render_window=(lo, hi) the 16-bit image is fetched and mapped onto 0..255 here,
linearly, clipping below lo and above hi (ndex 1.x asked render to do this; doing it here makes the
result the same whatever render's version). limit_x/limit_y (full-resolution stack coordinates)
and limit_z restrict the region; the source's x/y then start at round(limit * scale).
"""
from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ndex.errors import OutOfBounds, SourceError, UsageError
from ndex.geometry import Box
from ndex.sources.base import Range, SourceSpec, check_slab, sample_points
from ndex.sources.images import decode_image

log = logging.getLogger(__name__)

API_ROOT = "/render-ws/v1"


def api_root(base_url: str) -> str:
    """The render-ws v1 root for a base URL given with or without /render-ws[/v1]."""
    url = base_url.rstrip("/")
    if url.endswith(API_ROOT):
        return url
    if url.endswith("/render-ws"):
        return url + "/v1"
    return url + API_ROOT


class RenderClient:
    """The two render-ws calls ndex needs, over urllib with timeouts and a few retries."""

    def __init__(self, base_url: str, owner: str, project: str, stack: str, *, timeout: float = 60.0,
                 attempts: int = 4, backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        quote = urllib.parse.quote
        self.name = f"{owner}/{project}/{stack}"
        self.stack_url = f"{api_root(base_url)}/owner/{quote(owner)}/project/{quote(project)}/stack/{quote(stack)}"
        self.timeout, self.attempts, self.backoff, self.sleep = timeout, attempts, backoff, sleep

    def metadata(self) -> dict:
        try:
            body = self._get(self.stack_url)
        except _NotFound:
            raise SourceError(f"render stack {self.name} not found at {self.stack_url} (HTTP 404): "
                              "check --render_owner, --render_project, --render_stack and --render_baseURL") from None
        try:
            return json.loads(body)
        except ValueError:
            raise SourceError(f"{self.stack_url} did not answer with JSON stack metadata: is "
                              "--render_baseURL a render-ws server?") from None

    def box(self, z: int, x: int, y: int, w: int, h: int, scale: float, kind: str,
            channel: str | None = None) -> np.ndarray:
        """Box x,y,w,h (full-resolution coordinates) of slice z rendered at `scale` as a 2D array."""
        url = f"{self.stack_url}/z/{z}/box/{x},{y},{w},{h},{scale:g}/{kind}-image"
        if channel:
            url += "?" + urllib.parse.urlencode({"channels": channel})
        try:
            image = decode_image(self._get(url), url)
        except _NotFound:
            raise SourceError(f"render-ws has no image at {url} (HTTP 404)") from None
        image = image[:, :, 0] if image.ndim == 3 else image  # render's PNGs are grey ARGB
        return image.astype(image.dtype.newbyteorder("="), copy=False)

    def _get(self, url: str) -> bytes:
        error: BaseException | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                with exc:  # an HTTPError holds the response's socket open until closed
                    detail = " ".join(exc.read(300).decode("utf-8", "replace").split())
                if exc.code == 404:
                    raise _NotFound(url) from None
                if exc.code < 500 and exc.code != 429:
                    raise SourceError(f"render-ws refused {url}: HTTP {exc.code} {detail}".rstrip()) from None
                error = exc
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
                error = exc
            log.info("render-ws request %s failed (attempt %d of %d): %s", url, attempt + 1, self.attempts, error)
        raise SourceError(f"render-ws did not answer {url} after {self.attempts} attempts: {error}")


class _NotFound(Exception):
    """HTTP 404 from render-ws; turned into a message that fits what was asked."""


def window_to_uint8(image: np.ndarray, window: Range) -> np.ndarray:
    """Map [lo, hi] linearly onto 0..255, clipping outside (values rounded half up)."""
    lo, hi = window
    scaled = (image.astype(np.float32) - lo) * np.float32(255.0 / (hi - lo)) + np.float32(0.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def stack_bounds(meta: dict, name: str) -> tuple[Range, Range, Range]:
    """x, y, z half-open ranges from render's inclusive stackBounds."""
    try:
        b = meta["stats"]["stackBounds"]
        return tuple((round(b[f"min{a}"]), round(b[f"max{a}"]) + 1) for a in "XYZ")  # type: ignore[return-value]
    except (KeyError, TypeError):
        state = meta.get("state", "unknown") if isinstance(meta, dict) else "unknown"
        raise SourceError(f"render stack {name} has no bounds (state {state}): complete the stack "
                          "(derive its stats) in render first") from None


def _limit(full: Range, limit: Range | None, axis: str, name: str) -> Range:
    if limit is None:
        return full
    if limit[0] < full[0] or limit[1] > full[1]:
        raise OutOfBounds(f"--limit_{axis} {limit[0]}:{limit[1]} is outside render stack {name}'s "
                          f"{axis} bounds {full[0]}:{full[1]}")
    return limit


class RenderSource:
    """Source protocol over a render-ws stack; a band (`read(box)`) requests only the boxes it overlaps."""

    supports_partial_reads = True

    def __init__(self, spec: SourceSpec, client: RenderClient | None = None) -> None:
        self.spec = spec
        self.dtype = self._dtype(spec)
        self.client = client or RenderClient(*self._location(spec))
        meta = self.client.metadata()
        full_x, full_y, full_z = stack_bounds(meta, self.client.name)
        self.x = _limit(full_x, spec.limit_x, "x", self.client.name)
        self.y = _limit(full_y, spec.limit_y, "y", self.client.name)
        z = _limit(full_z, spec.limit_z, "z", self.client.name)
        self.z_range = _limit(z, spec.z_range, "z", self.client.name) if spec.z_range else z
        self._check_channel(meta)
        s = spec.render_scale
        self.origin_xy = (round(self.x[0] * s), round(self.y[0] * s))
        self.shape_xy = (round(self.x[1] * s) - self.origin_xy[0], round(self.y[1] * s) - self.origin_xy[1])
        self._pool = ThreadPoolExecutor(spec.read_threads, thread_name_prefix="ndex-render")

    @staticmethod
    def _dtype(spec: SourceSpec) -> np.dtype:
        dtype = spec.dtype if spec.dtype is not None else np.dtype(np.uint8)
        if dtype not in (np.uint8, np.uint16):
            raise UsageError(f"render serves uint8 or uint16 images, not {dtype.name}: fix --datatype")
        if spec.render_window is not None and dtype != np.uint8:
            raise UsageError("--render_window maps 16-bit intensities to uint8: use it with --datatype uint8")
        return dtype

    @staticmethod
    def _location(spec: SourceSpec) -> tuple[str, str, str, str]:
        parts = (spec.render_base_url, spec.render_owner, spec.render_project, spec.render_stack)
        flags = ("--render_baseURL", "--render_owner", "--render_project", "--render_stack")
        absent = [flag for flag, value in zip(flags, parts) if not value]
        if absent:
            raise UsageError(f"the render datasource needs {', '.join(absent)}")
        return parts  # type: ignore[return-value]

    def _check_channel(self, meta: dict) -> None:
        names = (meta.get("stats") or {}).get("channelNames") or []
        channel = self.spec.render_channel
        if channel and names and channel not in names:
            raise SourceError(f"render stack {self.client.name} has no channel {channel!r} "
                              f"(it has {', '.join(map(str, names))}): fix --render_channel")

    @property
    def missing(self) -> list[int]:
        return []  # render draws an empty box for a z without tiles; nothing is ever missing

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        check_slab(self.z_range, z0, z1)
        (x0, y0), (sx, sy) = self.origin_xy, self.shape_xy
        return self.read(Box((x0, y0, z0), (x0 + sx, y0 + sy, z1)))

    def read(self, box: Box) -> np.ndarray:
        """The voxels of `box` (scaled render coordinates, from origin_xy) as (z, y, x)."""
        check_slab(self.z_range, *box.z)
        at = (box.y[0] - self.origin_xy[1], box.x[0] - self.origin_xy[0])
        out = np.zeros(box.shape_zyx, dtype=self.dtype)
        cells = [(z, b) for z in range(*box.z) for b in self._boxes() if self._overlaps(b, out.shape[1:], at)]
        list(self._pool.map(lambda cell: self._place(cell[0], cell[1], out[cell[0] - box.z[0]], at), cells))
        return out

    def _corner(self, box: tuple[int, int, int, int]) -> tuple[int, int]:
        """Slice (y, x) where a request box's image lands."""
        s = self.spec.render_scale
        return round(box[1] * s) - self.origin_xy[1], round(box[0] * s) - self.origin_xy[0]

    def _overlaps(self, box: tuple[int, int, int, int], shape: tuple[int, ...], at: tuple[int, int]) -> bool:
        (top, left), s = self._corner(box), self.spec.render_scale
        bottom, right = top + round(box[3] * s) + 1, left + round(box[2] * s) + 1  # render may round up by one
        return top < at[0] + shape[0] and bottom > at[0] and left < at[1] + shape[1] and right > at[1]

    def validate(self, sample: int = 3) -> None:
        """Fetch a small box of the sampled slices: checks that images come back, decodable and typed."""
        step = max(1, round(64 / self.spec.render_scale))
        x, y = self.x[0], self.y[0]
        w, h = min(step, self.x[1] - x), min(step, self.y[1] - y)
        for z in sample_points(self.z_range, sample):
            self._fetch(z, (x, y, w, h))

    def describe(self) -> str:
        extra = "".join(f", {label} {value}" for label, value in (
            ("channel", self.spec.render_channel), ("window", self.spec.render_window)) if value)
        return (f"render stack {self.client.name} at {self.client.stack_url} z {self.z_range[0]}:{self.z_range[1]}, "
                f"x {self.x[0]}:{self.x[1]}, y {self.y[0]}:{self.y[1]} at scale {self.spec.render_scale:g} "
                f"({self.shape_xy[0]}x{self.shape_xy[1]} {self.dtype.name}{extra})")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _boxes(self) -> list[tuple[int, int, int, int]]:
        """Full-resolution request boxes covering x, y; each renders to at most render_tile_size a side."""
        stride = max(1, round(self.spec.render_tile_size / self.spec.render_scale))
        return [(x, y, min(stride, self.x[1] - x), min(stride, self.y[1] - y))
                for y in range(self.y[0], self.y[1], stride) for x in range(self.x[0], self.x[1], stride)]

    def _fetch(self, z: int, box: tuple[int, int, int, int]) -> np.ndarray:
        kind = "png" if self.dtype == np.uint8 and self.spec.render_window is None else "tiff16"
        image = self.client.box(z, *box, self.spec.render_scale, kind, self.spec.render_channel)
        if self.spec.render_window is not None:
            return window_to_uint8(image, self.spec.render_window)
        if image.dtype != self.dtype:
            raise SourceError(f"render-ws sent {image.dtype.name} for a {kind}-image of {self.client.name} "
                              f"z={z}, expected {self.dtype.name}")
        return image

    def _place(self, z: int, box: tuple[int, int, int, int], out: np.ndarray, at: tuple[int, int]) -> None:
        """The box's image into `out`, whose first voxel is slice (y, x) `at`; render rounds the scaled box
        size its own way: keep what lands inside the slice (and the band)."""
        image = self._fetch(z, box)
        top, left = self._corner(box)
        ys = max(top, at[0]), min(top + image.shape[0], at[0] + out.shape[0], self.shape_xy[1])
        xs = max(left, at[1]), min(left + image.shape[1], at[1] + out.shape[1], self.shape_xy[0])
        if ys[0] < ys[1] and xs[0] < xs[1]:
            out[ys[0] - at[0]:ys[1] - at[0], xs[0] - at[1]:xs[1] - at[1]] = \
                image[ys[0] - top:ys[1] - top, xs[0] - left:xs[1] - left]


def open_render(spec: SourceSpec) -> RenderSource:
    return RenderSource(spec)
