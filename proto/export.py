#!/usr/bin/python3
"""export.py - write a PyTorch nn.Sequential MLP as a tripletd model file.

The format is plain safetensors (proto/model-format.md), so
safetensors.torch.save_file(model.state_dict(), path, metadata) works too;
this exporter needs only torch (or numpy) and is what our scripts use.

    from export import save_model
    save_model(path, model.state_dict(), {"activation": "relu", "normalize": "true"})
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


if __name__ == "__main__":
    import sys
    print(__doc__, file=sys.stderr)
    sys.exit(2)
