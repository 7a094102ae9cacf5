#!/usr/bin/python3
"""fastapi_service.py - the reference HTTP service for bench/bench_http.sh.

FastAPI + uvicorn + PyTorch implementing tripletd's POST /v1/embed contract
({"inputs": vector or list of vectors, "normalize"?} -> {"model", "dim",
"embeddings"}) on the same safetensors model, written the way such a service
usually is: pydantic request model, torch.no_grad forward, JSON response.

    /usr/bin/python3 bench/fastapi_service.py MODEL PORT
"""
import json
import struct
import sys
from typing import List, Optional, Union

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16}
ACTS = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
        "identity": torch.nn.Identity}


def load_model(path):
    """nn.Sequential from a tripletd safetensors file ("{2i}.weight", "{2i}.bias"),
    its metadata and the optional input preprocessing (input.mean, input.scale)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        arr = np.frombuffer(raw[8 + hlen + lo:8 + hlen + hi], dtype=np.dtype(DT[t["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.tensor(arr.reshape(t["shape"]).astype(np.float32))
    idx = sorted(int(k.split(".")[0]) for k in tensors if k.endswith(".weight") and k[0].isdigit())
    layers = []
    for j, i in enumerate(idx):
        w = tensors["%d.weight" % i]
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias="%d.bias" % i in tensors)
        lin.weight.data = w
        if lin.bias is not None:
            lin.bias.data = tensors["%d.bias" % i]
        layers.append(lin)
        if j < len(idx) - 1:
            layers.append(ACTS[meta.get("activation", "relu")]())
    pre = (tensors.get("input.mean"), tensors.get("input.scale"))  # x' = (x - mean) * scale
    return torch.nn.Sequential(*layers).eval(), meta, pre


net, META, (MEAN, SCALE) = load_model(sys.argv[1])
NAME = META.get("name", "model")
IN_DIM = net[0].in_features
NORMALIZE = META.get("normalize", "false") == "true"
torch.set_num_threads(1)  # batch-1 requests: threads only add overhead
app = FastAPI()


class EmbedRequest(BaseModel):
    inputs: Union[List[float], List[List[float]]]  # the single vector first: pydantic v1 tries in order
    normalize: Optional[bool] = None
    encoding_format: Optional[str] = "float"


@app.post("/v1/embed")
async def embed(req: EmbedRequest):
    rows = req.inputs if req.inputs and isinstance(req.inputs[0], list) else [req.inputs]
    if not rows or any(len(r) != IN_DIM for r in rows):
        raise HTTPException(status_code=422, detail="inputs: expected vectors of %d numbers" % IN_DIM)
    with torch.no_grad():
        x = torch.tensor(rows, dtype=torch.float32)
        if MEAN is not None:
            x = x - MEAN
        if SCALE is not None:
            x = x * SCALE
        y = net(x)
        if NORMALIZE if req.normalize is None else req.normalize:
            y = torch.nn.functional.normalize(y, p=2, dim=1, eps=1e-12)
    return {"model": NAME, "dim": y.shape[1], "embeddings": y.tolist()}


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
