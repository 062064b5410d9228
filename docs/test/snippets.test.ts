import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Reliability } from "@ironlabsai/core"
import { Either } from "effect"
import ts from "typescript"
import { type Block, blocks, documents, root, sources, writeSnippets } from "./snippets.js"

const where = (block: Block, offset = 0) => `${block.document}:${block.line + offset}`

/** "is declared but never used" (values, types, all imports of a declaration). */
const unused: ReadonlySet<number> = new Set([6133, 6192, 6196, 6198])

describe("docs: every code block", () => {
  it("type-checks every TypeScript block and every module's @example, as its own module, in one program", () => {
    const snippets = writeSnippets()
    assert.isAbove(snippets.length, 0, "no TypeScript blocks found")
    // Every module of every package has its @example, and each one is in the program.
    const documented = new Set(snippets.map((snippet) => snippet.document))
    // (Barrels, the CLI's entry point, internal modules and the private benchmark have none.)
    const missing = sources().filter(
      (source) => !/\/(internal\/|index\.ts$|bin\.ts$)|^packages\/bench\//.test(source) && !documented.has(source)
    )
    assert.deepStrictEqual(missing, [], "modules without an @example")
    const configFile = Path.join(root, "tsconfig.base.json")
    const { config, error } = ts.readConfigFile(configFile, ts.sys.readFile)
    assert.isUndefined(error, error && ts.flattenDiagnosticMessageText(error.messageText, "\n"))
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configFile)
    const program = ts.createProgram(
      snippets.map((snippet) => snippet.file),
      { ...options, noEmit: true, declaration: false, declarationMap: false, sourceMap: false }
    )
    const problems = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map(
      (d) => `tsconfig: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
    )
    for (const snippet of snippets) {
      const source = program.getSourceFile(snippet.file)
      if (source === undefined) {
        problems.push(`${where(snippet)}: not in the program`)
        continue
      }
      for (const d of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
        // A module's @example shows a value without using it: unused names are fine there, nothing else is.
        if (snippet.document.startsWith("packages/") && unused.has(d.code)) continue
        const line = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line + 1
        const text = ts.flattenDiagnosticMessageText(d.messageText, "\n    ")
        problems.push(`${where(snippet, line)} (block at line ${snippet.line}): TS${d.code}: ${text}`)
      }
    }
    if (problems.length > 0) assert.fail(`\n${problems.join("\n")}\n`)
  }, 60_000)

  it("decodes every JSON reliability config; a block marked invalid is rejected with the message shown", () => {
    const problems: Array<string> = []
    let checked = 0
    for (const document of documents()) {
      const all = blocks(document)
      all.forEach((block, i) => {
        if (block.lang !== "json" || block.marker === "not checked") return
        let json: unknown
        try {
          json = JSON.parse(block.code)
        } catch (e) {
          problems.push(`${where(block)}: not JSON: ${String(e)}`)
          return
        }
        if (!isReliabilityConfig(json)) return
        checked++
        const decoded = Reliability.decode(json, { providers: ["openai", "anthropic"] })
        if (block.marker !== "invalid config") {
          if (Either.isLeft(decoded)) problems.push(`${where(block)}: ${decoded.left.message}`)
          return
        }
        if (Either.isRight(decoded)) {
          problems.push(`${where(block)}: marked invalid, but it decodes`)
          return
        }
        const next = all[i + 1]
        if (next?.lang === "text" && next.code.trim() !== decoded.left.message.trim()) {
          problems.push(`${where(next)}: the message shown is not the one produced:\n${decoded.left.message}`)
        }
      })
    }
    assert.isAbove(checked, 0, "no JSON reliability configs found")
    if (problems.length > 0) assert.fail(`\n${problems.join("\n")}\n`)
  })
})

const configKeys = ["weights", "failover_chain", "max_retries", "timeout", "backoff", "model_messages"]

/** A JSON object with a key of the seed's config (a typo beside them still counts). */
const isReliabilityConfig = (json: unknown): boolean =>
  typeof json === "object" &&
  json !== null &&
  !Array.isArray(json) &&
  Object.keys(json).some((key) => configKeys.includes(key) || configKeys.includes(`${key}s`))
