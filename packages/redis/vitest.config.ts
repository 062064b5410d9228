import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

// The tests run against a real redis-server, started once for the run (test/setup/redisServer.ts).
export default mergeConfig(shared, defineProject({ test: { globalSetup: ["./test/setup/redisServer.ts"] } }))
