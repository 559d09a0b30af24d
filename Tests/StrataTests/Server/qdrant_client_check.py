"""The real qdrant-client 1.20.0 (REST, prefer_grpc=False) against `strata serve`.

Usage: python qdrant_client_check.py URL [API_KEY]

Creates a collection, upserts points with payload, creates payload indexes, queries with and
without filters, retrieves, scrolls, counts and deletes, and compares every answer with an exact
search computed here (numpy, float64). Prints one JSON line of what it checked; exits 1 with the
reason on the first disagreement.
"""
import json
import sys
import time
import warnings

import numpy as np
from qdrant_client import QdrantClient, models

url = sys.argv[1]
api_key = sys.argv[2] if len(sys.argv) > 2 else None
warnings.filterwarnings("error", message=".*ompatib.*")  # a version-compatibility warning is a failure
client = QdrantClient(url=url, api_key=api_key, prefer_grpc=False, timeout=60, https=False)

DIM, N = 24, 3000
rng = np.random.default_rng(7)
vectors = rng.standard_normal((N, DIM)).astype(np.float32)
colors = ["red", "green", "blue"]


def payload(i):
    p = {"color": colors[i % 3], "rank": i, "score": i / 8.0, "even": i % 2 == 0}
    if i % 5 == 0:
        p["tags"] = ["five", "t%d" % (i % 7)]
    return p


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def exact(q, ids, k):
    unit = vectors[ids].astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    qq = q.astype(np.float64) / np.linalg.norm(q)
    sims = unit @ qq
    order = sorted(range(len(ids)), key=lambda j: (-sims[j], ids[j]))[:k]
    return [(ids[j], sims[j]) for j in order], dict(zip(ids, sims))


def same(got, want, sims, what):
    if len(got) != len(want):
        fail("%s: %d results, want %d" % (what, len(got), len(want)))
    for pos, (g, (w, ws)) in enumerate(zip(got, want)):
        if g.id != w and abs(sims.get(g.id, -9) - ws) > 1e-5:
            fail("%s: position %d is %s, want %s" % (what, pos, g.id, w))
        if abs(g.score - sims[g.id]) > 1e-4:
            fail("%s: score of %s is %s, want %s" % (what, g.id, g.score, sims[g.id]))


name = "client_check_%d" % int(time.time() * 1000)
checked = []
if client.collection_exists(name):
    fail("a new name exists")
client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE), shard_number=2)
if not client.collection_exists(name):
    fail("created collection does not exist")
for start in range(0, N, 500):
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=i, vector=vectors[i].tolist(), payload=payload(i)) for i in range(start, min(N, start + 500))])
checked.append("upsert")
client.create_payload_index(name, field_name="color", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
client.create_payload_index(name, field_name="rank", field_schema=models.PayloadSchemaType.INTEGER, wait=True)
checked.append("payload_index")
info = client.get_collection(name)
if info.points_count != N:
    fail("points_count %s, want %d" % (info.points_count, N))
if info.config.params.vectors.size != DIM:
    fail("size %s" % info.config.params.vectors.size)
checked.append("get_collection")

everyone = list(range(N))
filters = {
    "none": (None, everyone),
    "color": (models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="blue"))]),
              [i for i in everyone if i % 3 == 2]),
    "rank_range": (models.Filter(must=[models.FieldCondition(key="rank", range=models.Range(gte=100, lt=900))]),
                   [i for i in everyone if 100 <= i < 900]),
    "not_even": (models.Filter(must_not=[models.FieldCondition(key="even", match=models.MatchValue(value=True))]),
                 [i for i in everyone if i % 2 == 1]),
    "tags_any": (models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["t3", "t4"]))]),
                 [i for i in everyone if i % 5 == 0 and (i % 7) in (3, 4)]),
}
for qn in range(8):
    q = rng.standard_normal(DIM).astype(np.float32)
    for label, (flt, pool) in filters.items():
        want, sims = exact(q, pool, 10)
        res = client.query_points(name, query=q.tolist(), query_filter=flt, limit=10, with_payload=True,
                                  search_params=models.SearchParams(exact=True)).points
        same(res, want, sims, "query %d %s" % (qn, label))
        for p in res:
            if p.payload != payload(p.id):
                fail("payload of %s: %s, want %s" % (p.id, p.payload, payload(p.id)))
        # the graph (not exact): most of the exact answer
        approx = client.query_points(name, query=q.tolist(), query_filter=flt, limit=10).points
        hit = len({p.id for p in approx} & {w for w, _ in want})
        if hit < 8:
            fail("approximate query %d %s found %d of the exact top 10" % (qn, label, hit))
