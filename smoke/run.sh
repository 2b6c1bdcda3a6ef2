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
cp smoke/smoke.mjs .smoke/
node .smoke/smoke.mjs
tools/node_modules/.bin/bun .smoke/smoke.mjs
cp smoke/consumer.ts .smoke/
cat > .smoke/tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022",
  "lib": ["ES2022"], "types": [], "noEmit": true, "skipLibCheck": false }, "files": ["consumer.ts"] }
JSON
node node_modules/typescript/bin/tsc -p .smoke/tsconfig.json && echo "consumer tsc (NodeNext, skipLibCheck false): ok"
node_modules/.bin/publint npm
node_modules/.bin/attw --pack npm --profile esm-only --quiet && echo "attw: ok"
