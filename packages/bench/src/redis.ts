/**
 * Section (j) of `pnpm bench`: many instances sharing model health and rate
 * budgets through Redis (`@ironlabsai/redis`), against a redis-server this
 * section starts on a free loopback port (and skips, saying so, when there is
 * none).
 *
 * 1. Success-path throughput at concurrency 64 through the full router over
 *    HTTP to the simulator (in its own process), with the Redis store against
 *    the in-memory one, interleaved round by round: Redis is never on a
 *    request's path (routing reads a local snapshot, outcomes are written
 *    through in the background, budgets are leased ahead), so the ratio should
 *    stay near 1.
 * 2. How long an open breaker takes to reach another process: two child
 *    processes (this file, run with `--redis-child`), each with the Redis
 *    model-health store; A records failures until its breaker opens, B calls
 *    `admit` on every turn of its event loop until it skips the model. Their
 *    times are `process.hrtime`, the monotonic clock the processes share.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { once } from "node:events"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { IronlabsClient, ModelHealth, Provider, type Reliability } from "@ironlabsai/core"
import { UndiciHttpClient } from "@ironlabsai/http"
import { OpenAiProvider } from "@ironlabsai/openai"
import { RedisConnection, RedisHealth, RedisStore } from "@ironlabsai/redis"
import { RedisServer } from "@ironlabsai/testing"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Redacted } from "effect"
import type { Options } from "./badDay.js"
import { fixed, load, median, percentile, ratioToRaw } from "./stats.js"

const self = fileURLToPath(import.meta.url)
const request = { messages: [{ role: "user", content: "Hi" }] } as const
const hrMillis = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))
const quiet = Logger.minimumLogLevel(LogLevel.Error)

/** The success path's config, as in section (a): two models by weight, retries, timeouts and backoff all set. */
const weighted: Reliability.Input = {
  weights: { "openai/fast": 0.9, "openai/fast2": 0.1 },
  max_retries: { "openai/fast": 2, "openai/fast2": 2 },
  timeout: { "openai/fast": 5, "openai/fast2": 5 },
  backoff: { "openai/fast": 0.5, "openai/fast2": 0.5 }
}
/** The same with rate limits far above what the run spends, so that every request reserves and settles. */
const budgeted: Reliability.Input = {
  ...weighted,
  rate_limits: {
    "openai/fast": { rpm: 10_000_000, tpm: 10_000_000_000 },
    "openai/fast2": { rpm: 10_000_000, tpm: 10_000_000_000 }
  }
}

/** A child process of this file, driven by JSON lines: `send` answers with the reply to the command. */
const spawnChild = async (env: Record<string, string>) => {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ["--import", "tsx", self, "--redis-child"], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const waiting = new Map<number, (reply: Record<string, number | string>) => void>()
  let ready: () => void = () => {}
  const started = new Promise<void>((resolve) => {
    ready = resolve
  })
  createInterface({ input: child.stdout }).on("line", (line) => {
    const reply = JSON.parse(line) as Record<string, number | string> & { id?: number }
    if (reply.ready !== undefined) ready()
    else if (reply.id !== undefined) waiting.get(reply.id)?.(reply)
  })
  const exited = once(child, "exit")
  await Promise.race([
    started,
    exited.then(() => Promise.reject(new Error(`the child process exited at start:\n${stderr}`)))
  ])
  let next = 0
  return {
    send: (op: string, model: string) =>
      new Promise<Record<string, number | string>>((resolve) => {
        const id = ++next
        waiting.set(id, (reply) => {
          waiting.delete(id)
          resolve(reply)
        })
        child.stdin.write(`${JSON.stringify({ id, op, model })}\n`)
      }),
    close: async () => {
      child.kill("SIGTERM")
      await exited
    }
  }
}

/** A simulator in its own process (server.ts, as in sections (a) to (f)): its OpenAI base URL, and how to stop it. */
const startSimulator = async () => {
  const server = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("server.ts", import.meta.url))], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const [line] = (await once(server.stdout, "data")) as [Buffer]
  const { openai } = JSON.parse(line.toString().split("\n")[0]!) as { openai: string }
  const exited = once(server, "exit")
  return {
    baseURL: openai,
    close: async () => {
      server.kill("SIGTERM")
      await exited
    }
  }
}

