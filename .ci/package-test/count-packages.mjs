// Prints the number of package directories under ./node_modules (scoped and nested included).
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"

const count = (modules) => {
  if (!existsSync(modules)) return 0
  let total = 0
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith(".")) continue
    const dirs = entry.startsWith("@")
      ? readdirSync(join(modules, entry)).map((name) => join(modules, entry, name))
      : [join(modules, entry)]
    for (const dir of dirs) total += 1 + count(join(dir, "node_modules"))
  }
  return total
}
console.log(count("node_modules"))
