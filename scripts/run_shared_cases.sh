#!/usr/bin/env bash
# Run every reproduction in ../shared/cases (http/*/run*.sh, hostile/*/repro.sh) against a build
# of pingmon, for before/after notes. Usage: scripts/run_shared_cases.sh LABEL VENV_BIN [OUT]
#   LABEL     a name for this run (the copy goes to /tmp/cases-LABEL: the scripts write beside
#             themselves, so ../shared is never touched)
#   VENV_BIN  the bin/ of a virtualenv with the pingmon to try (its python runs the fake servers)
#   OUT       where each case's output goes, one file a case (default: /tmp/cases-LABEL.out)
# Loopback only; each script stops what it starts; each gets 120 s at most.
set -u
label=$1; bin=$2
shared=$(cd "$(dirname "$0")/../../shared/cases" && pwd)
dst=/tmp/cases-$label; out=${3:-/tmp/cases-$label.out}
rm -rf "$dst"; cp -r "$shared" "$dst"; mkdir -p "$out"
export PINGMON=$bin/pingmon PY=$bin/python PYTHON=$bin/python PATH=$bin:$PATH
for script in "$dst"/http/*/run*.sh "$dst"/hostile/*/repro.sh; do
  name=$(basename "$(dirname "$script")")-$(basename "$script" .sh)
  (cd "$(dirname "$script")" && timeout -k 5 120 bash "$script") >"$out/$name.txt" 2>&1
  echo "rc=$?" >>"$out/$name.txt"
done
echo "outputs in $out"
