import { defineConfig } from "vitest/config"

// Shared by every package: resolve workspace packages to their sources, so tests
// never run against a stale build.
export default defineConfig({
  resolve: { conditions: ["@ironlabsai/source"] },
  ssr: { resolve: { conditions: ["@ironlabsai/source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000
  }
})
