#!/usr/bin/env bash
# The packaging test: what an npm user gets. Packs every publishable package
# (pnpm rewrites the workspace: ranges) and checks the tarballs; installs them
# with npm into scratch projects beside effect 3 and @effect/platform (the peers),
# never asking the registry for an @ironlabsai package; checks the tree (one copy
# of each peer, no EBADENGINE, nothing in ironlabsai's tree that exists only for
# the CLI, the demo or tests); runs an ESM import, a CommonJS require, a
# TypeScript check (node16, bundler, node10; CommonJS under nodenext), one facade call
# against the loopback simulator, `npx ironlabsai --help` from @ironlabsai/cli,
# and the guides' `npm install` lines as written. Prints what installing
# ironlabsai brings and its cold import time against effect's (informational).
# Needs `pnpm build` first, and the npm registry. About a minute.
#
#   bash .ci/package-test.sh        # KEEP_PACKAGE_TEST=1 keeps the scratch projects
set -euo pipefail
set -o errtrace
cd "$(dirname "$0")/.."
repo=$PWD
fixtures=$repo/.ci/package-test

EFFECT=effect@^3.22
PLATFORM=@effect/platform@^0.97
TYPESCRIPT=typescript@~5.9
NODE_TYPES=@types/node@^20
RUNS=7

pnpm() { npx -y pnpm@10 "$@"; }
# The programs point the clients at the simulator: keys and URLs from the environment stay out.
without_keys() { env -u OPENAI_API_KEY -u OPENAI_BASE_URL -u ANTHROPIC_API_KEY -u ANTHROPIC_BASE_URL "$@"; }
stage="setup"
started=$SECONDS
step() {
  stage=$1
  printf '\n-- %s\n' "$1"
}
fail() {
  echo "packaging test FAILED at \"$stage\": $1" >&2
  exit 1
}
trap 'echo "packaging test FAILED at \"$stage\": command exited with $? (line $LINENO)" >&2' ERR

