"""Sparse vectors and dense+sparse hybrid search through the real qdrant-client 1.20.0 (REST,
prefer_grpc=False) against `strata serve`.

Usage: python qdrant_hybrid_check.py URL [API_KEY]
       python qdrant_hybrid_check.py --self-test

Creates two collections with one dense and one sparse vector ("text"): the dense one unnamed
(Cosine) in the first, named "dense" (Dot) in the second. Upserts 2,000 deterministic points (about
9% without a sparse vector), then compares dense, sparse and RRF-fused (prefetch) queries, with and
without filters, and `points/search` with a NamedSparseVector, with an exact search computed here
(float64 over the float32 inputs). Then overwrites a sparse vector, removes one (an upsert without
it), adds one, deletes points, and compares again. Retrieve checks the dense vector only (Strata
does not return sparse vectors). Prints one JSON line of what it checked; exits 1
with the reason on the first disagreement.

--self-test needs no server: it checks the brute-force and RRF helpers on small hand-made cases
and then runs the whole check against qdrant-client's own in-memory mode (QdrantClient(":memory:"),
which has no `points/search`; that step is skipped there).
"""
import json
import sys
import time
import warnings

import numpy as np
from qdrant_client import QdrantClient, models

DIM, N, VOCAB = 16, 2000, 500
BATCH_FROM = 1800  # ids from here on are upserted in the columnar "batch" form, all with sparse vectors
RRF_K = 2  # Qdrant's default ranking constant
TOL = 1e-5  # scores this close (relative) may come in either order
SPARSE = "text"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def close(a, b, tol=TOL):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------- the exact search (no server)

class Model:
    """What a collection holds, as this test expects it."""

    def __init__(self, metric, dense, sparse):
        self.metric = metric  # "cosine" or "dot"
        self.dense = {i: dense[i] for i in range(len(dense))}  # id -> float32 vector
        self.sparse = {i: dict(zip(*s)) for i, s in sparse.items()}  # id -> {index: value}
        self.payload = {i: {"group": i % 5} for i in range(len(dense))}

    def ids(self, pred=None):
        return sorted(i for i in self.dense if pred is None or pred(self.payload[i]))

    def dense_scores(self, q, pred=None):
        ids = self.ids(pred)
        m = np.array([self.dense[i] for i in ids], dtype=np.float64)
        qq = np.asarray(q, dtype=np.float64)
        if self.metric == "cosine":
            m /= np.linalg.norm(m, axis=1, keepdims=True)
            qq = qq / np.linalg.norm(qq)
        return dict(zip(ids, (m @ qq).tolist()))

    def sparse_scores(self, q_indices, q_values, pred=None):
        """Dot product over shared indices; points sharing no index (or without a sparse vector) are absent."""
        q = {}
        for j, v in zip(q_indices, q_values):
            q[j] = q.get(j, 0.0) + float(v)
        out = {}
        for i in self.ids(pred):
            s = self.sparse.get(i)
            if s is None:
                continue
            shared = q.keys() & s.keys()
            if shared:
                out[i] = sum(q[j] * float(s[j]) for j in sorted(shared))
        return out


def top(scores, k):
    """The k best (id, score): larger score first, ties by id ascending."""
    return sorted(scores.items(), key=lambda t: (-t[1], t[0]))[:k]


def rrf(lists, limit, k=RRF_K):
    """Qdrant's RRF of id lists (best first): 1 / (p + k) for 0-based position p, summed over the
    lists; larger first, equal scores in order of first appearance (list 0 first)."""
    score = {}
    for lst in lists:
        for p, i in enumerate(lst):
            s = 1.0 / ((p + 1.0) / 1.0 + k - 1.0)  # the reference's formula with weight 1
            score[i] = score[i] + s if i in score else s
    return sorted(score.items(), key=lambda t: t[1], reverse=True)[:limit]  # stable: first appearance wins ties


