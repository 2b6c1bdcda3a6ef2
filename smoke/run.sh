#!/bin/sh
# Packs the built npm package (npm/), installs it into a scratch consumer
# project (.smoke/) and runs smoke/smoke.mjs under Node and Bun against SQLite,
# PostgreSQL and MariaDB; then publint and attw check the package itself.
# Called by `deno task smoke:npm` after `deno task build:npm`.
set -eu
cd "$(dirname "$0")/.."
rm -rf .smoke && mkdir .smoke
echo '{"private":true,"type":"module"}' > .smoke/package.json
(cd npm && npm pack --silent --pack-destination ../.smoke >/dev/null)
(cd .smoke && npm install --silent --no-audit --no-fund --prefer-offline --no-package-lock ./kysera-*.tgz)
cp smoke/smoke.mjs smoke/subpaths.mjs .smoke/
node .smoke/subpaths.mjs
tools/node_modules/.bin/bun .smoke/subpaths.mjs
node .smoke/smoke.mjs
tools/node_modules/.bin/bun .smoke/smoke.mjs
# The README's and docs/' code blocks, as written (npm specifiers): compiled by tsc
# against the packed package and run by Node 20 (better-sqlite3), run by Bun (bun:sqlite).
tools/node_modules/.bin/deno run -A scripts/check_docs.ts --emit .smoke/docs
cat > .smoke/docs/node/tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022",
  "lib": ["ES2022", "DOM"], "types": ["node"], "skipLibCheck": false, "allowImportingTsExtensions": true,
  "rewriteRelativeImportExtensions": true, "outDir": "out" }, "include": ["*.ts"] }
JSON
node node_modules/typescript/bin/tsc -p .smoke/docs/node/tsconfig.json && echo "docs code blocks: tsc against the package ok"
for program in .smoke/docs/node/out/*.js; do
  case "$program" in */db.js) continue ;; esac
  node "$program" || { echo "docs code block failed under Node: $program" >&2; exit 1; }
done
echo "docs code blocks: ran under node $(node --version)"
for program in .smoke/docs/bun/*.ts; do
  case "$program" in */db.ts) continue ;; esac
  tools/node_modules/.bin/bun "$program" || { echo "docs code block failed under Bun: $program" >&2; exit 1; }
done
echo "docs code blocks: ran under bun $(tools/node_modules/.bin/bun --version)"
cp smoke/consumer.ts .smoke/
cat > .smoke/tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022",
  "lib": ["ES2022"], "types": [], "noEmit": true, "skipLibCheck": false }, "files": ["consumer.ts"] }
JSON
node node_modules/typescript/bin/tsc -p .smoke/tsconfig.json && echo "consumer tsc (NodeNext, skipLibCheck false): ok"
node_modules/.bin/publint npm
node_modules/.bin/attw --pack npm --profile esm-only --quiet && echo "attw: ok"
