import { defineProject, mergeConfig } from "vitest/config"
import shared from "../vitest.shared.js"
import { writeSnippets } from "./test/snippets.js"

// The guides' @effect/vitest blocks run as tests too: they are written out to
// .snippets/ before vitest looks for test files (test/snippets.test.ts type-checks them all).
writeSnippets()

export default mergeConfig(
  shared,
  defineProject({
    test: { include: ["test/**/*.test.ts", ".snippets/**/*.test.ts"] }
  })
)
