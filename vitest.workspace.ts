import { defineWorkspace } from "vitest/config"

// Every package's tests run in one vitest invocation (`pnpm test`), resolving
// workspace packages to their TypeScript sources through the "@ironlabsai/source" condition.
export default defineWorkspace(["packages/*/vitest.config.ts", "docs/vitest.config.ts"])
