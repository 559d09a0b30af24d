"""DiskANN per-query latency (p50 / p99 ms) on a prebuilt disk index, beside ../shared/bench/disk/
diskann_search.py (which prints only QPS): the same index and settings, each query timed alone, two
passes, the second reported. Run it in the DiskANN venv the harness README describes:
  ~/venv-diskann/bin/python tools/scale/diskann_p99.py INDEX_DIR DATASET_DIR W CACHE_NODES L..."""
import json, os, sys, time
try:
    idx_dir, ds, W, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    Ls = [int(x) for x in sys.argv[5:]]
    if not Ls or min([W, cache] + Ls) < 0 or not os.path.isfile(os.path.join(idx_dir, 'ann_disk.index')): raise ValueError
except (IndexError, ValueError):
    print(f"usage: {sys.argv[0]} INDEX_DIR DATASET_DIR W CACHE_NODES L... (INDEX_DIR holds a built ann_disk.index)", file=sys.stderr)
    sys.exit(2)
import numpy as np, diskannpy  # after the argument check: they load slowly and live only in the DiskANN venv
def vecs(p, dt):
    a = np.fromfile(p, dtype='<i4'); n = a[0]; return a.reshape(-1, n + 1)[:, 1:].copy().view(dt)
q = vecs(os.path.join(ds, 'query.fvecs'), '<f4')
idx = diskannpy.StaticDiskIndex(index_directory=idx_dir, num_threads=2, num_nodes_to_cache=cache, cache_mechanism=1)
pts = []
for L in Ls:
    for _ in range(2):
        lat = []
        for i in range(len(q)):
            t = time.perf_counter()
            idx.search(q[i], k_neighbors=10, complexity=L, beam_width=W)
            lat.append(time.perf_counter() - t)
    lat = np.array(lat) * 1000
    pts.append({"L": L, "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "qps": len(q) / (lat.sum() / 1000)})
print(json.dumps({"points": pts}))
