/**
 * The vitest global setup of @ironlabsai/redis: one redis-server for the
 * whole run, on a free loopback port, its URL given to the tests as
 * `inject("redisUrl")`. Tests that stop Redis start their own with
 * `startRedisServer` (./servers.ts).
 */
import type { TestProject } from "vitest/node"
import { startRedisServer } from "@ironlabsai/testing/RedisServer"

declare module "vitest" {
  export interface ProvidedContext {
    readonly redisUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startRedisServer()
  project.provide("redisUrl", server.url)
  return () => server.close()
}