export const redis = async ({ goals, out, quick }: Options): Promise<void> => {
  const started = performance.now()
  out()
  out("## (j) Many instances: the Redis store")
  out()
  let server: RedisServer.RedisServer
  try {
    // Found, or installed with apt when this is root on Debian/Ubuntu.
    server = await RedisServer.startRedisServer()
  } catch (error) {
    out(`Skipped: ${error instanceof Error ? error.message : String(error)}`)
    return
  }
  const sim = await startSimulator()
  const runtimes: Array<{ readonly dispose: () => Promise<void> }> = []
  const children: Array<{ close: () => Promise<void> }> = []
  try {
    const providers = Layer.effect(
      Provider.Providers,
      Effect.map(OpenAiProvider.make({ apiKey: Redacted.make("sk-bench"), baseURL: sim.baseURL }), (openai) =>
        Provider.registry({ openai })
      )
    ).pipe(Layer.provide(UndiciHttpClient.layer))
    const prefix = `bench-${process.pid}-${Date.now()}`
    const memoryRuntime = ManagedRuntime.make(Layer.mergeAll(providers, quiet))
    const redisRuntime = ManagedRuntime.make(
      Layer.mergeAll(providers, RedisStore.layer({ url: server.url, prefix }), quiet)
    )
    runtimes.push(memoryRuntime, redisRuntime)
    // The store connects in the background: measured once it is connected.
    const connection = await redisRuntime.runPromise(RedisConnection.RedisConnection)
    while (!connection.isReady()) await sleep(10)

    const info = String(await redisRuntime.runPromise(connection.command(["INFO", "server"])))
    out(
      `Against redis-server ${/redis_version:(\S+)/.exec(info)?.[1] ?? "?"} on loopback, started by the bench (no persistence).`
    )
    out()
    out("### Success path, concurrency 64: Redis store against the in-memory store")
    out()
    out("The full router over HTTP (UndiciHttpClient) to the simulator in its own process, with the same")
    out("config as (a); *with rate_limits* adds `rpm` and `tpm` limits far above what the run spends, so")
    out("that every request reserves and settles a budget (from a lease of the global bucket, with Redis).")
    out("The ratio is the median over rounds of each round's Redis rate against the in-memory rate in the")
    out("same round (lowest and highest round in brackets).")
    out()
    out("| config | in memory req/s | Redis req/s | ratio | in memory p99 ms | Redis p99 ms |")
    out("|---|---|---|---|---|---|")
    const rounds = quick ? 1 : 5
    const roundMillis = quick ? 500 : 1500
    for (const [name, reliability] of [
      ["health (defaults)", weighted],
      ["health and rate_limits", budgeted]
    ] as const) {
      const memoryClient = await memoryRuntime.runPromise(IronlabsClient.make({ reliability }))
      const redisClient = await redisRuntime.runPromise(IronlabsClient.make({ reliability }))
      const variants = {
        memory: () => memoryRuntime.runPromise(memoryClient.completions.create(request)),
        redis: () => redisRuntime.runPromise(redisClient.completions.create(request))
      }
      const runs = {
        memory: [] as Array<Awaited<ReturnType<typeof load>>>,
        redis: [] as Array<Awaited<ReturnType<typeof load>>>
      }
      // Both warmed up first, so that the first round does not measure the JIT.
      for (const variant of ["memory", "redis"] as const) await load(variants[variant], 64, quick ? 300 : 1000)
      for (let round = 0; round < rounds; round++) {
        // Each round in turn starts with the other variant.
        for (const variant of round % 2 === 0 ? (["memory", "redis"] as const) : (["redis", "memory"] as const)) {
          await load(variants[variant], 64, 200)
          runs[variant].push(await load(variants[variant], 64, roundMillis))
        }
      }
      const rates = (variant: "memory" | "redis") => runs[variant].map((run) => run.perSecond)
      const p99 = (variant: "memory" | "redis") =>
        percentile(
          runs[variant].flatMap((run) => run.latencies),
          99
        )
      const ratio = ratioToRaw(rates("redis"), rates("memory"))
      out(
        `| ${name} | ${fixed(median(rates("memory")), 0)} | ${fixed(median(rates("redis")), 0)} | ${ratio.text} | ${fixed(p99("memory"), 2)} | ${fixed(p99("redis"), 2)} |`
      )
      goals.push([
        `Redis store throughput, concurrency 64, ${name}`,
        ">= 0.95x in memory",
        ratio.text,
        ratio.median >= 0.95
      ])
    }

    out()
    out("### An open breaker, from one process to another")
    out()
    const trials = quick ? 20 : 50
    out(`Two processes with the Redis model-health store (pub/sub on, defaults otherwise). For each of ${trials}`)
    out("models in turn (after 3 not counted), A records failures until its breaker opens; B calls `admit`")
    out("on every turn of its event loop until the model is skipped. The time is from the record that opened")
    out("the breaker in A to B's first skip (the processes share the monotonic clock).")
    out()
    const env = { REDIS_URL: server.url, REDIS_PREFIX: `${prefix}-propagation` }
    const [a, b] = await Promise.all([spawnChild(env), spawnChild(env)])
    children.push(a, b)
    const latencies: Array<number> = []
    let missed = 0
    const warmUps = 3
    for (let trial = -warmUps; trial < trials; trial++) {
      const model = `openai/m${trial + warmUps}`
      const skipped = b.send("watch", model)
      await sleep(20)
      const opened = await a.send("open", model)
      const seen = await skipped
      // The first trials load the scripts into Redis and warm both processes up: not counted.
      if (trial < 0) continue
      if (typeof seen.at !== "number" || typeof opened.at !== "number") missed++
      else latencies.push(seen.at - opened.at)
    }
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    out("| trials | p50 ms | p99 ms | max ms | not seen within 3 s |")
    out("|---|---|---|---|---|")
    out(`| ${trials} | ${fixed(p50, 2)} | ${fixed(p99, 2)} | ${fixed(Math.max(...latencies), 2)} | ${missed} |`)
    goals.push([
      "open breaker reaches another process (pub/sub), p99",
      "<= 100 ms",
      `${fixed(p99, 2)} ms (p50 ${fixed(p50, 2)} ms)`,
      missed === 0 && p99 <= 100
    ])
    out()
    out(`This section took ${fixed((performance.now() - started) / 1000, 1)} s.`)
  } finally {
    await Promise.all(children.map((child) => child.close()))
    for (const runtime of runtimes) await runtime.dispose()
    await sim.close()
    await server.close()
  }
}

