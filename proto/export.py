#!/usr/bin/python3
"""export.py - write a PyTorch model as a tripletd model file (safetensors MLP or ONNX graph).

The format is plain safetensors (proto/model-format.md), so
safetensors.torch.save_file(model.state_dict(), path, metadata) works too;
this exporter needs only torch (or numpy) and is what our scripts use.

    from export import save_model
    save_model(path, model.state_dict(), {"activation": "relu", "normalize": "true"})
    save_onnx("cnn.onnx", cnn, (1, 28, 28), {"normalize": "true", "name": "cnn"},
              image={"channels": 1, "height": 28, "width": 28, "mean": [0.286], "std": [0.353]})
"""
import json
import struct

_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
           "int32": "I32", "int64": "I64", "uint8": "U8"}


def _raw(t):
    """Return (dtype name, shape, little-endian bytes) of a torch tensor or numpy array."""
    if hasattr(t, "detach"):  # torch
        t = t.detach().cpu().contiguous()
        name = str(t.dtype).replace("torch.", "")
        if name == "bfloat16":
            import torch
            data = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        return _DTYPES[name], list(t.shape), data
    import numpy as np
    a = np.ascontiguousarray(t)
    return _DTYPES[str(a.dtype)], list(a.shape), a.astype(a.dtype.newbyteorder("<")).tobytes()


def save_file(tensors, path, metadata=None):
    """Write a dict name -> tensor as safetensors, tensors packed in the given order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        dtype, shape, data = _raw(t)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # align the data section to 8 bytes, as safetensors does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_model(path, state_dict, metadata=None):
    """Save an nn.Sequential state_dict ("{i}.weight" [out,in], "{i}.bias") with tripletd metadata."""
    save_file(dict(state_dict), path, metadata)


def save_onnx(path, model, input_shape, metadata=None, image=None, opset=17, dynamic_batch=True):
    """Export a torch module (eval mode) with torch.onnx.export and store tripletd's metadata keys
    (name, description, normalize, metric, loss, margin; image as a JSON string) in metadata_props.
    input_shape is one sample's shape (no batch dim); the batch dim is symbolic unless
    dynamic_batch is False (then the file has batch 1). Needs torch and onnx (python3-onnx)."""
    import io
    import onnx
    import torch
    model.eval()
    buf = io.BytesIO()
    dummy = torch.zeros(2 if dynamic_batch else 1, *input_shape)
    torch.onnx.export(model, dummy, buf, opset_version=opset, input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}} if dynamic_batch else None)
    m = onnx.load_from_string(buf.getvalue())
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    if image is not None:
        meta["image"] = json.dumps(image, separators=(",", ":"))
    del m.metadata_props[:]
    for k, v in meta.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, path)


if __name__ == "__main__":
    import sys
    print(__doc__, file=sys.stderr)
    sys.exit(2)
