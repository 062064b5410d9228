import { defineConfig } from "vitest/config"

// Root options for `pnpm test`; the projects are listed in vitest.workspace.ts.
// The JSON report lets .ci/run print a plain "N passed, N failed" line.
export default defineConfig({
  test: {
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-results.json" }
  }
})
