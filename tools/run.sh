#!/usr/bin/env bash
# The main job on built-in default data: build an indexed segment (payload columns, PQ codes, Vamana
# graph) from the pypi-minilm-100k dataset (or the small sample in Fixtures/ when ../shared is
# absent), show it, verify it, run exact search against the ground truth, then sweep graph search.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/ensure-deps.sh
swift build -c release --product strata >&2
STRATA=.build/release/strata
DATA=${STRATA_DATASET:-../shared/datasets/pypi-minilm-100k}
[ -f "$DATA/base.fvecs" ] || DATA=Fixtures/sample
OUT=${STRATA_OUT:-$(mktemp -d)}
SEG=$OUT/default.seg
echo "== build ($DATA)"
$STRATA build --vectors "$DATA/base.fvecs" --payload "$DATA/payload.tsv" \
  --schema "name:string,version:string,month:string,rank:int64?,summary:string" --metric cosine --index --out "$SEG"
echo "== dump"
$STRATA dump "$SEG" --rows 0..3
echo "== verify"
$STRATA verify "$SEG"
echo "== exact search (one query at a time, then batches of 256)"
$STRATA search "$SEG" --query "$DATA/query.fvecs" --groundtruth "$DATA/groundtruth.ivecs" --k 10 --limit 200 | tail -1
$STRATA search "$SEG" --query "$DATA/query.fvecs" --groundtruth "$DATA/groundtruth.ivecs" --k 10 --batch 256 | tail -1
echo "== graph search sweep (strata bench, one query at a time, warm page cache)"
$STRATA bench --dataset "$DATA" --segment "$SEG"
