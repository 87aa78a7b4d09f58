#!/usr/bin/env bash
# Offline validation of docker/ and deploy/ (CTest: deploy_manifests).
#   1. renders deploy/base, deploy/overlays/{cpu,gpu}, deploy/jobs/{bulk-tagging,seed-models}
#      with `kubectl kustomize` (client side, no cluster needed)
#   2. yamllint on deploy/ with .yamllint
#   3. scripts/check-deploy.py: structure rules on the rendered manifests, the
#      Dockerfiles and docs/deploy.md; every container command line run
#      through the real binaries' --dry_run (from $AUDIOTAG_BIN_DIR, default
#      build/bin: build audiotag and audiotag-server first); plus a self-test
#      that breaks each rule on purpose
# Exits 77 (CTest: skipped) when kubectl, yamllint or python3-yaml is missing;
# scripts/install-deps.sh installs yamllint and python3-yaml; kubectl comes
# from the machine (or Debian's kubernetes-client). KUBECTL=path overrides.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECTL=${KUBECTL:-kubectl}
PYTHON=/usr/bin/python3
skip() { echo "check-deploy: SKIP: $*" >&2; exit 77; }
command -v "$KUBECTL" >/dev/null || skip "kubectl not found (apt-get install kubernetes-client)"
command -v yamllint >/dev/null || skip "yamllint not found (scripts/install-deps.sh)"
"$PYTHON" -c 'import yaml' 2>/dev/null || skip "python3-yaml not found (scripts/install-deps.sh)"

BIN_DIR=${AUDIOTAG_BIN_DIR:-build/bin}
for b in audiotag audiotag-server; do
  if [[ ! -x "$BIN_DIR/$b" ]]; then
    echo "check-deploy: FAIL $BIN_DIR/$b not found: build it (cmake --build build" \
         "--target audiotag audiotag-server) or set AUDIOTAG_BIN_DIR" >&2
    exit 1
  fi
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

declare -A targets=(
  [base]=deploy/base
  [cpu]=deploy/overlays/cpu
  [gpu]=deploy/overlays/gpu
  [bulk-tagging]=deploy/jobs/bulk-tagging
  [seed-models]=deploy/jobs/seed-models
)
status=0
for name in base cpu gpu bulk-tagging seed-models; do
  dir=${targets[$name]}
  # kustomize >= 5 warns that `bases`/`patchesStrategicMerge` are deprecated;
  # they stay so that kubectl 1.20's kustomize renders the same tree.
  if "$KUBECTL" kustomize "$dir" >"$out/$name.yaml" 2>"$out/$name.err"; then
    grep -v "^# Warning: '\(bases\|patchesStrategicMerge\)' is deprecated" "$out/$name.err" >&2 || true
    echo "check-deploy: rendered $dir ($(grep -c '^kind:' "$out/$name.yaml") objects)"
  else
    cat "$out/$name.err" >&2
    echo "check-deploy: FAIL kubectl kustomize $dir" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] || exit 1

yamllint -c .yamllint --strict deploy .yamllint
echo "check-deploy: yamllint clean"

"$PYTHON" scripts/check-deploy.py --self-test --bin-dir "$BIN_DIR" \
  --docs docs/deploy.md docker/README.md -- "$out" docker/Dockerfile docker/Dockerfile.gpu
echo "check-deploy: structure checks, --dry_run of every command line (unless SKIP above) and self-test passed"
