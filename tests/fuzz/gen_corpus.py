#!/usr/bin/python3
"""gen_corpus.py - write the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/).

Small, valid inputs of every shape each parser accepts, so the fuzzer starts
from deep inside the format. Deterministic: rerunning rewrites the same bytes.
Run from anywhere: python3 tests/fuzz/gen_corpus.py
"""
import base64
import gzip
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proto"))
from export import save_file  # noqa: E402

OUT = os.path.join(HERE, "corpus")
rng = np.random.default_rng(20240601)


def target_dir(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def st_bytes(tensors, meta=None):
    """safetensors bytes via proto/export.py (through a scratch file)."""
    os.makedirs(OUT, exist_ok=True)
    tmp = os.path.join(OUT, ".tmp.safetensors")
    save_file(tensors, tmp, meta)
    with open(tmp, "rb") as f:
        b = f.read()
    os.remove(tmp)
    return b


def st_raw(entries, meta=None):
    """safetensors bytes from (name, dtype, shape, array) rows: any dtype the format names."""
    header, off, blobs = {}, 0, []
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, a in entries:
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def mlp(dims, dtype="float32", bias=True):
    t = {}
    for i in range(len(dims) - 1):
        t["%d.weight" % (2 * i)] = rng.standard_normal((dims[i + 1], dims[i])).astype(dtype)
        if bias:
            t["%d.bias" % (2 * i)] = rng.standard_normal(dims[i + 1]).astype(dtype)
    return t


def models():
    m = {}
    m["relu_f32"] = st_bytes(mlp([4, 3, 2]), {"activation": "relu", "normalize": "true", "name": "tiny"})
    m["gelu_f16"] = st_bytes(mlp([5, 4, 3], "float16"), {"activation": "gelu", "metric": "cosine", "margin": "0.5"})
    m["tanh_f64_nobias"] = st_bytes(mlp([3, 3], "float64", bias=False), {"activation": "tanh", "normalize": "false"})
    pre = mlp([6, 2])
    pre["input.mean"] = np.full(6, 0.5, dtype="float32")
    pre["input.scale"] = np.full(6, 2.0, dtype="float32")
    m["preproc"] = st_bytes(pre, {"activation": "identity", "loss": "contrastive", "description": "with input.mean"})
    m["sigmoid_3layer"] = st_bytes(mlp([2, 4, 4, 2]), {"activation": "sigmoid", "metric": "dot"})
    return m


def galleries():
    g = {}
    emb = rng.standard_normal((3, 4)).astype("float32")
    ids = "a\0b\0\xe2\x82\xac\0".encode("latin-1")
    g["full"] = st_bytes({"embeddings": emb, "labels": np.array([0, 1, 0], dtype="int64"),
                          "ids": np.frombuffer(ids, dtype="uint8")},
                         {"format": "tripletd-gallery", "format_version": "1", "model_sha256": "ab" * 32})
    g["plain"] = st_bytes({"embeddings": emb[:2]})
    g["f16_i32"] = st_bytes({"embeddings": emb.astype("float16"), "labels": np.array([5, 6, 7], dtype="int32")},
                            {"format": "tripletd-gallery"})
    return g


def idx(code, dims, values):
    fmt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + \
        np.asarray(values, dtype=fmt).tobytes()


def idx_input(opts, img, lab):
    return bytes([opts]) + struct.pack("<H", len(img)) + img + lab


def main():
    ms = models()
    d = target_dir("fuzz_model")
    for name, data in ms.items():
        write(d, name, data)
    d = target_dir("fuzz_st")
    for name, data in ms.items():
        write(d, name, data)
    for name, data in galleries().items():
        write(d, "gallery_" + name, data)
    write(d, "ints", st_raw([("a", "I8", [4], np.arange(4, dtype="<i1")), ("b", "U16", [3], np.arange(3, dtype="<u2")),
                             ("c", "U64", [2], np.arange(2, dtype="<u8")), ("d", "F32", [0, 3], np.zeros(0, "<f4")),
                             ("e", "BOOL", [2], np.array([0, 1], dtype="u1")), ("f", "I16", [1], np.array([-3], "<i2")),
                             ("g", "U32", [1], np.array([9], "<u4")), ("h", "BF16", [2], np.array([0x3f80, 0xc000], "<u2"))],
                            {"k": "v"}))
    d = target_dir("fuzz_gallery")
    for name, data in galleries().items():
        write(d, name, data)

    d = target_dir("fuzz_idx")
    labels = idx(0x08, [3], [1, 0, 1])
    write(d, "ubyte_rank3", idx_input(0, idx(0x08, [3, 2, 2], rng.integers(0, 256, 12)), labels))
    write(d, "float_rank2_scaled", idx_input(1, idx(0x0D, [3, 2], rng.standard_normal(6)), labels))
    write(d, "double_rank1_limit2", idx_input(4, idx(0x0E, [3], [0.5, -1, 2]), idx(0x0C, [3], [7, -1, 7])))
    write(d, "short_int_labels", idx_input(0, idx(0x0B, [2, 3], [-5, 4, 3, 2, 1, 0]), idx(0x09, [2], [-1, 1])))

    d = target_dir("fuzz_csv")
    write(d, "plain", "1,2,3,0\n4,5,6,1\n7,8,9,0\n")
    write(d, "header", "a,b,label\n0.5,1e3,2\n-1,2.25,3\n\n")
    write(d, "ids_crlf", "id,x0,x1,y\r\nfoo, 1, 2, 0\r\nbar,3,4,1\r\nbaz,5,6,1\r\n")
    write(d, "single", "5,-7")

    d = target_dir("fuzz_jsonl")
    write(d, "plain", '{"x":[1,2],"label":0}\n{"x":[3,4],"label":1}\n{"x":[5,6],"label":0}\n')
    write(d, "ids", '{"features":[0.5],"label":3,"id":"a"}\n\n{"features":[1e-3],"label":-2,"id":"b"}\r\n'
                    '{"features":[2],"label":3,"id":"b"}\n')
    write(d, "int_ids", '{"x":[1,2,3],"label":1,"id":17}\n{"x":[4,5,6],"label":1,"id":18}')

    # fuzz_gzip: gzip'd (and one raw) copies of the text seeds; mtime 0 keeps the bytes stable
    d = target_dir("fuzz_gzip")
    for sub in ("fuzz_csv", "fuzz_jsonl"):
        for name in sorted(os.listdir(os.path.join(OUT, sub))):
            with open(os.path.join(OUT, sub, name), "rb") as f:
                write(d, sub[5:] + "_" + name + ".gz", gzip.compress(f.read(), mtime=0))
    write(d, "raw_csv", "1,2,0\n3,4,1\n")
    write(d, "two_members.gz", gzip.compress(b"1,2,0\n", mtime=0) + gzip.compress(b"3,4,1\n", mtime=0))

    # fuzz_request: "PATH\nBODY" for the 4 -> 3 -> 2 model and 2-d gallery fuzz_request.c builds
    d = target_dir("fuzz_request")
    x4 = [[1, 2, 3, 4], [0.5, -1, 0, 2], [0, 0, 0, 0], [3, 1, 4, 1]]
    b64 = base64.b64encode(struct.pack("<4f", 1, 2, 3, 4)).decode()
    reqs = {
        "healthz": ("/healthz", None), "readyz": ("/readyz", None), "model": ("/v1/model", None),
        "metrics": ("/metrics", None), "openapi": ("/openapi.json", None), "gallery": ("/v1/gallery", None),
        "embed": ("/v1/embed", {"inputs": x4[:2], "normalize": False}),
        "embed_b64": ("/v1/embed", {"inputs": b64, "encoding_format": "base64"}),
        "embeddings": ("/v1/embeddings", {"input": x4[0], "model": "m", "encoding_format": "float"}),
        "distance": ("/v1/distance", {"a": x4[:2], "b": x4[2:], "metric": "cosine"}),
        "distance_pairwise": ("/v1/distance", {"a": [[1, 2], [3, 4]], "b": [[0, 1]], "embed": False,
                                               "pairwise": True, "metric": "dot"}),
        "triplet": ("/v1/loss/triplet", {"anchors": x4[:2], "positives": x4[1:3], "negatives": x4[2:],
                                         "margin": 0.3, "swap": True, "reduction": "mean-nonzero"}),
        "triplet_soft": ("/v1/loss/triplet", {"anchors": [1, 0], "positives": [1, 1], "negatives": [0, 1],
                                              "embed": False, "loss": "triplet-soft", "metric": "euclidean"}),
        "pair": ("/v1/loss/pair", {"a": x4[:2], "b": x4[2:], "labels": [1, 0], "loss": "contrastive-squared"}),
        "infonce": ("/v1/loss/infonce", {"a": x4[:3], "b": x4[1:], "temperature": 0.5, "tau_plus": 0.1,
                                         "beta": 1.0, "estimator": "hard"}),
        "mine_hard": ("/v1/mine", {"inputs": x4, "labels": [0, 0, 1, 1], "strategy": "batch-hard"}),
        "mine_all": ("/v1/mine", {"inputs": x4, "labels": [0, 1, 0, 1], "strategy": "batch-all",
                                  "max_triplets": 3, "metric": "sqeuclidean"}),
        "mine_semi": ("/v1/mine", {"inputs": [[1, 0], [0, 1], [1, 1]], "labels": [0, 0, 1], "embed": False,
                                   "strategy": "semi-hard", "margin": 0.5}),
        "search": ("/v1/search", {"queries": x4[:2], "k": 3}),
        "search_raw": ("/v1/search", {"queries": [[1, 0]], "embed": False, "k": 2, "filter_label": 1,
                                      "metric": "cosine"}),
        # rows that pack (all numbers) next to rows that do not, labels packed or with booleans
        "embed_mixed": ("/v1/embed", {"inputs": [[1, 2, 3, 4], "AACAPwAAAEAAAEBAAACAQA==", [0.5, -1, 0, 2]]}),
        "embed_single": ("/v1/embeddings", {"input": [1, 2, 3, 1e39]}),
        "pair_bool_labels": ("/v1/loss/pair", {"a": x4[:3], "b": x4[1:], "labels": [1, False, 0],
                                               "embed": True}),
        # GET routes whose handlers read the request path: the console's files, gallery items by index
        "console": ("/", None), "console_js": ("/console.js", None), "stats": ("/v1/stats", None),
        "projection": ("/v1/gallery/projection", None), "item": ("/v1/gallery/items/2", None),
        "item_image": ("/v1/gallery/items/4/image", None),
    }
    for name, (path, body) in reqs.items():
        write(d, name, path + "\n" + ("" if body is None else json.dumps(body)))

    # fuzz_json: the request bodies plus texts that stress numbers, escapes and nesting
    d = target_dir("fuzz_json")
    for name, (path, body) in reqs.items():
        if body is not None:
            write(d, name, json.dumps(body))
    extras = {
        "numbers": "[0, -0, 1.5, -2.25e-3, 1E+22, 1e23, 9007199254740993, 123456789012345678901234567890, "
                   "4.9406564584124654e-324, 1.7976931348623157e308, 1e400, -1e-400, 0.1000000000000000055511151231257827]",
        "escapes": '{"s": "a\\"b\\\\c\\/d\\b\\f\\n\\r\\t", "u": "\\u00e9\\u20ac\\ud83d\\ude00", "raw": "\u00e9\u20ac"}',
        "nested": "[[[[[[[[[[{\"a\": [{\"b\": null}, true, false]}]]]]]]]]]]",
        "object_33": "{" + ",".join('"k%d": %d' % (i, i) for i in range(33)) + "}",
        "whitespace": " \t\r\n{ \"a\" : [ 1 , 2 ] } \n",
        # number arrays that turn out mixed or malformed part way (srv_json_parse_packed rewinds)
        "packed_mixed": '{"r": [[1, 2, 3], [4, 5, "x"], [6, [7]], [8, true], [], [ 9 ,\t10 , 11 ], [-0, 1e400, -2.5E-3]]}',
        "packed_bad": "[1, 2, 3, 4, 01]",
    }
    for name, text in extras.items():
        write(d, name, text)


if __name__ == "__main__":
    main()
