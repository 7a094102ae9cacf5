"""torch_timing.py - the timing loop of the PyTorch benchmark scripts (forward_torch.py, onnx_torch.py)."""
import time


def best_rates(net, x, min_s, reps):
    """(rows per second of wall time, rows per second of the process's CPU time) of net(x), each
    the best of REPS runs that call it again and again for at least MIN_S seconds."""
    best = best_cpu = 0.0
    for _ in range(reps):
        t0, c0, calls = time.perf_counter(), time.process_time(), 0
        while True:
            net(x)
            calls += 1
            t = time.perf_counter() - t0
            if t >= min_s:
                break
        best = max(best, calls * len(x) / t)
        best_cpu = max(best_cpu, calls * len(x) / (time.process_time() - c0))
    return best, best_cpu