/**
 * The child process of the propagation measurement: one Redis model-health
 * store; `open` records failures until the breaker opens (answers when, by
 * `process.hrtime`), `watch` calls `admit` on every turn of the event loop
 * until the model is skipped (answers when, or nothing after 3 s).
 */
const child = async () => {
  const runtime = ManagedRuntime.make(
    RedisHealth.layer().pipe(
      Layer.provideMerge(RedisConnection.layer({ url: process.env.REDIS_URL!, prefix: process.env.REDIS_PREFIX! })),
      Layer.provide(quiet)
    )
  )
  const connection = await runtime.runPromise(RedisConnection.RedisConnection)
  while (!connection.isReady()) await sleep(10)
  const store = await runtime.runPromise(RedisHealth.ModelHealthStore)
  const health = store.make({ health: ModelHealth.defaultPolicy, retryBudget: ModelHealth.defaultRetryBudget })
  const reply = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`)

  const open = async (id: number, model: string) => {
    for (let i = 0; i < 10; i++) {
      const change = await runtime.runPromise(
        health.record({ _tag: "Failure", model, startedAt: Date.now(), probe: false, reason: "ServerError" })
      )
      if (change?.state === "open") return reply({ id, at: hrMillis() })
    }
    reply({ id, error: "the breaker did not open" })
  }
  const watch = (id: number, model: string) => {
    const deadline = Date.now() + 3_000
    const turn = () => {
      if (health.admit(model, Date.now())._tag === "Skip") return reply({ id, at: hrMillis() })
      if (Date.now() > deadline) return reply({ id, timedOut: true })
      setImmediate(turn)
    }
    turn()
  }
  createInterface({ input: process.stdin }).on("line", (line) => {
    const { id, op, model } = JSON.parse(line) as { id: number; op: string; model: string }
    if (op === "open") void open(id, model)
    else watch(id, model)
  })
  process.on("SIGTERM", () => void runtime.dispose().then(() => process.exit(0)))
  reply({ ready: true })
}

if (process.argv[1] === self && process.argv.includes("--redis-child")) await child()
