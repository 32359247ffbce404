#!/usr/bin/python3
"""Times OpenCV's TV-L1 (contrib optflow) and Farneback on the image pairs listed in a manifest.

Run with Debian's /usr/bin/python3 (package python3-opencv 4.6, which has cv2.optflow); pip's opencv-python
has no optflow module. Called by bench/optical_flow_bench.ts, which writes the manifest:

    {"repeats": 7, "out_dir": "...", "pairs": [{"name": "...", "width": W, "height": H,
                                                "prev": "a.u8", "next": "b.u8"}]}

Frames are raw uint8, row-major. For each pair and thread count it prints the median and minimum wall time
and the median CPU time of the process (all threads)
(after one warm-up call) as one JSON object on stdout, and writes the TV-L1 flow as raw float32 (H, W, 2) to
out_dir/<name>.tvl1.f32 so the caller can compare flows.
"""
import json
import statistics
import sys
import time

import cv2
import numpy as np


def timed(fn, repeats):
    fn()  # warm-up (allocations, thread pool)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "median_cpu_ms": statistics.median(cpu)}


def main():
    manifest = json.load(open(sys.argv[1]))
    repeats = int(manifest.get("repeats", 5))
    out = {"opencv": cv2.__version__, "default_threads": cv2.getNumThreads(), "results": []}
    default_threads = cv2.getNumThreads()
    for pair in manifest["pairs"]:
        h, w = pair["height"], pair["width"]
        prev = np.fromfile(pair["prev"], dtype=np.uint8).reshape(h, w)
        nxt = np.fromfile(pair["next"], dtype=np.uint8).reshape(h, w)
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        flow = tvl1.calc(prev, nxt, None)
        flow.astype(np.float32).tofile(f"{manifest['out_dir']}/{pair['name']}.tvl1.f32")
        for threads in sorted({default_threads, 1}, reverse=True):
            cv2.setNumThreads(threads)
            r = {"name": pair["name"], "width": w, "height": h, "threads": threads}
            r["tvl1"] = timed(lambda: tvl1.calc(prev, nxt, None), repeats)
            r["farneback"] = timed(
                lambda: cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0), repeats
            )
            out["results"].append(r)
        cv2.setNumThreads(default_threads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
