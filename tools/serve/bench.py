"""Figures of `strata serve` on a dataset directory (base.fvecs, query.fvecs, groundtruth.ivecs).

  python bench.py ingest --url URL --dataset D [--collection C] [--batch B] [--shards N]
      upserts every base vector (id = row) with wait=true in batches; prints rows/s and the batch
      latencies; then waits until every row is in a flushed segment (segments_count > 0).
  python bench.py query --url URL --dataset D [--collection C] [--ef L] [--threads T] [--client raw|qdrant]
      runs every query (limit 10, params.hnsw_ef = L) from T threads over HTTP, either with a plain
      keep-alive HTTP connection per thread (raw: the server's cost) or through qdrant-client
      (qdrant: what a Python user sees); prints QPS, p50/p99 latency and recall@10.
Both print one JSON line.
"""
import argparse
import http.client
import json
import struct
import threading
import time
import urllib.parse

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    rows = raw.reshape(-1, d + 1)[:, 1:]
    return rows.view(dtype) if dtype == np.float32 else rows


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def call(c, method, path, body, api_key=None):
    headers = {"content-type": "application/json"}
    if api_key:
        headers["api-key"] = api_key
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:300]))
    return json.loads(data)["result"]


def ingest(a):
    base = read_vecs(a.dataset + "/base.fvecs", np.float32)
    c = conn(a.url)
    existing = call(c, "GET", "/collections", None, a.api_key)["collections"]
    if any(x["name"] == a.collection for x in existing):
        call(c, "DELETE", "/collections/" + a.collection, None, a.api_key)
    call(c, "PUT", "/collections/" + a.collection,
         {"vectors": {"size": int(base.shape[1]), "distance": "Cosine"}, "shard_number": a.shards}, a.api_key)
    lat = []
    t0 = time.perf_counter()
    for start in range(0, len(base), a.batch):
        rows = base[start:start + a.batch]
        body = {"points": [{"id": start + i, "vector": [float(x) for x in v], "payload": {"bucket": (start + i) % 16}}
                           for i, v in enumerate(rows)]}
        s = time.perf_counter()
        call(c, "PUT", "/collections/%s/points?wait=true" % a.collection, body, a.api_key)
        lat.append(time.perf_counter() - s)
    elapsed = time.perf_counter() - t0
    waited = time.perf_counter()
    while call(c, "GET", "/collections/" + a.collection, None, a.api_key)["segments_count"] == 0:
        time.sleep(0.5)
    lat_ms = np.array(lat) * 1000
    print(json.dumps({"phase": "ingest", "rows": int(len(base)), "batch": a.batch, "seconds": round(elapsed, 2),
                      "rows_per_second": round(len(base) / elapsed, 1), "batch_p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
                      "batch_p99_ms": round(float(np.percentile(lat_ms, 99)), 2), "batch_max_ms": round(float(lat_ms.max()), 2),
                      "seconds_until_sealed_after_last_write": round(time.perf_counter() - waited, 2)}))


def query(a):
    queries = read_vecs(a.dataset + "/query.fvecs", np.float32)
    gt = read_vecs(a.dataset + "/groundtruth.ivecs", np.int32)
    n = len(queries) if a.limit is None else min(a.limit, len(queries))
    results = [None] * n
    lat = [0.0] * n
    next_q = [0]
    lock = threading.Lock()

    def worker():
        if a.client == "qdrant":
            from qdrant_client import QdrantClient, models
            qc = QdrantClient(url=a.url, api_key=a.api_key, prefer_grpc=False, https=False, timeout=600)
        else:
            c = conn(a.url)
        while True:
            with lock:
                i = next_q[0]
                next_q[0] += 1
            if i >= n:
                return
            v = [float(x) for x in queries[i]]
            s = time.perf_counter()
            if a.client == "qdrant":
                pts = qc.query_points(a.collection, query=v, limit=10, search_params=models.SearchParams(hnsw_ef=a.ef)).points
                ids = [p.id for p in pts]
            else:
                res = call(c, "POST", "/collections/%s/points/query" % a.collection,
                           {"query": v, "limit": 10, "params": {"hnsw_ef": a.ef}}, a.api_key)
                ids = [p["id"] for p in res["points"]]
            lat[i] = time.perf_counter() - s
            results[i] = ids

    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    recall = np.mean([len(set(results[i]) & set(gt[i][:10].tolist())) / 10 for i in range(n)])
    lat_ms = np.array(lat) * 1000
    print(json.dumps({"phase": "query", "client": a.client, "threads": a.threads, "ef": a.ef, "queries": n,
                      "qps": round(n / elapsed, 1), "p50_ms": round(float(np.percentile(lat_ms, 50)), 3),
                      "p99_ms": round(float(np.percentile(lat_ms, 99)), 3), "recall_at_10": round(float(recall), 4)}))


ap = argparse.ArgumentParser()
ap.add_argument("phase", choices=["ingest", "query"])
ap.add_argument("--url", required=True)
ap.add_argument("--dataset", required=True)
ap.add_argument("--collection", default="bench")
ap.add_argument("--api-key", default=None)
ap.add_argument("--batch", type=int, default=1000)
ap.add_argument("--shards", type=int, default=1)
ap.add_argument("--ef", type=int, default=64)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--limit", type=int, default=None)
ap.add_argument("--client", choices=["raw", "qdrant"], default="raw")
a = ap.parse_args()
ingest(a) if a.phase == "ingest" else query(a)
