#!/usr/bin/env bash
# scripts/check-deploy.sh on a copy of the tree whose bulk Job passes a flag
# `audiotag bulk` does not take (the --shard-count of issue 11) must fail,
# naming the Job and the real binary's --dry_run. Usage: SOURCE_DIR BIN_DIR
set -euo pipefail
src=$1
bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/scripts" "$tmp/docs"
cp -R "$src/deploy" "$src/docker" "$tmp/"
cp "$src/.yamllint" "$tmp/"
cp "$src/scripts/check-deploy.sh" "$src/scripts/check-deploy.py" "$tmp/scripts/"
cp "$src/docs/deploy.md" "$tmp/docs/"
job=$tmp/deploy/jobs/bulk-tagging/job.yaml
grep -q -- '--shard_count=4' "$job"
sed -i 's/--shard_count=4/--shard-count=4/' "$job"
set +e
AUDIOTAG_BIN_DIR=$bin "$tmp/scripts/check-deploy.sh" >"$tmp/out" 2>&1
rc=$?
set -e
cat "$tmp/out"
if [[ $rc -eq 77 ]]; then exit 77; fi
if grep -q 'SKIP --dry_run' "$tmp/out"; then
  echo "check_deploy_bad_flag_test: SKIP: the binaries have no --dry_run" >&2
  exit 77
fi
if [[ $rc -eq 0 ]]; then
  echo "check_deploy_bad_flag_test: FAIL: the check passed a Job with --shard-count" >&2
  exit 1
fi
if ! grep -q 'bulk-tagging Job/audiotag-bulk-tagging container bulk: .* rejected by audiotag --dry_run: .*shard-count' "$tmp/out"; then
  echo "check_deploy_bad_flag_test: FAIL: no --dry_run rejection of the Job's command line" >&2
  exit 1
fi
echo "check_deploy_bad_flag_test: the bad flag was rejected"
