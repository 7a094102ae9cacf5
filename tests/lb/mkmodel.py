#!/usr/bin/env python3
"""mkmodel.py - write a second model with the same shape and different weights.

    mkmodel.py SRC.safetensors DST.safetensors [SEED]

Every F32 tensor gets a deterministic perturbation w += 0.1 * sin(seed + 0.37 i)
(not a uniform scale, which L2 normalisation would hide); metadata and layout
are kept, so DST is a valid model whose outputs differ from SRC's. Pure
Python: the rolling-update test needs neither torch nor numpy.
"""
import json
import math
import struct
import sys
from array import array


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    seed = float(sys.argv[3]) if len(sys.argv) == 4 else 1.0
    blob = open(src, "rb").read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    data = bytearray(blob[8 + hlen:])
    changed = 0
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        w = array("f")
        w.frombytes(bytes(data[a:b]))
        if sys.byteorder != "little":
            w.byteswap()
        for i in range(len(w)):
            w[i] += 0.1 * math.sin(seed + 0.37 * i)
        if sys.byteorder != "little":
            w.byteswap()
        data[a:b] = w.tobytes()
        changed += 1
    if not changed:
        print(f"mkmodel: {src}: no F32 tensor to change", file=sys.stderr)
        return 1
    with open(dst, "wb") as f:
        f.write(blob[:8 + hlen])
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
