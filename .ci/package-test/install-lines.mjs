// Finds the `npm install` lines of the guides and READMEs (fenced sh blocks) and
// rewrites them to install our packages from the tarballs, so that the lines a
// user copies are installed as written (ranges, -D) by the packaging test.
// Usage: node install-lines.mjs '<{"name":"file:/path.tgz",...}>' <markdown files...>
// Prints one line per file that has any: file, the overrides the project needs
// (our packages the lines do not name), then each rewritten command, tab-separated.
import { readFileSync } from "node:fs"

const [tarballs, ...files] = process.argv.slice(2)
const ours = JSON.parse(tarballs)
const seen = new Set()

const packageName = (spec) => {
  const at = spec.indexOf("@", 1)
  return at === -1 ? spec : spec.slice(0, at)
}

for (const file of files) {
  const lines = []
  let fenced = false
  /** A command continued on the next line (`\` at the end), as a shell joins it. */
  let continued = ""
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const fence = /^\s*```(\w*)/.exec(line)
    if (fence) {
      fenced = !fenced && ["sh", "bash", "shell", "console"].includes(fence[1])
      continued = ""
      continue
    }
    const text = line.replace(/#.*$/, "").trim()
    if (fenced && text.endsWith("\\")) {
      continued += `${text.slice(0, -1).trim()} `
      continue
    }
    const command = `${continued}${text}`.trim()
    continued = ""
    if (fenced && /^npm (install|i)\s/.test(command) && !/\s(-g|--global)\b/.test(command)) lines.push(command)
  }
  if (lines.length === 0) continue
  const named = new Set()
  const commands = lines.map((command) =>
    command
      .split(/\s+/)
      .map((word) => {
        const name = packageName(word)
        if (ours[name] === undefined) return word
        named.add(name)
        return ours[name].slice("file:".length)
      })
      .join(" ")
  )
  const key = commands.join("\n")
  if (seen.has(key)) continue
  seen.add(key)
  const overrides = Object.fromEntries(Object.entries(ours).filter(([name]) => !named.has(name)))
  console.log([file, JSON.stringify(overrides), ...commands].join("\t"))
}
