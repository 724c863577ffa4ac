#!/bin/sh
# lint.sh SPEC: lints an OpenAPI document with Spectral (the spectral:oas
# ruleset, .spectral.yaml) and Redocly CLI (its recommended ruleset), at the
# versions package-lock.json pins, and fails on any error or warning. No rule
# is turned off. `make lint-spec` runs it on openapi.yaml; it installs the
# linters here (node_modules) with npm ci when they are missing or stale.
set -eu
spec=$(realpath "$1")
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "lint-spec: needs Node.js (20.19 or later) and npm" >&2; exit 1; }
if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
	# --ignore-scripts: neither linter needs an install script, and one of
	# their dependencies (@scarf/scarf) would only report the install.
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

failed=0
echo "spectral (spectral:oas) $spec"
node_modules/.bin/spectral lint --fail-severity=warn --ruleset .spectral.yaml "$spec" || failed=1

# Redocly fails on errors only: read its report and fail on warnings too.
# Its standard error (a notice about the Node.js version, say) is shown only
# when it gives no report.
echo "redocly (recommended) $spec"
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
report=$(node_modules/.bin/redocly lint --format=json "$spec" 2>"$errors") || true
printf '%s' "$report" | node -e '
let s = "";
process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const r = JSON.parse(s);
  for (const p of r.problems) {
    const at = p.location[0] || {};
    console.log(`${at.start ? at.start.line + ":" + at.start.col : ""}  ${p.severity}  ${p.ruleId}  ${p.message}  ${at.pointer || ""}`);
  }
  console.log(`redocly ${r.version}: ${r.totals.errors} errors, ${r.totals.warnings} warnings`);
  process.exit(r.totals.errors + r.totals.warnings > 0 ? 1 : 0);
});' || {
	failed=1
	[ -n "$report" ] || cat "$errors" >&2
}
exit $failed
