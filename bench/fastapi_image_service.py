#!/usr/bin/python3
"""fastapi_image_service.py - the reference image service for bench/bench_image_http.sh.

FastAPI + uvicorn + PIL + PyTorch implementing tripletd's raw-image POST /v1/embed (a PNG or
JPEG body -> {"model", "dim", "embeddings"}) on the model bench/onnx_torch.py made (the same
weights as the .onnx file tripletd serves), written the way such a service usually is: PIL
decodes and converts, torchvision's ToTensor + Normalize, torch.inference_mode forward, JSON.

    /usr/bin/python3 bench/fastapi_image_service.py DIR NAME PORT
"""
import io
import os
import sys

import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import IMAGE, MODELS  # noqa: E402

DIR, NAME = sys.argv[1], sys.argv[2]
make, (C, H, W) = MODELS[NAME]
net = make()
net.load_state_dict(torch.load(os.path.join(DIR, NAME + ".pt")))
net.eval()
torch.set_num_threads(1)  # one image per request: threads only add overhead
PREP = transforms.Compose([transforms.ToTensor(), transforms.Normalize(*IMAGE[NAME])])
app = FastAPI()


@app.post("/v1/embed")
async def embed(request: Request):
    body = await request.body()
    try:
        img = Image.open(io.BytesIO(body))
        img = img.convert("L" if C == 1 else "RGB")
    except Exception as e:
        raise HTTPException(status_code=422, detail="image: %s" % e)
    if img.size != (W, H):
        img = img.resize((W, H), Image.BILINEAR)
    with torch.inference_mode():
        y = net(PREP(img).unsqueeze(0))
    return {"model": NAME, "dim": y.shape[1], "embeddings": y.tolist()}


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
