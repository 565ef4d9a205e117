#!/usr/bin/env bash
# CI, report job: gathers what the test jobs uploaded (DIR/<artifact>/shim.txt and table-*.md),
# prints one table "OS | Python | Lisp | sys.version | shim sha256 | result" (also into the
# job summary), and fails if the test jobs of one operating system saw more than one shim
# checksum: all Python versions of one OS must have run the very same build.
# Usage: .github/scripts/report.sh DIR
set -euo pipefail
dir=$1
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
lines=$(cat "$dir"/*/shim.txt 2>/dev/null | sort -t'|' -k1,1 -k2,2V -k3,3) || true
[ -n "$lines" ] || { echo "report: no test job uploaded a result" >&2; exit 1; }
{
  echo "| OS | Python | Lisp | shim sha256 | sys.version |"
  echo "|---|---|---|---|---|"
  while IFS='|' read -r os xy lisp sum version; do
    echo "| $os | $xy | $lisp | \`${sum:0:16}…\` | $version |"
  done <<<"$lines"
  echo
  for table in "$dir"/*/table.md; do
    [ -f "$table" ] || continue
    echo "### $(basename "$(dirname "$table")")"
    cat "$table"
    echo
  done
} | tee -a "$summary"
status=0
while read -r os; do
  sums=$(awk -F'|' -v os="$os" '$1 == os { print $4 }' <<<"$lines" | sort -u)
  if [ "$(wc -l <<<"$sums")" -ne 1 ]; then
    echo "report: $os ran more than one shim build:" >&2; echo "$sums" >&2; status=1
  else
    echo "report: $os: every Python ran the one shim ${sums:0:16}…"
  fi
done < <(cut -d'|' -f1 <<<"$lines" | sort -u)
exit $status
