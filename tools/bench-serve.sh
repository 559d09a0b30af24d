#!/usr/bin/env bash
# Figures of `strata serve` (release build) on pypi-minilm-100k, beside `strata bench` in-process
# on a segment built with the same index options: ingest throughput with wait=true, then rounds
# that alternate (because this machine is noisy) the same 1,000 queries over HTTP (a plain
# keep-alive client: the server's cost), in-process (strata bench), and through qdrant-client.
#
#   bash tools/bench-serve.sh [DATASET] [ROUNDS]      output: bench-out/serve/*.json
#
# Starts its own SeaweedFS and etcd (tools/services.sh, 16 x 256 MB volumes) and one node, and
# stops them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset="${1:-../shared/datasets/pypi-minilm-100k}"
rounds="${2:-3}"
out=bench-out/serve
mkdir -p "$out"
swift build -c release --scratch-path .build-release --product strata >&2
strata=.build-release/release/strata
python="$(bash tools/qdrant-client.sh)"
export STRATA_SEAWEED_VOLUMES=16 STRATA_SEAWEED_VOLUME_MB=256
eval "$(bash tools/services.sh start "$out/services")"
node_pid=""
cleanup() {
    [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
    bash tools/services.sh stop "$out/services"
}
trap cleanup EXIT
rm -f "$out/ready"
"$strata" serve --listen 127.0.0.1:0 --node-id bench0 --store "s3://$STRATA_TEST_S3_BUCKET/bench-$(date +%s)" \
    --s3-endpoint "$STRATA_TEST_S3_ENDPOINT" --etcd "$STRATA_TEST_ETCD" --cache-dir "$out/cache" \
    --flush-rows 100000 --compact-interval 0 --ready-file "$out/ready" 2> "$out/node.log" &
node_pid=$!
for _ in $(seq 1 300); do [ -s "$out/ready" ] && break; sleep 0.1; done
url="$(cat "$out/ready")"
echo "node at $url" >&2
"$python" tools/serve/bench.py ingest --url "$url" --dataset "$dataset" --batch 1000 | tee "$out/ingest.json"
[ -f "$out/inprocess.seg" ] || "$strata" bench --dataset "$dataset" --segment "$out/inprocess.seg" --index --L 64 --json > /dev/null
: > "$out/rounds.jsonl"
for round in $(seq 1 "$rounds"); do
    for threads in 1 4; do
        "$python" tools/serve/bench.py query --url "$url" --dataset "$dataset" --ef 64 --threads "$threads" | tee -a "$out/rounds.jsonl"
        "$strata" bench --dataset "$dataset" --segment "$out/inprocess.seg" --L 64 --threads "$threads" --json \
            | "$python" -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'phase':'in-process','threads':$threads,'raw':d}))" \
            | tee -a "$out/rounds.jsonl"
    done
    "$python" tools/serve/bench.py query --url "$url" --dataset "$dataset" --ef 64 --threads 1 --client qdrant | tee -a "$out/rounds.jsonl"
done