work=$(mktemp -d "${TMPDIR:-/tmp}/ironlabsai-package-test.XXXXXX")
cleanup() {
  if [ -n "${KEEP_PACKAGE_TEST:-}" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/tarballs" "$work/unpacked"

# npm with the registry defaults and no noise; the output is kept for the EBADENGINE check.
npm_install() {
  local dir=$1 log=$2
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=warn) >"$log" 2>&1 || {
    cat "$log"
    fail "npm install in $(basename "$dir")"
  }
  if grep -q EBADENGINE "$log"; then
    grep EBADENGINE "$log"
    fail "EBADENGINE during npm install in $(basename "$dir"): a dependency's engines exclude Node $(node --version)"
  fi
}

# Writes package.json: the given packages as dependencies ("name=spec"), every
# @ironlabsai tarball as an override so that npm never asks the registry for one.
write_project() {
  local dir=$1
  shift
  mkdir -p "$dir"
  node -e '
    const [dir, tarballs, ...deps] = process.argv.slice(1)
    const overrides = JSON.parse(tarballs)
    const dependencies = Object.fromEntries(deps.map((dep) => {
      const at = dep.lastIndexOf("=")
      return [dep.slice(0, at), dep.slice(at + 1)]
    }))
    for (const name of Object.keys(dependencies)) if (overrides[name]) dependencies[name] = overrides[name]
    const pkg = { name: "scratch", version: "0.0.0", private: true, dependencies, overrides }
    require("fs").writeFileSync(`${dir}/package.json`, JSON.stringify(pkg, null, 2))
  ' "$dir" "$overrides" "$@"
}

# Exactly one copy of a package in the project's tree (with "optional": none or one).
one_copy() {
  local dir=$1 name=$2 optional=${3:-} copies
  copies=$(cd "$dir" && npm ls "$name" --all --parseable | sort -u | grep -c . || true)
  if [ "$copies" = 0 ] && [ -n "$optional" ]; then return 0; fi
  if [ "$copies" != 1 ]; then
    (cd "$dir" && npm ls "$name" --all || true)
    fail "$copies copies of $name in $(basename "$dir") (expected exactly one)"
  fi
  echo "ok: one copy of $name ($(cd "$dir" && node -p "require('$name/package.json').version"))"
}

# ---------------------------------------------------------------------------

step "pack the publishable packages"
publishable=()
for manifest in packages/*/package.json; do
  if [ "$(node -p "require('./$manifest').private === true")" = false ]; then
    publishable+=("$(node -p "require('./$manifest').name")")
    [ -f "$(dirname "$manifest")/dist/index.js" ] || fail "$(dirname "$manifest") is not built: run pnpm build first"
  fi
done
for name in ironlabsai @ironlabsai/core @ironlabsai/cli @ironlabsai/testing; do
  [[ " ${publishable[*]} " == *" $name "* ]] || fail "$name is not among the publishable packages (${publishable[*]})"
done
filters=()
for name in "${publishable[@]}"; do filters+=(--filter "$name"); done
pnpm -r "${filters[@]}" pack --pack-destination "$work/tarballs" >"$work/pack.log" 2>&1 || {
  cat "$work/pack.log"
  fail "pnpm pack"
}
overrides="{"
for tarball in "$work"/tarballs/*.tgz; do
  base=$(basename "$tarball" .tgz)
  mkdir -p "$work/unpacked/$base"
  tar -xzf "$tarball" -C "$work/unpacked/$base"
  name=$(node -p "require('$work/unpacked/$base/package/package.json').name")
  overrides+="\"$name\":\"file:$tarball\","
done
overrides="${overrides%,}}"
count=$(find "$work/tarballs" -name '*.tgz' | wc -l)
[ "$count" -eq "${#publishable[@]}" ] || fail "$count tarballs for ${#publishable[@]} publishable packages"
echo "ok: ${#publishable[@]} tarballs: ${publishable[*]}"

step "inspect the tarballs"
node "$fixtures/inspect-tarballs.mjs" "$work/unpacked" || fail "the tarballs' contents (see above)"

step "npm install ironlabsai with its peers"
lean=$work/lean
write_project "$lean" "ironlabsai=" "effect=${EFFECT#effect@}" "@effect/platform=${PLATFORM#@effect/platform@}"
npm_install "$lean" "$work/install-lean.log"
(cd "$lean" && npm ls --all >/dev/null) || { (cd "$lean" && npm ls --all) || true; fail "npm ls reports missing or invalid dependencies"; }
one_copy "$lean" effect
one_copy "$lean" @effect/platform
only_for_others=(@effect/cli cli-progress @effect/platform-node @ironlabsai/testing)
found=$(cd "$lean" && npm ls "${only_for_others[@]}" --all --parseable || true)
[ -z "$found" ] || fail "installing ironlabsai brings packages only the CLI, the demo or tests need: $found"
echo "ok: none of ${only_for_others[*]} in ironlabsai's tree"
packages=$(cd "$lean" && node "$fixtures/count-packages.mjs")
megabytes=$(du -sm "$lean/node_modules" | cut -f1)
echo "ok: installed, no EBADENGINE on Node $(node --version)"

step "cold import: ironlabsai vs effect ($RUNS alternating fresh processes each)"
cp "$fixtures/import-time.mjs" "$lean/"
times_ironlabsai=() times_effect=()
for _ in $(seq "$RUNS"); do
  times_ironlabsai+=("$(cd "$lean" && node import-time.mjs ironlabsai)")
  times_effect+=("$(cd "$lean" && node import-time.mjs effect)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
import_ironlabsai=$(median "${times_ironlabsai[@]}")
import_effect=$(median "${times_effect[@]}")
ratio=$(awk -v a="$import_ironlabsai" -v b="$import_effect" 'BEGIN { printf "%.2f", a / b }')
echo "import(\"ironlabsai\"): ${times_ironlabsai[*]} ms"
echo "import(\"effect\"):     ${times_effect[*]} ms"

step "add @ironlabsai/testing and typescript"
full=$work/full
write_project "$full" "ironlabsai=" "@ironlabsai/core=" "@ironlabsai/http=" "@ironlabsai/testing=" \
  "@ironlabsai/redis=" "@ironlabsai/effect-ai=" "@effect/ai=0.37.0" "@effect/experimental=^0.61.0" "@effect/rpc=^0.76.0" \
  "effect=${EFFECT#effect@}" "@effect/platform=${PLATFORM#@effect/platform@}" "typescript=${TYPESCRIPT#typescript@}" \
  "@types/node=${NODE_TYPES#@types/node@}"
npm_install "$full" "$work/install-full.log"
one_copy "$full" effect
one_copy "$full" @effect/platform
found=$(cd "$full" && npm query '#ironlabsai *' | node -e '
  const names = new Set(process.argv.slice(1))
  const tree = JSON.parse(require("fs").readFileSync(0, "utf8"))
  console.log(tree.filter((node) => names.has(node.name)).map((node) => node.name).join(" "))
' "${only_for_others[@]}")
[ -z "$found" ] || fail "ironlabsai's tree contains $found"
cp "$fixtures/esm.mjs" "$fixtures/cjs.cjs" "$fixtures/program.mts" "$fixtures/program.cts" "$fixtures/simulator.mjs" "$full/"

step "ESM import"
(cd "$full" && node esm.mjs) || fail "import of ironlabsai and @ironlabsai/core from ESM"

step "CommonJS require"
library=()
for name in "${publishable[@]}"; do [ "$name" = @ironlabsai/cli ] || library+=("$name"); done
(cd "$full" && without_keys node cjs.cjs "${library[@]}") ||
  fail "require(\"ironlabsai\") from CommonJS"

step "TypeScript check"
# strict, and skipLibCheck off so that the shipped .d.ts files are checked too: with
# @types/node, as in any Node program (undici's types need it), and the DOM lib
# (@effect/platform's types need it). node16 adds exactOptionalPropertyTypes;
# node10 is what "main" and "types" are for; program.cts is a CommonJS file.
cp "$full/program.mts" "$full/program.ts"
for check in node16 bundler node10 nodenext; do
  case $check in
    node16) module=node16 resolution=node16 file=program.mts exact=true ;;
    bundler) module=esnext resolution=bundler file=program.mts exact=false ;;
    node10) module=commonjs resolution=node10 file=program.ts exact=false ;;
    nodenext) module=nodenext resolution=nodenext file=program.cts exact=false ;;
  esac
  cat >"$full/tsconfig.$check.json" <<EOF
{
  "compilerOptions": {
    "module": "$module",
    "moduleResolution": "$resolution",
    "target": "ES2022",
    "lib": ["ES2022", "DOM"],
    "types": ["node"],
    "strict": true,
    "exactOptionalPropertyTypes": $exact,
    "skipLibCheck": false,
    "noEmit": true
  },
  "files": ["$file"]
}
EOF
  (cd "$full" && ./node_modules/.bin/tsc -p "tsconfig.$check.json") ||
    fail "tsc --noEmit of $file under module $module, moduleResolution $resolution"
  echo "ok: tsc --noEmit $file: module $module, moduleResolution $resolution, strict, lib check"
done

step "a facade call against the simulator"
(cd "$full" && without_keys node simulator.mjs) ||
  fail "the facade call against @ironlabsai/testing's simulator"

step "npm install @ironlabsai/cli; npx ironlabsai --help"
cli=$work/cli
write_project "$cli" "@ironlabsai/cli=" "effect=${EFFECT#effect@}" "@effect/platform=${PLATFORM#@effect/platform@}"
npm_install "$cli" "$work/install-cli.log"
one_copy "$cli" effect
(cd "$cli" && npx --no ironlabsai --help >"$work/help.txt" 2>&1) || { cat "$work/help.txt"; fail "npx ironlabsai --help"; }
echo "ok: npx ironlabsai --help"

step "the install lines of the guides and READMEs, as written"
guides=0
while IFS=$'\t' read -r -u 3 -a entry; do
  file=${entry[0]}
  project=$work/guide-$guides
  guides=$((guides + 1))
  mkdir -p "$project"
  node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ name: "scratch", version: "0.0.0", private: true, overrides: JSON.parse(process.argv[2]) }, null, 2))' \
    "$project/package.json" "${entry[1]}"
  for command in "${entry[@]:2}"; do
    read -r -a words <<<"$command"
    (cd "$project" && npm "${words[@]:1}" --no-audit --no-fund --loglevel=warn) >"$project.log" 2>&1 || {
      cat "$project.log"
      fail "$file: \"$command\" fails"
    }
    if grep -q EBADENGINE "$project.log"; then grep EBADENGINE "$project.log"; fail "$file: EBADENGINE from \"$command\""; fi
  done
  (cd "$project" && npm ls --all >/dev/null) || { (cd "$project" && npm ls --all) || true; fail "$file: npm ls reports problems"; }
  one_copy "$project" effect
  one_copy "$project" @effect/platform optional
  echo "ok: $file: $((${#entry[@]} - 2)) npm install line(s) install as written"
done 3< <(node "$fixtures/install-lines.mjs" "$overrides" README.md docs/*.md packages/*/README.md)
[ "$guides" -gt 0 ] || fail "no npm install line found in the guides"

step "summary"
echo "packages: ${publishable[*]}"
echo "npm install ironlabsai $EFFECT $PLATFORM: $packages packages, $megabytes MB in node_modules"
echo "cold import (median of $RUNS fresh processes): ironlabsai ${import_ironlabsai} ms, effect ${import_effect} ms, ratio ${ratio}x"
echo "packaging test passed in $((SECONDS - started)) s"
