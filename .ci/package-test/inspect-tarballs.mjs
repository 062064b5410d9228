// Checks the unpacked tarballs of the publishable packages, before any install:
// the metadata npm users get (no workspace: ranges, peers, LICENSE, repository,
// engines), an explicit export map whose every target is in the tarball, no stale
// build output, no tests, and README links that work on npm.
// Usage: node inspect-tarballs.mjs <dir with one unpacked package per subdirectory>
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"

const root = process.argv[2]
const problems = []

const walk = (dir) =>
  readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })

const targets = (value) => {
  if (typeof value === "string") return [value]
  if (value === null || typeof value !== "object") return []
  return Object.values(value).flatMap(targets)
}

for (const unpacked of readdirSync(root)) {
  const dir = join(root, unpacked, "package")
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
  const files = walk(dir).map((file) => relative(dir, file))
  const has = (path) => existsSync(join(dir, path))
  const problem = (message) => problems.push(`${pkg.name}: ${message}`)

  for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (String(range).startsWith("workspace:")) problem(`${field}.${name} is still "${range}"`)
    }
  }
  for (const peer of ["effect", "@effect/platform"]) {
    if (pkg.dependencies?.[peer] !== undefined) problem(`${peer} is a dependency, not a peer dependency`)
  }
  if (pkg.peerDependencies?.effect === undefined) problem("effect is not a peer dependency")
  for (const file of ["LICENSE", "README.md"]) if (!has(file)) problem(`${file} is not in the tarball`)
  if (!pkg.license) problem("no license field")
  if (!pkg.repository?.url || !pkg.repository?.directory) problem("no repository url and directory")
  if (!pkg.engines?.node) problem("no engines.node")

  if (pkg.exports === null || typeof pkg.exports !== "object") problem("no export map")
  for (const [subpath, value] of Object.entries(pkg.exports ?? {})) {
    if (subpath.includes("*") && value !== null) problem(`export "${subpath}" is a wildcard`)
    if (subpath === "./package.json" || value === null) continue
    const conditions = typeof value === "object" ? Object.keys(value) : []
    if (!conditions.includes("types") || !conditions.includes("default")) {
      problem(`export "${subpath}" needs "types" and "default" conditions`)
    } else if (conditions.indexOf("types") > conditions.indexOf("default")) {
      problem(`export "${subpath}": "types" must come before "default"`)
    }
    for (const target of targets(value))
      if (!has(target)) problem(`export "${subpath}" -> ${target} is not in the tarball`)
  }
  for (const field of ["main", "types"]) {
    if (pkg[field] === undefined) problem(`no "${field}" (node10 resolution)`)
    else if (!has(pkg[field])) problem(`"${field}" -> ${pkg[field]} is not in the tarball`)
  }
  const bins = typeof pkg.bin === "string" ? [pkg.bin] : Object.values(pkg.bin ?? {})
  for (const bin of bins) {
    if (!has(bin)) problem(`bin ${bin} is not in the tarball`)
    else if (!readFileSync(join(dir, bin), "utf8").startsWith("#!/usr/bin/env node"))
      problem(`bin ${bin} has no shebang`)
    if (
      Array.isArray(pkg.sideEffects) &&
      !pkg.sideEffects.some((path) => path.replace(/^\.\//, "") === bin.replace(/^\.\//, ""))
    ) {
      problem(`bin ${bin} runs on import but is not listed in sideEffects`)
    }
  }

  const exported = new Set(Object.values(pkg.exports ?? {}).flatMap(targets))
  for (const file of files) {
    const js = /^dist\/(.*)\.js$/.exec(file)
    if (js && !has(`src/${js[1]}.ts`))
      problem(`${file} has no source in src/ (stale build output: clean dist and rebuild)`)
    // Each public module (not a barrel, an entry point or an internal one) is in the export map.
    if (js && !/^(index|bin)$|^internal\//.test(js[1]) && !exported.has(`./${file}`))
      problem(`${file} is a module of the package but no export leads to it`)
    if (/(^|\/)test\/|\.test\.[cm]?[jt]s$/.test(file)) problem(`${file}: tests are published`)
  }

  for (const readme of files.filter((file) => /(^|\/)README\.md$/i.test(file))) {
    const text = readFileSync(join(dir, readme), "utf8")
    for (const [, link] of text.matchAll(/\]\(([^)\s]+)[^)]*\)/g)) {
      if (!/^(https?:|mailto:|#)/.test(link)) problem(`${readme} links to "${link}", which does not resolve on npm`)
    }
  }
}

if (problems.length > 0) {
  console.error(problems.map((problem) => `  ${problem}`).join("\n"))
  process.exit(1)
}
console.log(`ok: ${readdirSync(root).length} tarballs: metadata, export maps, files and README links`)
