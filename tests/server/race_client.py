"""One client process of the scale-out race tests (run as a script, not collected by pytest).

    python race_client.py URL[,URL...] TOKEN COLL/EXP/CH INDEX CLIENTS POSTS SEED X,Y,Z [BLACK]

Posts POSTS partial, unaligned boxes of a uint8 channel, drawn from SEED, alternating between the URLs.
Voxel (x, y, z) belongs to client (x + 3y + 7z) % CLIENTS; in each box this client sends INDEX + 1 on
its own voxels and 0 (keep what is stored) on the others, so the final volume does not depend on the
order of the writes and every lost update shows as a wrong voxel. With BLACK > 0 the first BLACK
z-planes of every chunk belong to nobody, and INDEX -1 is the client that clears exactly those planes
with to_black, POSTS times, instead of posting. Prints one JSON line: the boxes the server acknowledged
(201 or, for to_black, 200) and the status of each one it did not.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import requests

from ndex import codecs


def owners(box: tuple[tuple[int, int, int], tuple[int, int, int]], clients: int, black: int = 0) -> np.ndarray:
    """(z, y, x) owner index of every voxel of the box (-1: nobody's, cleared by the to_black client)."""
    (x0, y0, z0), (x1, y1, z1) = box
    z, y, x = np.ogrid[z0:z1, y0:y1, x0:x1]
    return np.where(z % 16 < black, -1, (x + 3 * y + 7 * z) % clients)


def blacken(session: requests.Session, urls: list[str], path: str, posts: int, black: int,
            extent: tuple[int, int, int]) -> dict:
    """Clear the first `black` planes of every chunk row, over and over, while the others post."""
    done, failed = [], []
    for i in range(posts):
        z0 = 16 * (i % (extent[2] // 16))
        url = f"{urls[i % len(urls)]}/v1/cutout/to_black/{path}/0/0:{extent[0]}/0:{extent[1]}/{z0}:{z0 + black}/"
        status = session.put(url, timeout=120).status_code
        (done if status == 200 else failed).append(z0 if status == 200 else [z0, status])
    return {"acked": [], "blackened": done, "failed": failed}


def boxes(seed: int, posts: int, extent: tuple[int, int, int]) -> list[tuple[tuple[int, int, int], ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(posts):
        size = (int(rng.integers(200, 700)), int(rng.integers(200, 700)), int(rng.integers(3, 24)))
        start = tuple(int(rng.integers(0, n - s + 1)) for n, s in zip(extent, size))
        out.append((start, tuple(a + s for a, s in zip(start, size))))
    return out


def main(argv: list[str]) -> None:
    urls, token, path = argv[0].split(","), argv[1], argv[2]
    index, clients, posts, seed = map(int, argv[3:7])
    extent = tuple(int(v) for v in argv[7].split(","))
    black = int(argv[8]) if len(argv) > 8 else 0
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    if index < 0:
        print(json.dumps(blacken(session, urls, path, posts, black, extent)))
        return
    acked, failed = [], []
    for i, box in enumerate(boxes(seed, posts, extent)):
        (x0, y0, z0), (x1, y1, z1) = box
        data = np.where(owners(box, clients, black) == index, index + 1, 0).astype(np.uint8)
        url = f"{urls[i % len(urls)]}/v1/cutout/{path}/0/{x0}:{x1}/{y0}:{y1}/{z0}:{z1}/"
        try:
            status = session.post(url, data=codecs.encode(data), timeout=120,
                                  headers={"Content-Type": "application/blosc"}).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        (acked if status == 201 else failed).append(box if status == 201 else [box, status])
    print(json.dumps({"acked": acked, "failed": failed}))


if __name__ == "__main__":
    main(sys.argv[1:])
