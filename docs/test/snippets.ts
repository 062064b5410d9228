/**
 * The code blocks of the README and of the guides in `docs/`, and the
 * `@example` of every module and export in the packages' sources, extracted so
 * that CI checks every one of them: TypeScript blocks are written out as
 * modules under `docs/.snippets/` and type-checked, blocks that are
 * `@effect/vitest` tests also run as tests, and JSON reliability configs are
 * decoded.
 *
 * Markers, an HTML comment on the line before a fence:
 * - `<!-- not checked -->`: a block that is intentionally partial;
 * - `<!-- invalid config -->`: a JSON config that must be rejected; when a
 *   ```text block follows it, that block is the exact error message.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** `/work/main`: the repository root. */
export const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")

/** Where TypeScript blocks are written, inside `docs/` so that its dependencies resolve. */
export const outDir = Path.join(root, "docs", ".snippets")

/** The documents whose blocks are checked, relative to the root. */
export const documents = (): ReadonlyArray<string> => [
  "README.md",
  ...Fs.readdirSync(Path.join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`)
]

export type Marker = "not checked" | "invalid config"

export interface Block {
  /** The document, relative to the root. */
  readonly document: string
  /** The 1-based line of the opening fence; the code's line i is the document's line `line + i`. */
  readonly line: number
  readonly lang: string
  readonly code: string
  readonly marker: Marker | undefined
}

const fence = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/
const marker = /^\s*<!--\s*(not checked|invalid config)\s*-->\s*$/

/** Every fenced block of a document, in order, with the marker on the line before it. */
export const blocks = (document: string): ReadonlyArray<Block> => {
  const lines = Fs.readFileSync(Path.join(root, document), "utf8").split("\n")
  const found: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = fence.exec(lines[i]!)
    if (open === null) continue
    const [, indent = "", ticks = "", lang = ""] = open
    let end = i + 1
    while (end < lines.length && !lines[end]!.trimStart().startsWith(ticks)) end++
    const code = lines
      .slice(i + 1, end)
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()))
      .join("\n")
    const previous = i > 0 ? marker.exec(lines[i - 1]!) : null
    found.push({ document, line: i + 1, lang: lang.toLowerCase(), code, marker: previous?.[1] as Marker | undefined })
    i = end
  }
  return found
}

/** The TypeScript sources of the packages whose `@example`s are checked, relative to the root. */
export const sources = (): ReadonlyArray<string> =>
  Fs.readdirSync(Path.join(root, "packages"))
    .filter((pkg) => Fs.existsSync(Path.join(root, "packages", pkg, "src")))
    .sort()
    .flatMap((pkg) =>
      (Fs.readdirSync(Path.join(root, "packages", pkg, "src"), { recursive: true }) as Array<string>)
        .filter((file) => file.endsWith(".ts"))
        .sort()
        .map((file) => `packages/${pkg}/src/${file}`)
    )

/**
 * Every `@example` in a source file's JSDoc comments: the comment's lines after
 * the tag, up to the next tag or the end of the comment, without their ` * `
 * and without code fences.
 */
export const examples = (source: string): ReadonlyArray<Block> => {
  const lines = Fs.readFileSync(Path.join(root, source), "utf8").split("\n")
  const found: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s*@example\b/.test(lines[i]!)) continue
    let end = i + 1
    while (end < lines.length && !/^\s*\*\s*@\w/.test(lines[end]!) && !/^\s*\*\//.test(lines[end]!)) end++
    const code = lines
      .slice(i + 1, end)
      .map((line) => line.replace(/^\s*\* ?/, ""))
      .filter((line) => !/^\s*(`{3,}|~{3,})/.test(line))
      .join("\n")
    found.push({ document: source, line: i + 1, lang: "ts", code, marker: undefined })
    i = end - 1
  }
  return found
}

/** A TypeScript block, written out as a module. */
export interface Snippet extends Block {
  /** Absolute path of the module. */
  readonly file: string
  /** Whether it is an `@effect/vitest` test, which vitest also runs. */
  readonly isTest: boolean
}

const isTypeScript = (block: Block) => block.lang === "ts" || block.lang === "typescript"

const isTestCode = (code: string) => /from\s+["'](@effect\/vitest|vitest)["']/.test(code)

/**
 * Writes every checked TypeScript block as its own module (`export {}` appended,
 * so that top-level await works), removes modules of blocks that are gone, and
 * leaves unchanged files alone, so that it is cheap and safe to call twice.
 */
export const writeSnippets = (): ReadonlyArray<Snippet> => {
  const all = [...documents().flatMap(blocks), ...sources().flatMap(examples)]
  const snippets = all
    .filter((block) => isTypeScript(block) && block.marker !== "not checked")
    .map((block): Snippet => {
      const isTest = isTestCode(block.code)
      const name = `${block.document.replace(/\.(md|ts)$/, "").replaceAll("/", "_")}.L${block.line}${isTest ? ".test" : ""}.ts`
      return { ...block, file: Path.join(outDir, name), isTest }
    })
  Fs.mkdirSync(outDir, { recursive: true })
  const wanted = new Set(snippets.map((snippet) => Path.basename(snippet.file)))
  for (const name of Fs.readdirSync(outDir)) {
    if (!wanted.has(name)) Fs.rmSync(Path.join(outDir, name), { force: true })
  }
  for (const snippet of snippets) {
    const text = `${snippet.code}\nexport {} // ${snippet.document}:${snippet.line}: edit the guide, not this file\n`
    const current = Fs.existsSync(snippet.file) ? Fs.readFileSync(snippet.file, "utf8") : undefined
    if (current !== text) Fs.writeFileSync(snippet.file, text)
  }
  return snippets
}
