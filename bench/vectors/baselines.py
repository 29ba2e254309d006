"""hnswlib and faiss on the data `vector-bench --export DIR` wrote, for the comparison in one run.

    python3 -m venv /tmp/vector-venv && /tmp/vector-venv/bin/pip install numpy hnswlib faiss-cpu
    /tmp/vector-venv/bin/python bench/vectors/baselines.py DIR [SECONDS]

Both on one thread, cosine (inner product of unit vectors), recall@10 against the exact answers
vector-bench computed: hnswlib with one index per tenant, and one faiss HNSW index over every
tenant with the tenant as a filter (an ID range, since each tenant's vectors are contiguous).
"""

import json
import sys
import time

import numpy as np


def load(directory):
    shape = json.load(open(f"{directory}/shape.json"))
    dimensions = shape["dimensions"]
    vectors = np.fromfile(f"{directory}/vectors.f32", dtype="<f4").reshape(-1, dimensions)
    tenants = np.fromfile(f"{directory}/tenants.u32", dtype="<u4")
    traffic = {}
    for name in ("uniform", "weighted"):
        queries = np.fromfile(f"{directory}/{name}.f32", dtype="<f4").reshape(-1, dimensions)
        query_tenants = np.fromfile(f"{directory}/{name}.tenants.u32", dtype="<u4")
        truth = np.fromfile(f"{directory}/{name}.truth.i32", dtype="<i4").reshape(-1, 10)
        traffic[name] = (queries, query_tenants, truth)
    return dimensions, vectors, tenants, traffic


def timed(run, queries, seconds):
    """Queries per second of `run(i)` over the query set, repeated for `seconds`."""
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for i in range(len(queries)):
            run(i)
            done += 1
    return done / (time.perf_counter() - began)


def recall(found, truth):
    right = expected = 0
    for ids, exact in zip(found, truth):
        exact = set(int(x) for x in exact if x >= 0)
        expected += len(exact)
        right += len(exact & set(int(x) for x in ids if x >= 0))
    return right / expected


def main():
    directory = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    dimensions, vectors, tenants, traffic = load(directory)
    starts = np.searchsorted(tenants, np.arange(tenants.max() + 2))

    import hnswlib

    began = time.perf_counter()
    per_tenant = []
    for tenant in range(len(starts) - 1):
        rows = vectors[starts[tenant]:starts[tenant + 1]]
        index = hnswlib.Index(space="ip", dim=dimensions)
        index.init_index(max_elements=len(rows), ef_construction=200, M=16)
        index.set_num_threads(1)
        index.add_items(rows, np.arange(len(rows)))
        per_tenant.append(index)
    print(f"hnswlib: {len(per_tenant)} indexes built in {time.perf_counter() - began:.1f} s")

    import faiss

    faiss.omp_set_num_threads(1)
    began = time.perf_counter()
    shared = faiss.IndexHNSWFlat(dimensions, 32, faiss.METRIC_INNER_PRODUCT)
    shared.hnsw.efConstruction = 200
    shared.add(vectors)
    print(f"faiss: one HNSW index built in {time.perf_counter() - began:.1f} s")

    print("| engine | traffic | ef | queries/s (1 thread) | recall@10 |")
    print("|---|---|---|---|---|")
    for name, (queries, query_tenants, truth) in traffic.items():
        for ef in (32, 64, 128):
            def hnsw_query(i):
                index = per_tenant[query_tenants[i]]
                index.set_ef(max(ef, 10))
                return index.knn_query(queries[i:i + 1], k=min(10, index.get_current_count()))[0][0]

            found = [hnsw_query(i) for i in range(len(queries))]
            rate = timed(hnsw_query, queries, seconds)
            print(f"| hnswlib per tenant | {name} | {ef} | {rate:.0f} | {recall(found, truth):.4f} |")

            def faiss_query(i):
                tenant = query_tenants[i]
                selector = faiss.IDSelectorRange(int(starts[tenant]), int(starts[tenant + 1]))
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
                _, ids = shared.search(queries[i:i + 1], 10, params=params)
                return [x - starts[tenant] if x >= 0 else -1 for x in ids[0]]

            found = [faiss_query(i) for i in range(len(queries))]
            rate = timed(faiss_query, queries, seconds)
            print(f"| faiss HNSW, tenant filter | {name} | {ef} | {rate:.0f} | {recall(found, truth):.4f} |")


if __name__ == "__main__":
    main()
