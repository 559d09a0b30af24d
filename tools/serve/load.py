"""A bounded load on `strata serve` from a second process: qdrant-client (REST) in several threads.

Usage: python load.py --url URL[,URL...] [--seconds S] [--readers R] [--writers W] [--dim D]
                      [--collection NAME] [--api-key K] [--shards N] [--json]

Creates the collection (unless it exists), then for S seconds W writer threads upsert batches of
points with wait=true (each batch retried until acknowledged or 60 s pass) and R reader threads run
queries (half of them filtered), each thread on the nodes in turn. At the end it checks that every
acknowledged point is there exactly once (scroll) and prints the latency of each operation
(p50, p99, max, ms), the counts and the errors, as text or one JSON line (--json). Exit 1 when a
request failed, a write was lost or a point is there twice.
"""
import argparse
import json
import random
import threading
import time

import numpy as np
from qdrant_client import QdrantClient, models

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--seconds", type=float, default=10)
ap.add_argument("--readers", type=int, default=4)
ap.add_argument("--writers", type=int, default=2)
ap.add_argument("--dim", type=int, default=32)
ap.add_argument("--batch", type=int, default=50)
ap.add_argument("--collection", default="load")
ap.add_argument("--api-key", default=None)
ap.add_argument("--shards", type=int, default=2)
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
urls = args.url.split(",")
clients = [QdrantClient(url=u, api_key=args.api_key, prefer_grpc=False, timeout=90, https=False) for u in urls]

if not clients[0].collection_exists(args.collection):
    clients[0].create_collection(args.collection, vectors_config=models.VectorParams(size=args.dim, distance=models.Distance.COSINE),
                                 shard_number=args.shards)

lock = threading.Lock()
latency = {"upsert": [], "query": [], "filtered_query": []}
errors = []
acknowledged = set()
next_id = [0]
stop = time.time() + args.seconds


def vec(rng):
    return rng.standard_normal(args.dim).astype(np.float32).tolist()


def writer(n):
    rng = np.random.default_rng(1000 + n)
    k = n
    while time.time() < stop:
        with lock:
            start = next_id[0]
            next_id[0] += args.batch
        ids = list(range(start, start + args.batch))
        points = [models.PointStruct(id=i, vector=vec(rng), payload={"group": i % 10, "tag": "t%d" % (i % 3)}) for i in ids]
        deadline = time.time() + 60
        while True:
            c = clients[k % len(clients)]
            k += 1
            t0 = time.perf_counter()
            try:
                c.upsert(args.collection, points=points, wait=True)
                with lock:
                    latency["upsert"].append(time.perf_counter() - t0)
                    acknowledged.update(ids)
                break
            except Exception as e:  # retried: a write is acknowledged or reported
                if time.time() > deadline:
                    with lock:
                        errors.append("upsert %d..: %s" % (start, str(e)[:200]))
                    break
                time.sleep(0.2)


def reader(n):
    rng = np.random.default_rng(2000 + n)
    k = n
    while time.time() < stop:
        c = clients[k % len(clients)]
        k += 1
        filtered = k % 2 == 0
        flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=int(rng.integers(10))))]) if filtered else None
        t0 = time.perf_counter()
        try:
            c.query_points(args.collection, query=vec(rng), query_filter=flt, limit=10)
            with lock:
                latency["filtered_query" if filtered else "query"].append(time.perf_counter() - t0)
        except Exception as e:
            if "doesn't exist" in str(e) or "Not found" in str(e):
                time.sleep(0.05)  # before the first write created a payload key, filters still match nothing
                continue
            with lock:
                errors.append("query: %s" % str(e)[:200])


threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
threads += [threading.Thread(target=reader, args=(i,)) for i in range(args.readers)]
t_start = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - t_start

seen, offset = [], None
while True:
    pts, offset = clients[-1].scroll(args.collection, limit=5000, offset=offset, with_payload=False)
    seen += [p.id for p in pts]
    if offset is None:
        break
lost = sorted(acknowledged - set(seen))
twice = len(seen) - len(set(seen))


def pct(xs, q):
    return round(float(np.percentile(np.array(xs) * 1000, q)), 2) if xs else None


report = {"seconds": round(elapsed, 1), "nodes": len(urls), "readers": args.readers, "writers": args.writers,
          "acknowledged_points": len(acknowledged), "points_found": len(seen), "lost": len(lost), "duplicates": twice,
          "errors": len(errors), "first_errors": errors[:5]}
for op, xs in latency.items():
    report[op] = {"count": len(xs), "per_second": round(len(xs) / max(elapsed, 1e-9), 1), "p50_ms": pct(xs, 50), "p99_ms": pct(xs, 99),
                  "max_ms": pct(xs, 100)}
if args.json:
    print(json.dumps(report))
else:
    for k, v in report.items():
        print("%s: %s" % (k, v))
ok = not errors and not lost and twice == 0
raise SystemExit(0 if ok else 1)
