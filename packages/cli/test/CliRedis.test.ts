/**
 * `ironlabsai chat --redis` and `ironlabsai demo --redis`, end to end: each
 * chat spawns `src/bin.ts` under tsx against a loopback simulator and a real
 * redis-server (started here, on a free loopback port). A hold one chat
 * process learns (a 429 with retry-after 30 s) is skipped by the next one
 * that shares the Redis, and only by it.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { Effect } from "effect"
import * as Demo from "../src/Demo.js"

import { freePort, type RedisServer, startRedisServer } from "@ironlabsai/testing/RedisServer"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const config = fileURLToPath(new URL("fixtures/shared.json", import.meta.url))
const CANARY = "sk-canary-cli-redis"
const PASSWORD = "s3cret-redis-password"
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
/** A spawn takes a second or two of tsx start-up on an idle machine; far more on a busy one. */
const spawnTimeout = 90_000

// --- A redis-server of our own ----------------------------------------------------------------------------------

// The testing package's redis-server: found (or installed with apt as root), on a free loopback port.
const startRedis = () => startRedisServer()

// --- Running the tool --------------------------------------------------------------------------------------------

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The parent's env without provider or Redis settings, plus the canary keys, the simulator's URLs and `extra`. */
const environment = (sim: Simulator.Simulator, extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(OPENAI|ANTHROPIC|IRONLABSAI)_/.test(name) && name !== "NO_COLOR") env[name] = value
  }
  return {
    ...env,
    OPENAI_API_KEY: CANARY,
    ANTHROPIC_API_KEY: CANARY,
    OPENAI_BASE_URL: sim.openaiBaseUrl,
    ANTHROPIC_BASE_URL: sim.anthropicBaseUrl,
    ...extra
  }
}

/** Runs the tool to its end (killed after 60 s); checks that no key nor password was printed. */
const cli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Promise<Result> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["--conditions=@ironlabsai/source", "--import", "tsx", bin, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (data) => {
      stdout += data
    })
    child.stderr.on("data", (data) => {
      stderr += data
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      assert.notInclude(stdout + stderr, CANARY, "an API key was printed")
      assert.notInclude(stdout + stderr, PASSWORD, "the Redis password was printed")
      resolve({ code, stdout, stderr })
    })
  })

/** The trace's lines, durations and the hold's end normalised: `1. openai/gpt-4o ok N ms`. */
const trace = (stderr: string) =>
  stderr
    .split("\n")
    .filter((line) => line !== "")
    .map((line) =>
      line
        .replace(/\d+ ms/g, "N ms")
        .replace(/until \S+Z/, "until T")
        .replace(/ +/g, " ")
        .trim()
    )

let redis: RedisServer
let sim: Simulator.Simulator

beforeAll(async () => {
  redis = await startRedis()
  sim = await Simulator.start({ openaiApiKey: CANARY, anthropicApiKey: CANARY })
}, 30_000)

afterAll(async () => {
  await sim?.close()
  await redis?.close()
})

/** gpt-4o answers the next call 429 with retry-after 30 s: the run fails over to Haiku. */
const rateLimited = [
  `Model used: ${HAIKU}`,
  "Attempts (2):",
  `1. ${GPT} RateLimited (HTTP 429) N ms Simulated requests.`,
  `2. ${HAIKU} ok N ms`
]

/** gpt-4o is skipped without a call, held until the 429's retry-after runs out. */
const skipped = [
  `Model used: ${HAIKU}`,
  "Attempts (2):",
  `1. ${GPT} skipped: held (RateLimited) N ms until T`,
  `2. ${HAIKU} ok N ms`
]