checked.append("query")
q = rng.standard_normal(DIM).astype(np.float32)
want, sims = exact(q, everyone, 15)
page = client.query_points(name, query=q.tolist(), limit=5, offset=10, search_params=models.SearchParams(exact=True)).points
same(page, want[10:15], sims, "offset")
checked.append("offset")

got = client.retrieve(name, ids=[5, 6, 2999, 5000], with_payload=True, with_vectors=True)
if sorted(p.id for p in got) != [5, 6, 2999]:
    fail("retrieve ids %s" % [p.id for p in got])
for p in got:
    if p.payload != payload(p.id):
        fail("retrieve payload of %s" % p.id)
    v = vectors[p.id] / np.linalg.norm(vectors[p.id])
    if np.max(np.abs(np.array(p.vector) - v)) > 1e-5:
        fail("retrieve vector of %s" % p.id)
checked.append("retrieve")

seen, offset = [], None
while True:
    pts, offset = client.scroll(name, limit=700, offset=offset, with_payload=False)
    seen += [p.id for p in pts]
    if offset is None:
        break
if seen != everyone:
    fail("scroll: %d ids, first differences %s" % (len(seen), [i for i, (a, b) in enumerate(zip(seen, everyone)) if a != b][:5]))
blue, _ = client.scroll(name, scroll_filter=filters["color"][0], limit=10000)
if sorted(p.id for p in blue) != filters["color"][1]:
    fail("filtered scroll")
checked.append("scroll")

if client.count(name, exact=True).count != N:
    fail("count")
if client.count(name, count_filter=filters["rank_range"][0], exact=True).count != 800:
    fail("filtered count")
checked.append("count")

client.delete(name, points_selector=models.PointIdsList(points=[0, 1, 2]), wait=True)
client.delete(name, points_selector=models.FilterSelector(filter=filters["color"][0]), wait=True)
left = [i for i in everyone if i > 2 and i % 3 != 2]
if client.count(name, exact=True).count != len(left):
    fail("count after delete: %s, want %d" % (client.count(name, exact=True).count, len(left)))
want, sims = exact(q, left, 10)
same(client.query_points(name, query=q.tolist(), limit=10, search_params=models.SearchParams(exact=True)).points, want, sims, "after delete")
checked.append("delete")

# A new payload key after rows exist becomes a column; a conflicting type is a 400.
client.upsert(name, wait=True, points=[models.PointStruct(id=10_000, vector=vectors[7].tolist(), payload={"brand": "acme", "rank": 1})])
got = client.scroll(name, scroll_filter=models.Filter(must=[models.FieldCondition(key="brand", match=models.MatchValue(value="acme"))]))[0]
if [p.id for p in got] != [10_000]:
    fail("new key filter: %s" % [p.id for p in got])
try:
    client.upsert(name, wait=True, points=[models.PointStruct(id=10_001, vector=vectors[8].tolist(), payload={"rank": "high"})])
    fail("a string for an integer key was accepted")
except Exception as e:  # UnexpectedResponse
    if "400" not in str(e) or "rank" not in str(e):
        fail("type conflict answered %s" % e)
checked.append("schema")

client.delete_collection(name)
if client.collection_exists(name):
    fail("deleted collection exists")
checked.append("delete_collection")
print(json.dumps({"ok": True, "checked": checked}))
