#!/usr/bin/env python3
"""Writes the captions benchmark's profile: DIR/profile.json and COUNT
distinct PNG images DIR/img/1.png ... (64x64, one solid colour each, 8-bit
RGB), referenced by relative path. Python 3 standard library only.

    python3 bench/captions/make_profile.py DIR [COUNT]
"""

import json
import os
import struct
import sys
import zlib

SIZE = 64
COLOURS = [
    (200, 40, 40), (40, 160, 60), (40, 70, 200), (230, 200, 40),
    (150, 60, 170), (40, 180, 190), (240, 130, 30), (120, 120, 120),
]


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(rgb, size=SIZE):
    row = b"\x00" + bytes(rgb) * size  # filter type 0 (none), then the pixels
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * size, 9))
            + chunk(b"IEND", b""))


def colour(i):
    if i < len(COLOURS):
        return COLOURS[i]
    return ((37 * i) % 256, (91 * i + 50) % 256, (53 * i + 100) % 256)


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.makedirs(os.path.join(out, "img"), exist_ok=True)
    images = []
    seen = set()
    for i in range(count):
        data = png(colour(i))
        assert data not in seen, "images must be distinct (the cache is keyed by their bytes)"
        seen.add(data)
        name = f"img/{i + 1}.png"
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        images.append(name)
    profile = {
        "text": "Three bedroom semi-detached house in Horfield with a south-facing garden, "
                "a refitted kitchen and off-street parking. Photos of every room.",
        "images": images,
        "metadata": {"id": "bench-captions"},
    }
    with open(os.path.join(out, "profile.json"), "w") as f:
        json.dump(profile, f, indent=2)
        f.write("\n")
    print(os.path.join(out, "profile.json"))


if __name__ == "__main__":
    main()
