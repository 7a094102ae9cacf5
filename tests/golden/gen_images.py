#!/usr/bin/env python3
"""gen_images.py - test images and PIL's answers for tests/unit/test_img.c.

Writes tests/data/images/: PNG (8/16-bit grey, grey+alpha, RGB, RGBA, palette
with and without transparency, 1- and 4-bit grey, Adam7 interlaced) and JPEG
(grey, RGB, progressive) files, and for each file and target (channels,
height, width) the uint8 CHW pixels PIL gives for
Image.open(f).convert("L" or "RGB").resize((W, H), Image.BILINEAR) (no resize
when the size matches), listed in cases.txt. Hostile files (truncated, a
decompression bomb, zero size, CMYK, garbage) are written for the error table.
Needs Debian's python3-pil and python3-numpy; deterministic.
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "images")
rng = np.random.default_rng(20261205)


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png_raw(w, h, color_type, depth, rows, interlace=0, extra=b""):
    """rows: list of per-row sample bytes (already packed), or with interlace the full image array."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace)
    if interlace:
        raw = b""
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            sub = rows[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for r in sub:
                raw += b"\x00" + r.astype(">u2" if depth == 16 else "u1").tobytes()
    else:
        raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def smooth(h, w, c):
    y, x = np.mgrid[0:h, 0:w]
    planes = [(np.sin(x / (3.0 + k)) * np.cos(y / (4.0 + k)) * 110 + 128 + rng.integers(-20, 20, (h, w))) for k in range(c)]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = []
    rgb = smooth(30, 40, 3)
    Image.fromarray(rgb).save(os.path.join(OUT, "rgb8.png")); files.append("rgb8.png")
    Image.fromarray(rgb[..., 0]).save(os.path.join(OUT, "grey8.png")); files.append("grey8.png")
    rgba = np.concatenate([rgb, smooth(30, 40, 1)], -1)
    Image.fromarray(rgba).save(os.path.join(OUT, "rgba8.png")); files.append("rgba8.png")
    Image.fromarray(rgba[..., [0, 3]], "LA").save(os.path.join(OUT, "la8.png")); files.append("la8.png")
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(os.path.join(OUT, "palette.png")); files.append("palette.png")
    pal.save(os.path.join(OUT, "palette_trns.png"), transparency=3); files.append("palette_trns.png")
    g16 = (smooth(21, 17, 1)[..., 0].astype(np.uint16) * 3).astype(">u2")  # many values over 255: PIL clips
    write("grey16.png", png_raw(17, 21, 0, 16, [r.tobytes() for r in g16])); files.append("grey16.png")
    c16 = (smooth(13, 11, 3).astype(np.uint16) * 257 + rng.integers(0, 256, (13, 11, 3))).astype(">u2")
    write("rgb16.png", png_raw(11, 13, 2, 16, [r.tobytes() for r in c16])); files.append("rgb16.png")
    g4 = rng.integers(0, 16, (9, 10)).astype(np.uint8)
    write("grey4.png", png_raw(10, 9, 0, 4, [bytes((r[i] << 4) | r[i + 1] for i in range(0, 10, 2)) for r in g4]))
    files.append("grey4.png")
    Image.fromarray(smooth(12, 16, 1)[..., 0] > 128).save(os.path.join(OUT, "grey1.png")); files.append("grey1.png")
    write("rgb8_interlaced.png", png_raw(23, 19, 2, 8, smooth(19, 23, 3), interlace=1)); files.append("rgb8_interlaced.png")
    Image.fromarray(rgb).save(os.path.join(OUT, "rgb.jpg"), quality=90); files.append("rgb.jpg")
    Image.fromarray(rgb[..., 1]).save(os.path.join(OUT, "grey.jpg"), quality=85); files.append("grey.jpg")
    Image.fromarray(smooth(64, 48, 3)).save(os.path.join(OUT, "progressive.jpg"), quality=80, progressive=True)
    files.append("progressive.jpg")
    Image.fromarray(smooth(200, 160, 3)).save(os.path.join(OUT, "big.png")); files.append("big.png")

    targets = [(1, 28, 28), (3, 24, 32), (1, 7, 5), (3, 60, 50)]
    lines = []
    for f in files:
        im = Image.open(os.path.join(OUT, f))
        own = [(1, im.size[1], im.size[0])]
        for c, h, w in targets + own:
            conv = im.convert("L" if c == 1 else "RGB")
            if conv.size != (w, h):
                conv = conv.resize((w, h), Image.BILINEAR)
            a = np.asarray(conv, dtype=np.uint8).reshape(h, w, c).transpose(2, 0, 1)
            exp = f"{f}.{c}x{h}x{w}.u8"
            write(exp, a.tobytes())
            lines.append(f"{f} {c} {h} {w} {exp}\n")
    with open(os.path.join(OUT, "cases.txt"), "w") as fh:
        fh.write("# file channels height width expected (uint8 CHW, PIL convert + resize BILINEAR)\n")
        fh.writelines(lines)

    # hostile files
    good_png = open(os.path.join(OUT, "rgb8.png"), "rb").read()
    good_jpg = open(os.path.join(OUT, "rgb.jpg"), "rb").read()
    write("bad_truncated.png", good_png[: len(good_png) // 2])
    write("bad_truncated.jpg", good_jpg[: len(good_jpg) // 2])
    write("bad_bomb.png", png_raw(100000, 100000, 0, 8, [b"\x00" * 10]))
    write("bad_zero.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)) + chunk(b"IEND", b""))
    Image.fromarray(rgba).convert("CMYK").save(os.path.join(OUT, "bad_cmyk.jpg"))
    write("bad_garbage.png", b"\x89PNG\r\n\x1a\nthis is not a png at all")
    write("bad_text.jpg", b"root:x:0:0:root:/root:/bin/bash\n")
    write("bad_empty.png", b"")
    sof = good_jpg.index(b"\xff\xc0")  # SOF0: length(2) precision(1) height(2) width(2)
    write("bad_zero.jpg", good_jpg[: sof + 5] + b"\x00\x00" + good_jpg[sof + 7 :])
    write("bad_12bit.jpg", good_jpg[: sof + 4] + b"\x0c" + good_jpg[sof + 5 :])  # sample precision 12
    idat = good_png.index(b"IDAT") + 8  # a byte inside the compressed data: its CRC no longer matches
    write("bad_crc.png", good_png[:idat] + bytes([good_png[idat] ^ 0xFF]) + good_png[idat + 1 :])
    return 0


if __name__ == "__main__":
    sys.exit(main())