def tie_free(ranked, depth):
    """Whether the first depth+1 scores of a full ranking have no two neighbours within 2 TOL,
    so the first `depth` ids are the same whatever order near-ties take."""
    s = [v for _, v in ranked[:depth + 1]]
    return all(not close(a, b, 2 * TOL) for a, b in zip(s, s[1:]))


def same(got, want, scores, what):
    """got: [(id, score)] from the server; want: [(id, score)] exact. Ids must agree position by
    position unless the two scores are within TOL; every score must be right."""
    if len(got) != len(want):
        fail("%s: %d results %s, want %d %s" % (what, len(got), [g for g, _ in got][:12], len(want), [w for w, _ in want][:12]))
    for pos, ((g, gs), (w, ws)) in enumerate(zip(got, want)):
        if g not in scores:
            fail("%s: position %d is %s, which should not match at all (want %s)" % (what, pos, g, w))
        if g != w and not close(scores[g], ws):
            fail("%s: position %d is %s (exact score %r), want %s (%r)" % (what, pos, g, scores[g], w, ws))
        if not close(gs, scores[g], 1e-4):
            fail("%s: score of %s is %r, want %r" % (what, g, gs, scores[g]))
    if len({g for g, _ in got}) != len(got):
        fail("%s: repeated ids %s" % (what, [g for g, _ in got]))


def self_test_helpers():
    m = Model("dot", np.eye(4, dtype=np.float32), {0: ([1, 2], [0.5, 1.0]), 1: ([2, 3], [1.0, 1.0]), 3: ([9], [4.0])})
    got = m.sparse_scores([2, 3], [1.0, 2.0])
    assert got == {0: 1.0, 1: 3.0}, got  # 2 has no sparse vector, 3 shares nothing
    assert top({5: 1.0, 3: 1.0, 9: 2.0}, 2) == [(9, 2.0), (3, 1.0)]  # ties by id
    assert m.sparse_scores([7], [1.0]) == {}
    assert m.sparse_scores([2, 2], [0.5, 0.5]) == {0: 1.0, 1: 1.0}  # a repeated query index sums
    assert m.sparse_scores([1, 2], [1.0, 1.0], pred=lambda p: p["group"] == 1) == {1: 1.0}
    c = Model("cosine", np.array([[3, 4], [1, 0]], dtype=np.float32), {})
    d = c.dense_scores([2.0, 0.0])
    assert close(d[0], 0.6) and close(d[1], 1.0), d
    # RRF, k = 2: a at 0 in both: 1/2 + 1/2; b at 1 and 2: 1/3 + 1/4; d at 1 in list 1: 1/3;
    # c at 2 in list 0: 1/4.
    f = rrf([["a", "b", "c"], ["a", "d", "b"]], 10)
    assert [i for i, _ in f] == ["a", "b", "d", "c"], f
    assert f[0][1] == 1.0 and close(f[1][1], 1 / 3 + 1 / 4) and close(f[2][1], 1 / 3) and close(f[3][1], 1 / 4), f
    # b (list 0) and d (list 1) both at position 1 tie at 1/3: b first (first appearance).
    f = rrf([["a", "b", "c"], ["a", "d"]], 10)
    assert [i for i, _ in f] == ["a", "b", "d", "c"] and f[1][1] == f[2][1], f
    f = rrf([["a", "b"], ["d", "a"]], 10)
    assert [i for i, _ in f] == ["a", "d", "b"], f  # a: 1/2 + 1/3; d: 1/2 > b: 1/3
    f = rrf([["x", "y"], ["y", "z"], []], 2)
    assert [i for i, _ in f] == ["y", "x"], f  # y: 1/3 + 1/2
    assert rrf([[], []], 5) == []
    # equal sums reached in a different order are equal floats
    f = rrf([["p", "q"], ["q", "p"]], 5)
    assert f[0][1] == f[1][1] and [i for i, _ in f] == ["p", "q"], f
    assert tie_free([(1, 3.0), (2, 2.0), (3, 1.0)], 2) and not tie_free([(1, 3.0), (2, 2.0), (3, 2.0 + 1e-9)], 2)
    assert tie_free([(1, 3.0), (2, 2.0), (3, 2.0)], 1)


