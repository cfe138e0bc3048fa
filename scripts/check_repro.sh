#!/usr/bin/env bash
# Reproducibility check of the embedded pipeline: rerun every stage (`dvc repro -f`) and compare
# with what the workspace held before (normally the committed run):
#   - the hash of every file under models/ (weights, training states, logs),
#   - AUC / PRE / NPR of every mode in reports/metrics/*.json and reports/ablations/*.json.
# Timings (reports/timings/) are never compared. Exit 0 when everything is identical.
# Usage (from the repository root, with the venv's bin on PATH): bash scripts/check_repro.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
snapshot() {
    python - "$1" <<'PY'
import hashlib, json, sys
from pathlib import Path

out = {"models": {}, "scores": {}}
for path in sorted(Path("models").rglob("*")):
    if path.is_file():
        out["models"][str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
for folder in ("reports/metrics", "reports/ablations"):
    for path in sorted(Path(folder).glob("*.json")):
        for mode, entry in (json.loads(path.read_text()).get("modes") or {}).items():
            scores = entry.get("scores") or {}
            out["scores"][f"{path}:{mode}"] = {k: scores.get(k) for k in ("auc", "pre", "npr")}
Path(sys.argv[1]).write_text(json.dumps(out, indent=1, sort_keys=True))
PY
}
snapshot "$work/before.json"
dvc repro -f
snapshot "$work/after.json"
python - "$work/before.json" "$work/after.json" <<'PY'
import json, sys

a, b = (json.load(open(p)) for p in sys.argv[1:3])
bad = 0
for part in ("models", "scores"):
    for key in sorted(set(a[part]) | set(b[part])):
        if a[part].get(key) != b[part].get(key):
            bad += 1
            print(f"DIFFERS {part} {key}: {a[part].get(key)} -> {b[part].get(key)}")
print(f"{len(a['models'])} model files, {len(a['scores'])} score entries compared: "
      + ("identical" if not bad else f"{bad} differ"))
sys.exit(1 if bad else 0)
PY