describe("ironlabsai chat --redis", { timeout: spawnTimeout }, () => {
  it("a hold one chat process learnt is skipped by the next one on the same Redis (the trace says held); without --redis the next one calls gpt-4o again", async () => {
    const prefix = `cli-${randomUUID().slice(0, 8)}`
    const env = environment(sim, { IRONLABSAI_REDIS_PREFIX: prefix })
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
    const first = await cli(["chat", "-c", config, "--redis", redis.url, "Hi"], env)
    assert.strictEqual(first.code, 0, first.stderr)
    assert.deepStrictEqual(trace(first.stderr), rateLimited)

    const calls = sim.requests.length
    const second = await cli(["chat", "-c", config, "--redis", redis.url, "Hi"], env)
    assert.strictEqual(second.code, 0, second.stderr)
    assert.strictEqual(second.stdout, "Simulated answer from claude-3-5-haiku-20241022.\n")
    assert.deepStrictEqual(trace(second.stderr), skipped)
    assert.deepStrictEqual(
      sim.requests.slice(calls).map((request) => request.model),
      ["claude-3-5-haiku-20241022"]
    )

    // Without Redis, each process starts knowing nothing: gpt-4o is called again.
    const alone = await cli(["chat", "-c", config, "Hi"], env)
    assert.strictEqual(alone.code, 0, alone.stderr)
    assert.deepStrictEqual(trace(alone.stderr), [`Model used: ${GPT}`, "Attempts (1):", `1. ${GPT} ok N ms`])
  })

  it("IRONLABSAI_REDIS_URL stands for --redis; --json's health shows the hold the fleet shares", async () => {
    const env = environment(sim, {
      IRONLABSAI_REDIS_URL: redis.url,
      IRONLABSAI_REDIS_PREFIX: `cli-env-${randomUUID().slice(0, 8)}`
    })
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
    const first = await cli(["chat", "-c", config, "Hi"], env)
    assert.strictEqual(first.code, 0, first.stderr)
    assert.deepStrictEqual(trace(first.stderr), rateLimited)
    const second = await cli(["chat", "-c", config, "--json", "Hi"], env)
    assert.strictEqual(second.code, 0, second.stderr)
    const document = JSON.parse(second.stdout) as {
      readonly model: string
      readonly attempts: ReadonlyArray<{ readonly model: string; readonly skip?: { readonly reason: string } }>
      readonly health: ReadonlyArray<{ readonly model: string; readonly state: string; readonly reason?: string }>
    }
    assert.strictEqual(document.model, HAIKU)
    assert.strictEqual(document.attempts[0]?.skip?.reason, "held")
    assert.deepStrictEqual(
      document.health.map((status) => [status.model, status.state, status.reason]),
      [
        [GPT, "held", "RateLimited"],
        [HAIKU, "healthy", undefined]
      ]
    )
  })

  it("Redis down: the request is answered, a warning without the password goes to stderr", async () => {
    const port = await freePort()
    const result = await cli(
      ["chat", "-c", config, "--redis", `redis://app:${PASSWORD}@127.0.0.1:${port}`, "Hi"],
      environment(sim)
    )
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stdout, "Simulated answer from gpt-4o.\n")
    assert.include(result.stderr, "Redis is not reachable yet: routing goes on on local state")
    assert.include(result.stderr, `redis://app:***@127.0.0.1:${port}`)
    assert.include(result.stderr, `Model used: ${GPT}`)
  })

  it("a URL that is not redis:// or rediss:// is a usage error naming the flag, exit 2, nothing sent", async () => {
    const calls = sim.requests.length
    const result = await cli(
      ["chat", "-c", config, "--redis", `https://app:${PASSWORD}@cache.example.com`, "Hi"],
      environment(sim)
    )
    assert.strictEqual(result.code, 2)
    assert.strictEqual(result.stdout, "")
    assert.strictEqual(
      result.stderr,
      '--redis must be a redis://[user:password@]host[:port][/db] or rediss:// URL; got a URL with the scheme "https"\n'
    )
    const fromEnv = await cli(
      ["chat", "-c", config, "Hi"],
      environment(sim, { IRONLABSAI_REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:6379/cache` })
    )
    assert.strictEqual(fromEnv.code, 2)
    assert.strictEqual(
      fromEnv.stderr,
      "IRONLABSAI_REDIS_URL must be a redis://[user:password@]host[:port][/db] or rediss:// URL; got a path that is not a database number\n"
    )
    assert.strictEqual(sim.requests.length, calls)
  })

  it("chat --help and demo --help show --redis", async () => {
    const env = environment(sim)
    const chat = await cli(["chat", "--help"], env)
    assert.strictEqual(chat.code, 0, chat.stderr)
    assert.include(chat.stdout, "[(-v, --verbose)] [--redis text] <prompt>")
    assert.include(chat.stdout, "Share model health (holds, open breakers, the half-open probe)")
    const demo = await cli(["demo", "--help"], env)
    assert.strictEqual(demo.code, 0, demo.stderr)
    assert.include(demo.stdout, "$ ironlabsai demo [--live] [--requests integer] [--redis text]")
  })
})

describe("Demo with redis", () => {
  it("says its state is shared through Redis (without the password), and its numbers still add up", async () => {
    const lines: Array<string> = []
    const url = redis.url.replace("redis://", `redis://demo:${PASSWORD}@`)
    // The server has no password: an AUTH it does not expect fails, and the demo goes on on local state.
    await Effect.runPromise(Demo.run({ requests: 20, write: (text) => lines.push(...text.split("\n")), redis: url }))
    assert.include(lines, `State shared through Redis at ${redis.url.replace("redis://", "redis://demo:***@")}.`)
    assert.notInclude(lines.join("\n"), PASSWORD)
    for (const line of lines) assert.isAtMost([...line].length, 80, line)
    assert.strictEqual(lines.filter((l) => l.includes("with the load balancer") && l.includes("answered")).length, 2)
    assert.include(lines, "  Model used: anthropic/claude-3-5-haiku-20241022")
  }, 90_000)

  it("with a Redis that answers, the demo runs the same", async () => {
    const lines: Array<string> = []
    await Effect.runPromise(
      Demo.run({ requests: 20, write: (text) => lines.push(...text.split("\n")), redis: redis.url })
    )
    assert.include(lines, `State shared through Redis at ${redis.url}.`)
    assert.strictEqual(lines.filter((l) => l.includes("with the load balancer") && l.includes("answered")).length, 2)
    assert.include(lines, "  Salt wind on the glass, / the tide keeps its own time.")
  }, 90_000)
})
