/**
 * The facade over a real redis-server (started here on a free loopback port)
 * and the loopback simulator: two clients on one Redis share what they learn,
 * the option and the environment variables are checked, a Redis that is down
 * costs a warning and nothing else, and `close()` leaves nothing open.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createConnection } from "node:net"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { freePort, type RedisServer, startRedisServer } from "@ironlabsai/testing/RedisServer"
import { IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const KEY = "sk-facade-redis"
const PASSWORD = "s3cret-redis-password"

// --- A redis-server of our own ----------------------------------------------------------------------------------

/** Sends one inline command and resolves with the raw reply (enough for PING, KEYS, DBSIZE). */
const redisCommand = (port: number, command: string): Promise<string> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    let reply = ""
    const done = () => {
      socket.destroy()
      resolve(reply)
    }
    socket.setTimeout(500, done)
    socket.once("error", done)
    socket.once("connect", () => socket.write(`${command}\r\n`))
    socket.on("data", (chunk) => {
      reply += chunk.toString()
      // A bulk array is complete when its last element's line is in; a short wait covers the rest.
      setTimeout(done, 20)
    })
  })

// The testing package's redis-server: found (or installed with apt as root), on a free loopback port.
const startRedis = () => startRedisServer()

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Polls `check` every 2 ms until it holds; fails after `timeoutMillis`. */
const eventually = async (what: string, check: () => boolean, timeoutMillis = 2_000): Promise<void> => {
  const deadline = Date.now() + timeoutMillis
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMillis} ms waiting for: ${what}`)
    await sleep(2)
  }
}

/**
 * Runs an ES module script in a Node process of its own, from this package's directory (so that it imports
 * `ironlabsai`'s sources), with the simulator's and Redis's URLs in its environment; killed after 20 s (the
 * exit code is then `null`).
 */
const runScript = (
  script: string,
  nodeOptions: ReadonlyArray<string> = []
): Promise<{ readonly code: number | null; readonly output: string }> =>
  new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--conditions=@ironlabsai/source", "--import", "tsx", ...nodeOptions, "--input-type=module", "--eval", script],
      {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        env: {
          ...withoutRedisEnv(process.env),
          SIM_OPENAI: sim.openaiBaseUrl,
          SIM_ANTHROPIC: sim.anthropicBaseUrl,
          REDIS_URL: redis.url
        },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let output = ""
    child.stdout.on("data", (data) => {
      output += data
    })
    child.stderr.on("data", (data) => {
      output += data
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

const withoutRedisEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("IRONLABSAI_REDIS_")))

// --- The tests -----------------------------------------------------------------------------------------------------

let redis: RedisServer
let sim: Simulator.Simulator

beforeAll(async () => {
  redis = await startRedis()
  sim = await Simulator.start({ openaiApiKey: KEY, anthropicApiKey: KEY })
}, 30_000)

afterAll(async () => {
  await sim?.close()
  await redis?.close()
})

const chain = {
  failover_chain: [
    { model: GPT, max_retries: 0 },
    { model: HAIKU, max_retries: 0 }
  ]
}

const providers = () => ({
  openai: { apiKey: KEY, baseURL: sim.openaiBaseUrl },
  anthropic: { apiKey: KEY, baseURL: sim.anthropicBaseUrl }
})

const ask = { messages: [{ role: "user" as const, content: "Describe a sunset." }] }

/** The state `client.health()` gives a model now. */
const stateOf = (client: IronlabsAI, model: string) => client.health().find((status) => status.model === model)?.state

/** Runs `f` with the environment variables set, restoring them after. */
const withEnv = async <A>(vars: Readonly<Record<string, string | undefined>>, f: () => Promise<A>): Promise<A> => {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]))
  const set = (values: Readonly<Record<string, string | undefined>>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
  set(vars)
  try {
    return await f()
  } finally {
    set(saved)
  }
}

/** Whether two facades learn each other's holds: A gets a 429 on gpt-4o, then B asks. */
const holdIsShared = async (a: IronlabsAI, b: IronlabsAI, model: string): Promise<boolean> => {
  sim.script(model.slice(model.indexOf("/") + 1), { status: 429, headers: { "retry-after": "30" } })
  await a.completions.create(ask)
  await sleep(300)
  return stateOf(b, model) === "held"
}

describe("IronlabsAI with redis", () => {
  it("a 429 hold seen by one facade is skipped by another on the same Redis within 100 ms", async () => {
    const prefix = `facade-${randomUUID().slice(0, 8)}`
    const options = { reliability: chain, ...providers(), logger: false as const, redis: { url: redis.url, prefix } }
    const a = new IronlabsAI(options)
    const b = new IronlabsAI(options)
    try {
      // Both answer from gpt-4o first (and so are connected and subscribed).
      for (const client of [a, b]) assert.strictEqual((await client.completions.create(ask)).model, GPT)
      await sleep(200)

      sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
      const failedOver = await a.completions.create(ask)
      const answeredAt = Date.now()
      assert.strictEqual(failedOver.model, HAIKU)
      assert.deepStrictEqual(
        failedOver.attempts.map((attempt) => [attempt.model, attempt.outcome, attempt.error?.status]),
        [
          [GPT, "failure", 429],
          [HAIKU, "success", undefined]
        ]
      )
      // B's local snapshot has the hold within 100 ms of A's answer: health() is synchronous.
      await eventually("B sees gpt-4o held", () => stateOf(b, GPT) === "held", 100)
      assert.isAtMost(Date.now() - answeredAt, 100)
      const held = b.health().find((status) => status.model === GPT)!
      assert.strictEqual(held.reason, "RateLimited")
      assert.closeTo(held.until! - answeredAt, 30_000, 1_000)

      // B's next request skips gpt-4o without calling it.
      const calls = sim.requests.length
      const skipped = await b.completions.create(ask)
      assert.strictEqual(skipped.model, HAIKU)
      assert.deepStrictEqual(
        skipped.attempts.map((attempt) => [attempt.model, attempt.outcome, attempt.skip?.reason]),
        [
          [GPT, "skipped", "held"],
          [HAIKU, "success", undefined]
        ]
      )
      assert.deepStrictEqual(
        sim.requests.slice(calls).map((request) => request.model),
        ["claude-3-5-haiku-20241022"]
      )

      // A facade started now reads the fleet's state of its models as soon as it is connected: it skips
      // gpt-4o from its first request.
      const c = new IronlabsAI(options)
      try {
        await eventually("a new facade sees gpt-4o held", () => stateOf(c, GPT) === "held", 1_000)
        const first = await c.completions.create(ask)
        assert.deepStrictEqual(
          first.attempts.map((attempt) => [attempt.model, attempt.outcome, attempt.skip?.reason]),
          [
            [GPT, "skipped", "held"],
            [HAIKU, "success", undefined]
          ]
        )
      } finally {
        await c.close()
      }
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it("takes a plain URL string, and without a shared prefix two facades share nothing", async () => {
    const prefix = `facade-${randomUUID().slice(0, 8)}`
    const reliability = { failover_chain: [{ model: "openai/gpt-4o-mini", max_retries: 0 }, { model: HAIKU }] }
    const a = new IronlabsAI({ reliability, ...providers(), logger: false, redis: { url: redis.url, prefix } })
    const b = new IronlabsAI({ reliability, ...providers(), logger: false, redis: redis.url })
    try {
      for (const client of [a, b]) await client.completions.create(ask)
      // b uses the default prefix, a its own: separate fleets.
      assert.isFalse(await holdIsShared(a, b, "openai/gpt-4o-mini"))
      assert.include(await redisCommand(redis.port, `KEYS ${prefix}:*`), `${prefix}:{openai/gpt-4o-mini}:health`)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it("IRONLABSAI_REDIS_URL and IRONLABSAI_REDIS_PREFIX configure it when the option is absent; redis: false turns them off", async () => {
    const prefix = `facade-env-${randomUUID().slice(0, 8)}`
    const reliability = { failover_chain: [{ model: "openai/gpt-4.1", max_retries: 0 }, { model: HAIKU }] }
    await withEnv({ IRONLABSAI_REDIS_URL: redis.url, IRONLABSAI_REDIS_PREFIX: prefix }, async () => {
      const explicit = new IronlabsAI({ reliability, ...providers(), logger: false, redis: { url: redis.url, prefix } })
      const fromEnv = new IronlabsAI({ reliability, ...providers(), logger: false })
      const off = new IronlabsAI({ reliability, ...providers(), logger: false, redis: false })
      try {
        for (const client of [explicit, fromEnv, off]) await client.completions.create(ask)
        await sleep(200)
        assert.isTrue(await holdIsShared(explicit, fromEnv, "openai/gpt-4.1"))
        assert.strictEqual(stateOf(off, "openai/gpt-4.1"), "healthy")
      } finally {
        await Promise.all([explicit.close(), fromEnv.close(), off.close()])
      }
    })
  })

  it("an invalid IRONLABSAI_REDIS_URL or IRONLABSAI_REDIS_PREFIX throws at construction, naming the variable", async () => {
    const make = () => new IronlabsAI({ reliability: chain, ...providers(), logger: false })
    await withEnv({ IRONLABSAI_REDIS_URL: `http://user:${PASSWORD}@localhost:6379` }, async () => {
      assert.throws(
        make,
        TypeError,
        'IRONLABSAI_REDIS_URL must be a redis://[user:password@]host[:port][/db] or rediss:// URL; got a URL with the scheme "http"'
      )
    })
    await withEnv({ IRONLABSAI_REDIS_URL: redis.url, IRONLABSAI_REDIS_PREFIX: "a{b}" }, async () => {
      assert.throws(make, TypeError, "IRONLABSAI_REDIS_PREFIX must be a non-empty string without { or }")
    })
    // Empty means unset.
    await withEnv({ IRONLABSAI_REDIS_URL: "" }, async () => {
      await make().close()
    })
  })

  it("checks the option: a TypeError or RangeError naming it, never the password", () => {
    const cases: ReadonlyArray<readonly [unknown, typeof TypeError | typeof RangeError, string]> = [
      [
        42,
        TypeError,
        "redis must be a redis:// or rediss:// URL, an object with url, prefix, strict, minReporters and reconcileInterval, false, or null or undefined; got a number"
      ],
      [true, TypeError, "redis must be a redis:// or rediss:// URL"],
      [[redis.url], TypeError, "got an array"],
      [{}, TypeError, "redis.url must be a redis://[user:password@]host[:port][/db] or rediss:// URL; got undefined"],
      [
        `https://user:${PASSWORD}@example.com`,
        TypeError,
        'redis must be a redis://[user:password@]host[:port][/db] or rediss:// URL; got a URL with the scheme "https"'
      ],
      [
        { url: `redis//:${PASSWORD}@localhost` },
        TypeError,
        "redis.url must be a redis://[user:password@]host[:port][/db] or rediss:// URL; got a string that is not a URL"
      ],
      [{ url: "redis:localhost:6379" }, TypeError, "got a URL without a host"],
      [{ url: `redis://:${PASSWORD}@localhost:6379/cache` }, TypeError, "got a path that is not a database number"],
      [
        { url: `redis://:${PASSWORD}%zz@localhost:6379` },
        TypeError,
        "got a user or password that is not percent-encoded properly"
      ],
      [
        { url: redis.url, prefix: "" },
        TypeError,
        'redis.prefix must be a non-empty string without { or }, or null or undefined; got ""'
      ],
      [
        { url: redis.url, prefix: "{tenant}" },
        TypeError,
        'redis.prefix must be a non-empty string without { or }, or null or undefined; got "{tenant}"'
      ],
      [
        { url: redis.url, strict: "yes" },
        TypeError,
        "redis.strict must be a boolean, or null or undefined; got a string"
      ],
      [{ url: redis.url, minReporters: "2" }, TypeError, "redis.minReporters is an integer >= 1, got a string"],
      [{ url: redis.url, minReporters: 0 }, RangeError, "redis.minReporters is an integer >= 1, got 0"],
      [{ url: redis.url, minReporters: 1.5 }, RangeError, "redis.minReporters is an integer >= 1, got 1.5"],
      [
        { url: redis.url, reconcileInterval: "1s" },
        TypeError,
        "redis.reconcileInterval is a number of seconds > 0, got a string"
      ],
      [
        { url: redis.url, reconcileInterval: 0 },
        RangeError,
        "redis.reconcileInterval is a number of seconds > 0, got 0"
      ],
      [
        { url: redis.url, reconcileIntervalMs: 500 },
        TypeError,
        "redis.reconcileIntervalMs is not a Redis option: they are url, prefix, strict, minReporters and reconcileInterval"
      ]
    ]
    for (const [option, type, message] of cases) {
      let thrown: unknown
      try {
        new IronlabsAI({ reliability: chain, ...providers(), logger: false, redis: option as string })
      } catch (error) {
        thrown = error
      }
      assert.instanceOf(thrown, type, JSON.stringify(option))
      assert.include((thrown as Error).message, message)
      assert.notInclude((thrown as Error).message, PASSWORD)
    }
  })

  it("Redis down at construction: requests succeed on local state, and a warning goes through the facade's logger", async () => {
    const port = await freePort()
    const warnings: Array<{ readonly message: string; readonly fields: Record<string, unknown> }> = []
    const client = new IronlabsAI({
      reliability: chain,
      ...providers(),
      logger: { warn: (message, fields) => warnings.push({ message, fields }) },
      redis: { url: `redis://app:${PASSWORD}@127.0.0.1:${port}`, prefix: `down-${randomUUID().slice(0, 8)}` }
    })
    try {
      assert.deepStrictEqual(
        client.health().map((status) => status.state),
        ["healthy", "healthy"]
      )
      const started = Date.now()
      assert.strictEqual((await client.completions.create(ask)).model, GPT)
      // Not slowed by Redis: no connect timeout is waited for.
      assert.isBelow(Date.now() - started, 1_000)
      // What this process learns still applies to it: a 429 holds gpt-4o locally.
      sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
      assert.strictEqual((await client.completions.create(ask)).model, HAIKU)
      assert.strictEqual(stateOf(client, GPT), "held")
      await eventually("a warning about Redis", () => warnings.some((w) => w.message.includes("Redis")))
      const warning = warnings.find((w) => w.message.includes("Redis"))!
      assert.include(warning.message, "routing goes on on local state")
      assert.strictEqual(warning.fields["redis.url"], `redis://app:***@127.0.0.1:${port}`)
      assert.notInclude(JSON.stringify(warnings), PASSWORD)
    } finally {
      await client.close()
    }
  })

  it("without @ironlabsai/redis installed, redis is an Error naming the package to install", async () => {
    // A resolve hook hides the package, as if it were not installed.
    const hook = [
      "export async function resolve(specifier, context, next) {",
      '  if (specifier === "@ironlabsai/redis") {',
      '    throw Object.assign(new Error("Cannot find package " + specifier), { code: "ERR_MODULE_NOT_FOUND" })',
      "  }",
      "  return next(specifier, context)",
      "}"
    ].join("\n")
    const register = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)})`
    const script = [
      'import { IronlabsAI } from "ironlabsai"',
      'const reliability = { weights: { "openai/gpt-4o": 1 } }',
      "try {",
      `  new IronlabsAI({ reliability, openai: { apiKey: "${KEY}" }, redis: "redis://127.0.0.1:6379" })`,
      "} catch (error) {",
      "  console.log(error.constructor.name + ': ' + error.message)",
      "}",
      `const client = new IronlabsAI({ reliability, openai: { apiKey: "${KEY}" }, redis: false })`,
      "console.log(client.health().length)"
    ].join("\n")
    const { code, output } = await runScript(script, [
      "--import",
      `data:text/javascript,${encodeURIComponent(register)}`
    ])
    assert.strictEqual(code, 0, output)
    assert.strictEqual(
      output,
      "Error: Sharing state through Redis (the redis option or IRONLABSAI_REDIS_URL) needs the @ironlabsai/redis package, which is not installed: npm install @ironlabsai/redis\n1\n"
    )
  }, 30_000)

  it("close() leaves no handle open, and writes what the client learnt just before it: the script exits by itself, its hold is in Redis", async () => {
    const prefix = `close-${randomUUID().slice(0, 8)}`
    const script = [
      'import { IronlabsAI } from "ironlabsai"',
      "const client = new IronlabsAI({",
      `  reliability: ${JSON.stringify(chain)},`,
      `  openai: { apiKey: "${KEY}", baseURL: process.env.SIM_OPENAI },`,
      `  anthropic: { apiKey: "${KEY}", baseURL: process.env.SIM_ANTHROPIC },`,
      "  logger: false,",
      `  redis: { url: process.env.REDIS_URL, prefix: "${prefix}" }`,
      "})",
      "const response = await client.completions.create({ messages: [{ role: 'user', content: 'Hi' }] })",
      "console.log('Model used:', response.model, client.health().map((s) => s.state).join(','))",
      "await client.close()"
    ].join("\n")
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
    const { code, output } = await runScript(script)
    assert.strictEqual(code, 0, `the script did not exit by itself after close():\n${output}`)
    assert.strictEqual(output, `Model used: ${HAIKU} held,healthy\n`)
    assert.include(await redisCommand(redis.port, `HGET ${prefix}:{${GPT}}:health hold_reason`), "RateLimited")
  }, 30_000)
})
