"""numpy baselines for `npm run bench:fl-aggregate` (run by bench/fl-aggregate.ts, one
process per measurement so that each peak RSS is its own).

  flower   Flower's FedAvg formula over a list of N (update, num_examples) pairs, as Flower
           holds them:   np.sum([w * n for w, n in results], axis=0) / total
  stream   the same average folded one update at a time into a float64 accumulator,
           acc += n * w — what a streaming numpy coordinator would do.

Peak RSS is measured above the process with the global model and the N updates loaded:
what the aggregation itself adds.

Updates are the same deterministic vectors as the TypeScript side generates, so checksums
(the sum of the aggregated model's coordinates) compare across implementations; the
reference checksum is that of the exact average (float64 products and sums), rounded to
float32. Both numpy formulas round each product n·w to float32 first (NEP 50: a Python int
times a float32 array is float32), so their checksums differ from it in the 4th digit.
Prints one JSON object.
"""
import argparse
import ctypes
import gc
import json
import time

import numpy as np

MIB = 1024 * 1024


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def global_model(size):
    i = np.arange(size, dtype=np.uint64)
    return (((i * np.uint64(2654435761)) % np.uint64(2**32)).astype(np.float64) / 2**32 - 0.5).astype(
        np.float32
    )


def update(size, k, g):
    i = np.arange(size, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64((k + 1) * 40503)) % np.uint64(2**32)
    return (g.astype(np.float64) + 0.01 * (h.astype(np.float64) / 2**32 - 0.5)).astype(np.float32)


def examples(k):
    return 1 + (k * 7919) % 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["flower", "stream"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--params", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    g = global_model(a.params)

    # The N updates exist before the measurement starts (Flower's aggregate takes them as a
    # list), so generating them costs neither time nor peak memory in either variant.
    results = [(update(a.params, k, g), examples(k)) for k in range(a.n)]
    # Hand the generators' freed temporaries back to the OS, or the aggregation would reuse
    # those pages unseen and its peak would read low.
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    idle = status_kb("VmRSS")
    reset_peak()
    times = []
    cpu = []
    for _ in range(a.repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        total = sum(n for _, n in results)
        if a.impl == "flower":
            model = np.sum([w * n for w, n in results], axis=0) / total
        else:
            acc = np.zeros(a.params, dtype=np.float64)
            for w, n in results:
                acc += n * w
            model = (acc / total).astype(np.float32)
            del acc
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if len(times) < a.repeat:
            del model
    median = sorted(range(len(times)), key=lambda i: times[i])[len(times) // 2]
    seconds = times[median]

    peak = status_kb("VmHWM")
    # The exact average (products and sums in float64), untimed, to check every result by.
    exact = np.zeros(a.params, dtype=np.float64)
    for w, n in results:
        exact += np.float64(n) * w
    reference = float(np.sum((exact / total).astype(np.float32), dtype=np.float64))
    model_bytes = a.params * 4
    print(
        json.dumps(
            {
                "impl": "numpy-" + a.impl,
                "n": a.n,
                "params": a.params,
                "seconds": seconds,
                "cpuSeconds": cpu[median],
                "gbPerSec": a.n * model_bytes / seconds / 1e9,
                "idleRssMiB": idle / 1024,
                "peakAboveIdleMiB": (peak - idle) / 1024,
                "peakAboveIdleModels": (peak - idle) * 1024 / model_bytes,
                "checksum": float(np.sum(model, dtype=np.float64)),
                "referenceChecksum": reference,
                "dtype": str(model.dtype),
                "numpy": np.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
