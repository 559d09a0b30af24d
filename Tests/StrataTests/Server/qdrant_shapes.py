#!/usr/bin/env python3
"""Validates response bodies written by QdrantResponseTests against qdrant-client's own models.

Usage: qdrant_shapes.py DIR

DIR holds manifest.json, a list of {"file": name, "model": name, "status": http_status}, and the
bodies. A 2xx body is parsed exactly as qdrant-client 1.20 parses a REST answer
(qdrant_client.common.response_parsing.parse_response with the endpoint's response model, e.g.
InlineResponse20022 for points/query); its `result` must not be missing. An error body must be a
valid ErrorResponse with a non-empty status.error. Every body must be strict JSON (no NaN or
Infinity). Exits 1 listing every failure; prints one line per body checked.
"""
import json
import sys
from pathlib import Path

from typing import List, Optional

from pydantic import create_model
from qdrant_client.common.response_parsing import parse_response
from qdrant_client.http import models

# Envelopes of Qdrant's points/search and points/search/batch answers, which qdrant-client 1.20
# no longer models (it calls points/query instead), built from its ScoredPoint.
EXTRA_MODELS = {
    "ScoredPointsResponse": create_model(
        "ScoredPointsResponse", result=(Optional[List[models.ScoredPoint]], None),
        status=(Optional[str], None), time=(Optional[float], None)),
    "ScoredPointsBatchResponse": create_model(
        "ScoredPointsBatchResponse", result=(Optional[List[List[models.ScoredPoint]]], None),
        status=(Optional[str], None), time=(Optional[float], None)),
}


def reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def check(directory: Path, entry: dict) -> str | None:
    raw = (directory / entry["file"]).read_bytes()
    try:
        json.loads(raw, parse_constant=reject_constant)
    except ValueError as e:
        return f"not strict JSON: {e}"
    model = EXTRA_MODELS.get(entry["model"]) or getattr(models, entry["model"], None)
    if model is None:
        return f"no model {entry['model']} in qdrant_client.http.models"
    status = entry.get("status", 200)
    if 200 <= status <= 202:
        try:
            parsed = parse_response(raw, model)
        except Exception as e:  # pydantic's ValidationError and friends: report them all
            return f"{entry['model']} rejects it: {e}"
        if entry["model"] != "VersionInfo" and getattr(parsed, "result", None) is None:
            return "result is missing or null"
        if entry["model"] != "VersionInfo" and getattr(parsed, "status", None) != "ok":
            return "status is not 'ok'"
    else:
        parsed = models.ErrorResponse.model_validate_json(raw)
        if parsed.status is None or not parsed.status.error:
            return "error body without status.error"
    return None


def main() -> int:
    directory = Path(sys.argv[1])
    manifest = json.loads((directory / "manifest.json").read_text())
    failures = []
    for entry in manifest:
        problem = check(directory, entry)
        print(f"{'FAIL' if problem else 'ok  '} {entry['file']} as {entry['model']}" + (f": {problem}" if problem else ""))
        if problem:
            failures.append(entry["file"])
    print(f"{len(manifest) - len(failures)} of {len(manifest)} bodies valid")
    return 1 if failures or not manifest else 0


if __name__ == "__main__":
    sys.exit(main())