# ---------------------------------------------------------------- the data

def make_data(seed=11):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((N, DIM)).astype(np.float32)
    sparse = {}
    for i in range(N):
        nnz = int(rng.integers(1, 21))
        idx = rng.choice(VOCAB, nnz, replace=False).tolist()  # unsorted, as a client may send them
        val = rng.uniform(0.05, 1.0, nnz).astype(np.float32).tolist()  # positive: any shared index scores > 0
        if i % 11 == 7 and i < BATCH_FROM:
            continue  # no sparse vector
        sparse[i] = (idx, val)
    return dense, sparse


def sparse_query(rng, nnz):
    idx = rng.choice(VOCAB, nnz, replace=False).tolist()
    return idx, rng.uniform(0.1, 2.0, nnz).astype(np.float32).tolist()


# ---------------------------------------------------------------- the check

def run(client, local):
    dense_all, sparse_all = make_data()
    rng = np.random.default_rng(23)
    checked = []
    stamp = int(time.time() * 1000)
    # (name, dense vector name or None for the unnamed one, model)
    setups = [
        ("hybrid_unnamed_%d" % stamp, None, Model("cosine", dense_all, sparse_all)),
        ("hybrid_named_%d" % stamp, "dense", Model("dot", dense_all, sparse_all)),
    ]

    def vec(dn, i, m):
        v = {dn or "": m.dense[i].tolist()}
        if i in m.sparse:
            s = m.sparse[i]
            v[SPARSE] = models.SparseVector(indices=list(s.keys()), values=list(s.values()))
        return v

    for name, dn, m in setups:
        if client.collection_exists(name):
            fail("a new name exists")
        params = models.VectorParams(size=DIM, distance=models.Distance.COSINE if m.metric == "cosine" else models.Distance.DOT)
        client.create_collection(name, vectors_config={dn: params} if dn else params,
                                 sparse_vectors_config={SPARSE: models.SparseVectorParams()}, shard_number=2)
        for start in range(0, BATCH_FROM, 250):
            client.upsert(name, wait=True, points=[models.PointStruct(id=i, vector=vec(dn, i, m), payload=m.payload[i])
                                                   for i in range(start, min(BATCH_FROM, start + 250))])
        rest = range(BATCH_FROM, N)
        client.upsert(name, wait=True, points=models.Batch(
            ids=list(rest),
            vectors={dn or "": [m.dense[i].tolist() for i in rest],
                     SPARSE: [models.SparseVector(indices=list(m.sparse[i].keys()), values=list(m.sparse[i].values())) for i in rest]},
            payloads=[m.payload[i] for i in rest]))
    checked.append("upsert")

    for name, dn, m in setups:
        info = client.get_collection(name)
        if info.points_count != N:
            fail("%s: points_count %s, want %d" % (name, info.points_count, N))
        vectors = info.config.params.vectors
        if dn is None:
            if not isinstance(vectors, models.VectorParams) or vectors.size != DIM or vectors.distance != models.Distance.COSINE:
                fail("%s: vectors %s" % (name, vectors))
        elif not isinstance(vectors, dict) or list(vectors) != [dn] or vectors[dn].size != DIM or vectors[dn].distance != models.Distance.DOT:
            fail("%s: vectors %s" % (name, vectors))
        sv = info.config.params.sparse_vectors
        if not isinstance(sv, dict) or list(sv) != [SPARSE]:
            fail("%s: sparse_vectors %s" % (name, sv))
        if client.count(name, exact=True).count != N:
            fail("%s: count" % name)
    checked.append("get_collection")

    filters = {
        "none": (None, None),
        "group1": (models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))]),
                   lambda p: p["group"] == 1),
        "not_group_0_2": (models.Filter(must_not=[models.FieldCondition(key="group", match=models.MatchAny(any=[0, 2]))]),
                          lambda p: p["group"] not in (0, 2)),
    }

    def pairs(points):
        return [(p.id, p.score) for p in points]

    def check_dense(name, dn, m, q, label, k=10, flt="none"):
        f, pred = filters[flt]
        scores = m.dense_scores(q, pred)
        got = client.query_points(name, query=q, using=dn, query_filter=f, limit=k,
                                  search_params=models.SearchParams(exact=True)).points
        same(pairs(got), top(scores, k), scores, "%s dense %s %s" % (name, label, flt))

    def check_sparse(name, m, q, label, k=10, flt="none"):
        f, pred = filters[flt]
        scores = m.sparse_scores(*q, pred)
        got = client.query_points(name, query=models.SparseVector(indices=q[0], values=q[1]), using=SPARSE,
                                  query_filter=f, limit=k, with_payload=True).points
        same(pairs(got), top(scores, k), scores, "%s sparse %s %s" % (name, label, flt))
        for p in got:
            if p.id not in m.sparse:
                fail("%s sparse %s: %s has no sparse vector" % (name, label, p.id))
            if p.payload != m.payload[p.id]:
                fail("%s sparse %s: payload of %s is %s" % (name, label, p.id, p.payload))
        return got

    def hybrid_query(m, depth, flt, dense_flt, tries=200):
        """A dense and a sparse query whose exact prefetch lists have no near-ties, so the fused
        order is determined exactly."""
        pred = filters[flt][1]
        dpred = filters[dense_flt][1]
        both = (lambda p: (pred is None or pred(p)) and (dpred is None or dpred(p)))
        for _ in range(tries):
            qd = rng.standard_normal(DIM).astype(np.float32).tolist()
            qs = sparse_query(rng, int(rng.integers(1, 9)))
            dl = top(m.dense_scores(qd, both), depth + 1)
            sl = top(m.sparse_scores(*qs, pred), depth + 1)
            if tie_free(dl, depth) and tie_free(sl, depth):
                return qd, qs, [i for i, _ in dl[:depth]], [i for i, _ in sl[:depth]]
        fail("no tie-free hybrid query in %d tries" % tries)

    def check_hybrid(name, dn, m, label, flt="none", dense_flt="none", depth=20, k=10):
        qd, qs, dl, sl = hybrid_query(m, depth, flt, dense_flt)
        want = rrf([dl, sl], k)
        got = client.query_points(name, prefetch=[
            models.Prefetch(query=qd, using=dn, limit=depth, filter=filters[dense_flt][0], params=models.SearchParams(exact=True)),
            models.Prefetch(query=models.SparseVector(indices=qs[0], values=qs[1]), using=SPARSE, limit=depth),
        ], query=models.FusionQuery(fusion=models.Fusion.RRF), query_filter=filters[flt][0], limit=k, with_payload=True).points
        if [p.id for p in got] != [i for i, _ in want]:
            fail("%s hybrid %s %s/%s: ids %s, want %s (dense prefetch %s, sparse prefetch %s)"
                 % (name, label, flt, dense_flt, [p.id for p in got], [i for i, _ in want], dl, sl))
        for p, (_, ws) in zip(got, want):
            if not close(p.score, ws, 1e-6):
                fail("%s hybrid %s: fused score of %s is %r, want %r" % (name, label, p.id, p.score, ws))
            if p.payload != m.payload[p.id]:
                fail("%s hybrid %s: payload of %s is %s" % (name, label, p.id, p.payload))

    def check_all(label):
        for name, dn, m in setups:
            for qn in range(4):
                q = rng.standard_normal(DIM).astype(np.float32).tolist()
                for flt in filters:
                    check_dense(name, dn, m, q, "%s/%d" % (label, qn), flt=flt)
            for qn in range(6):
                q = sparse_query(rng, int(rng.integers(1, 13)))
                for flt in filters:
                    check_sparse(name, m, q, "%s/%d" % (label, qn), flt=flt)
            # one index: every point holding it, fewer than the limit
            j = int(rng.integers(0, VOCAB))
            holders = sum(1 for s in m.sparse.values() if j in s)
            got = check_sparse(name, m, ([j], [1.5]), "%s/single %d" % (label, j), k=holders + 20)
            if len(got) != holders:
                fail("%s: %d points hold index %d, the query found %d" % (name, holders, j, len(got)))
            check_sparse(name, m, ([VOCAB + 1000], [1.0]), "%s/unused index" % label)
            for qn in range(4):
                check_hybrid(name, dn, m, "%s/%d" % (label, qn))
            for qn in range(3):
                check_hybrid(name, dn, m, "%s/filtered %d" % (label, qn), flt="group1")
            for qn in range(2):
                check_hybrid(name, dn, m, "%s/prefetch filter %d" % (label, qn), dense_flt="not_group_0_2")
                check_hybrid(name, dn, m, "%s/both filters %d" % (label, qn), flt="group1", dense_flt="not_group_0_2")
            check_hybrid(name, dn, m, "%s/deep" % label, depth=60, k=40)

    check_all("initial")
    checked += ["query_dense", "query_sparse", "query_hybrid_rrf"]

    # points/search (the legacy API, gone from qdrant-client 1.20's methods): sent through the
    # client's own HTTP session, so the API key and base URL are the client's.
    if local:
        checked.append("search_named_sparse: skipped in local mode")
    else:
        def search(name, body):
            r = client.http.client.request(type_=dict, method="POST", url="/collections/{collection_name}/points/search",
                                               path_params={"collection_name": name}, json=body)
            return [(p["id"], p["score"]) for p in r["result"]]

        for name, dn, m in setups:
            for qn in range(4):
                qs = sparse_query(rng, int(rng.integers(1, 9)))
                for flt in ("none", "group1"):
                    body = {"vector": {"name": SPARSE, "vector": {"indices": qs[0], "values": qs[1]}}, "limit": 10}
                    if filters[flt][0] is not None:
                        body["filter"] = filters[flt][0].model_dump(exclude_none=True)
                    scores = m.sparse_scores(*qs, filters[flt][1])
                    same(search(name, body), top(scores, 10), scores, "%s search sparse %d %s" % (name, qn, flt))
                qd = rng.standard_normal(DIM).astype(np.float32).tolist()
                body = {"vector": {"name": dn, "vector": qd} if dn else qd, "limit": 10, "params": {"exact": True}}
                scores = m.dense_scores(qd)
                same(search(name, body), top(scores, 10), scores, "%s search dense %d" % (name, qn))
        checked.append("search_named_sparse")

    # retrieve: Strata returns the dense vector (named as the collection names it); sparse
    # vectors are stored and searched but not returned (docs/SERVE.md S.7)
    for name, dn, m in setups:
        ids = [0, 7, 18, 29, 1999]
        for p in client.retrieve(name, ids=ids, with_vectors=True):
            v = p.vector if isinstance(p.vector, dict) else {"": p.vector}
            if set(v) - {SPARSE} != {dn or ""}:  # (Qdrant itself, as in --self-test, returns the sparse part too)
                fail("%s retrieve %s: vector %s, want only the dense vector %r" % (name, p.id, p.vector, dn or ""))
            want = np.array(m.dense[p.id], dtype=np.float64)
            if m.metric == "cosine":  # stored normalised, as Qdrant stores Cosine vectors
                want = want / np.linalg.norm(want)
            if len(v[dn or ""]) != DIM or any(not close(a, b, 1e-5) for a, b in zip(v[dn or ""], want)):
                fail("%s retrieve %s: dense vector %s, want %s" % (name, p.id, v[dn or ""][:4], want[:4]))
    checked.append("retrieve_dense")

    # overwrite a sparse vector, remove one (an upsert without it), give one to a point without
    for name, dn, m in setups:
        changed, removed, added = 3, 4, 7
        if removed not in m.sparse or changed not in m.sparse or added in m.sparse:
            fail("data: expected sparse vectors on 3 and 4, none on 7")
        old_changed, old_removed = dict(m.sparse[changed]), dict(m.sparse[removed])
        m.sparse[changed] = {VOCAB + 1: 1.0, VOCAB + 2: 0.25}
        del m.sparse[removed]
        m.sparse[added] = {VOCAB + 2: 2.0, 11: 0.5}
        client.upsert(name, wait=True, points=[models.PointStruct(id=i, vector=vec(dn, i, m), payload=m.payload[i])
                                               for i in (changed, removed, added)])
        for label, q in [("old of changed", (list(old_changed), [1.0] * len(old_changed))),
                         ("old of removed", (list(old_removed), [1.0] * len(old_removed))),
                         ("new", ([VOCAB + 1, VOCAB + 2, 11], [1.0, 1.0, 1.0]))]:
            got = check_sparse(name, m, q, "after overwrite " + label, k=N)
            ids = {p.id for p in got}
            if removed in ids or (label == "old of changed" and changed in ids):
                fail("%s after overwrite %s: stale sparse vector matched: %s" % (name, label, sorted(ids)))
        got = [p.id for p in check_sparse(name, m, ([VOCAB + 1, VOCAB + 2], [1.0, 1.0]), "after overwrite only new")]
        if got != [added, changed]:
            fail("%s after overwrite: %s, want [%d, %d]" % (name, got, added, changed))
        # the point that lost its sparse vector keeps its dense one
        check_dense(name, dn, m, m.dense[removed].tolist(), "after removal", k=3)
    check_all("after overwrite")
    checked.append("overwrite_sparse")

    # deletes: by id (points that sparse queries find) and by filter
    for name, dn, m in setups:
        gone = [changed, added, 10, 11, 12, 500, 1801]
        client.delete(name, points_selector=models.PointIdsList(points=gone), wait=True)
        for i in gone:
            del m.dense[i], m.payload[i]
            m.sparse.pop(i, None)
        client.delete(name, points_selector=models.FilterSelector(filter=models.Filter(
            must=[models.FieldCondition(key="group", match=models.MatchValue(value=4))])), wait=True)
        for i in [i for i in m.dense if m.payload[i]["group"] == 4]:
            del m.dense[i], m.payload[i]
            m.sparse.pop(i, None)
        if client.count(name, exact=True).count != len(m.dense):
            fail("%s: count after delete %s, want %d" % (name, client.count(name, exact=True).count, len(m.dense)))
        got = check_sparse(name, m, ([VOCAB + 1, VOCAB + 2], [1.0, 1.0]), "after delete", k=10)
        if got:
            fail("%s: deleted points found: %s" % (name, [p.id for p in got]))
    check_all("after delete")
    checked.append("delete")

    for name, _, _ in setups:
        client.delete_collection(name)
        if client.collection_exists(name):
            fail("deleted collection %s exists" % name)
    checked.append("delete_collection")
    return checked


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        self_test_helpers()
        warnings.filterwarnings("ignore", message="Local mode")  # exact=True has no effect there: it is always exact
        checked = run(QdrantClient(":memory:"), local=True)
        print(json.dumps({"ok": True, "self_test": True, "checked": checked}))
        return
    url = sys.argv[1]
    api_key = sys.argv[2] if len(sys.argv) > 2 else None
    warnings.filterwarnings("error", message=".*ompatib.*")  # a version-compatibility warning is a failure
    client = QdrantClient(url=url, api_key=api_key, prefer_grpc=False, timeout=60, https=False)
    checked = run(client, local=False)
    print(json.dumps({"ok": True, "checked": checked}))


if __name__ == "__main__":
    main()
