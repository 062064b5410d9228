/**
 * `pnpm bench`: IronlabsAI measured side by side, in one run, against raw
 * undici (the physical limit), a hand-written Promise loop and cockatiel, with
 * the simulator in a separate process, on a bad day with model health on and
 * off (badDay.ts), and, simulated under TestClock, the routing strategies'
 * latency and hedging's tail (strategies.ts), and with the Redis store
 * (redis.ts). Writes docs/performance.md; `--only bad-day` (or `latency`,
 * `tail`, `redis`) runs that section alone and writes nothing.
 *
 * Ratios, not absolute numbers, are the result: the machines are shared and
 * noisy, so variants are interleaved round by round and medians are kept.
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { fileURLToPath } from "node:url"
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import {
  type ChatCompletion,
  Deadline,
  IronlabsClient,
  ModelId,
  Provider,
  type Reliability,
  Router
} from "@ironlabsai/core"
import { OpenAiProvider } from "@ironlabsai/openai"
import { Connection, UndiciHttpClient } from "@ironlabsai/http"
import { IronlabsAI } from "ironlabsai"
import { Effect, Either, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { Bench } from "tinybench"
import { Agent } from "undici"
import { badDay, type Goal } from "./badDay.js"
import { cockatielChain, promiseLoop, raw, type Target } from "./baselines.js"
import { MemoryDispatcher } from "./memoryDispatcher.js"
import { redis } from "./redis.js"
import { fixed, load, median, percentile, ratioToRaw } from "./stats.js"
import { latency, tail } from "./strategies.js"

const quick = process.argv.includes("--quick")
/** The sections that run alone (`--only bad-day`, `latency`, `tail` or `redis`), printed but not written to docs/performance.md. */
const alone = { "bad-day": badDay, latency, tail, redis } as const
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined
if (only !== undefined && !Object.hasOwn(alone, only)) {
  console.error(`--only ${only}: the sections that run alone are ${Object.keys(alone).join(", ")}`)
  process.exit(2)
}
/** The issue's targets, filled in as the sections measure them. */
const goals: Array<Goal> = []
const roundMillis = quick ? 500 : 1500
const rounds = quick ? 1 : 5
const lines: Array<string> = []
const out = (line = "") => {
  lines.push(line)
  console.log(line)
}
const targets = () => {
  out()
  out("## Targets")
  out()
  out("| target | wanted | measured | met |")
  out("|---|---|---|---|")
  for (const [name, wanted, measured, met] of goals)
    out(`| ${name} | ${wanted} | ${measured} | ${met ? "yes" : "**no**"} |`)
}

if (only !== undefined) {
  // A partial run: the performance doc is only ever written whole.
  await alone[only as keyof typeof alone]({ quick, out, goals })
  targets()
  console.log(`\n--only ${only}: docs/performance.md not written`)
  process.exit(0)
}

// The simulator, in its own process.
const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("server.ts", import.meta.url))], {
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...process.env, SLOW_MS: "4000" }
})
const [line] = (await once(child.stdout, "data")) as [Buffer]
const { openai: baseURL } = JSON.parse(line.toString().split("\n")[0]!) as { openai: string }
const url = `${baseURL}/chat/completions`

// Configured as UndiciHttpClient.layer's own agent, so both hold the same sockets (one per request in flight).
const agent = new Agent({ keepAliveTimeout: 4_000 })
const request = { messages: [{ role: "user", content: "Hi" }] } as const

/** The success path's config: two models by weight, with retries, timeouts and backoff all set. */
const weighted: Reliability.Input = {
  weights: { "openai/fast": 0.9, "openai/fast2": 0.1 },
  max_retries: { "openai/fast": 2, "openai/fast2": 2 },
  timeout: { "openai/fast": 5, "openai/fast2": 5 },
  backoff: { "openai/fast": 0.5, "openai/fast2": 0.5 }
}

/** Our router over `registry`. */
const clientOver = (registry: Provider.Registry, reliability: Reliability.Input = weighted) =>
  Either.getOrThrow(IronlabsClient.makeWith({ reliability }, registry))

/** A runtime over an HTTP client layer, and our provider and router built on it. */
const stack = (httpLayer: Layer.Layer<HttpClient.HttpClient>) => {
  const runtime = ManagedRuntime.make(httpLayer)
  const provider = runtime.runSync(OpenAiProvider.make({ apiKey: Redacted.make("sk-bench"), baseURL }))
  const registry = Provider.registry({ openai: provider })
  const client = (reliability: Reliability.Input = weighted) => clientOver(registry, reliability)
  return { runtime, provider, client }
}
const call = { model: ModelId.parse("openai/fast")!, request }

const platform = stack(NodeHttpClient.layerUndici)
const lean = stack(UndiciHttpClient.layer)

out("# Performance")
out()
out(`Measured by \`pnpm bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores`)
out(`(${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}, the simulator in a separate`)
out("process on loopback. Variants run interleaved, round by round; medians of the rounds.")
out(quick ? "This was a --quick run: one short round each, numbers are rough." : "")

// (a) Success-path throughput and latency.
out()
out("## (a) Success path: throughput and latency")
out()
out("The ratio is the median over rounds of each round's rate against raw undici's rate in the same")
out("round (the two ran seconds apart), with the lowest and highest round in brackets.")
out()
out("| concurrency | variant | req/s | ratio to raw | p50 ms | p99 ms |")
out("|---|---|---|---|---|---|")
const platformRouter = platform.client()
const leanRouter = lean.client()
// What most users call: the Promise facade, which decodes each request and runs it on its own runtime.
const facade = new IronlabsAI({
  reliability: weighted,
  openai: { apiKey: "sk-bench", baseURL }
})
const variants: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
  ["raw undici.request", () => raw(agent, url, "fast")],
  ["provider alone, UndiciHttpClient", () => lean.runtime.runPromise(lean.provider.complete(call))],
  ["full router, UndiciHttpClient (default)", () => lean.runtime.runPromise(leanRouter.completions.create(request))],
  ["full router, Promise facade `new IronlabsAI`", () => facade.completions.create(request)],
  [
    "full router, platform NodeHttpClient.layerUndici",
    () => platform.runtime.runPromise(platformRouter.completions.create(request))
  ]
]
for (const concurrency of [1, 16, 64]) {
  const results = new Map<string, Array<{ perSecond: number; latencies: ReadonlyArray<number> }>>()
  for (let round = 0; round < rounds; round++) {
    for (const [name, task] of variants) {
      await load(task, concurrency, 200) // warm up
      const result = await load(task, concurrency, roundMillis)
      results.set(name, [...(results.get(name) ?? []), result])
    }
  }
  const rawRates = results.get("raw undici.request")!.map((r) => r.perSecond)
  for (const [name] of variants) {
    const runs = results.get(name)!
    const ratio = ratioToRaw(
      runs.map((r) => r.perSecond),
      rawRates
    )
    if (concurrency === 64 && name.startsWith("full router, UndiciHttpClient")) {
      goals.push(["router throughput at concurrency 64", ">= 0.85x raw", `${ratio.text}`, ratio.median >= 0.85])
    }
    const all = runs.flatMap((r) => r.latencies)
    out(
      `| ${concurrency} | ${name} | ${fixed(median(runs.map((r) => r.perSecond)), 0)} | ${ratio.text} | ${fixed(percentile(all, 50), 2)} | ${fixed(percentile(all, 99), 2)} |`
    )
  }
}

// (b) In-process overhead with a zero-latency in-memory provider.
out()
out("## (b) In-process overhead (zero-latency in-memory provider)")
out()
const completion: ChatCompletion.ChatCompletion = {
  id: "x",
  object: "chat.completion",
  created: 0,
  model: "fast",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }]
}
const memory: Provider.Provider = { complete: () => Effect.succeed(completion), stream: () => Stream.empty }
const memoryClient = clientOver(Provider.registry({ openai: memory }))
// The same provider declaring a cooperative deadline, as providers over UndiciHttpClient do: the deadline
// then costs a FiberRef here and one timer in the HTTP client (measured in (a)), not a fiber.
const nativeClient = clientOver(Provider.registry({ openai: { ...memory, deadline: "cooperative" } }))
const direct = memory.complete(call)
const micro = new Bench({ time: quick ? 300 : 1500, warmup: true })
micro.add("direct provider call (Effect.runPromise)", () => Effect.runPromise(direct))
micro.add("full router, cooperative deadline (as over UndiciHttpClient)", () =>
  Effect.runPromise(nativeClient.completions.create(request))
)
micro.add("full router, Effect.timeout per attempt (any other client)", () =>
  Effect.runPromise(memoryClient.completions.create(request))
)
await micro.run()
out("| variant | p50 µs | mean µs | p99 µs |")
out("|---|---|---|---|")
const microRows = micro.tasks.map((task) => {
  const latency = "latency" in task.result ? task.result.latency : undefined
  return {
    name: task.name,
    p50: (latency?.p50 ?? Number.NaN) * 1000,
    mean: (latency?.mean ?? Number.NaN) * 1000,
    p99: (latency?.p99 ?? Number.NaN) * 1000
  }
})
for (const row of microRows)
  out(`| ${row.name} | ${fixed(row.p50, 2)} | ${fixed(row.mean, 2)} | ${fixed(row.p99, 2)} |`)
const overhead = microRows[1]!.p50 - microRows[0]!.p50
const overheadTimeout = microRows[2]!.p50 - microRows[0]!.p50
goals.push(["in-process overhead, p50", "<= 15 µs", `${fixed(overhead, 1)} µs`, overhead <= 15])
out()
out(
  `Router overhead over a direct call: **${fixed(overhead, 2)} µs** per request at p50 with a cooperative deadline, ${fixed(overheadTimeout, 2)} µs with Effect.timeout, the aggressive way (target: at most 15 µs).`
)

// (b, continued) The same question under load: client-side CPU per request with 16 calls in flight,
// over an in-memory undici dispatcher, so no network and no simulator share the CPU.
out()
out("Under load the same steps cost more than in a tight loop: client-side CPU per request with 16")
out("calls in flight, over an in-memory undici dispatcher that answers on the next loop turn (no")
out("network). Medians of the rounds.")
out()
out("| variant | CPU µs per request | above raw undici.request |")
out("|---|---|---|")
const memoryDispatcher = new MemoryDispatcher(Buffer.from(JSON.stringify(completion)))
// The same client as UndiciHttpClient.layer, over the in-memory dispatcher.
const offline = stack(
  Layer.mergeAll(
    Layer.succeed(HttpClient.HttpClient, UndiciHttpClient.make(memoryDispatcher)),
    Layer.succeed(Deadline.Cooperative, true),
    Layer.succeed(Connection.NoRedirects, true)
  )
)
const offlineRouter = offline.client()
const cpuVariants: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
  ["raw undici.request", () => raw(memoryDispatcher, url, "fast")],
  ["provider alone, UndiciHttpClient", () => offline.runtime.runPromise(offline.provider.complete(call))],
  ["full router, UndiciHttpClient", () => offline.runtime.runPromise(offlineRouter.completions.create(request))]
]
const cpuPer = new Map<string, Array<number>>()
for (let round = 0; round < rounds; round++) {
  for (const [name, task] of cpuVariants) {
    await load(task, 16, 200)
    const before = process.cpuUsage()
    const { latencies } = await load(task, 16, quick ? 300 : 1000)
    const used = process.cpuUsage(before)
    cpuPer.set(name, [...(cpuPer.get(name) ?? []), (used.user + used.system) / latencies.length])
  }
}
const rawCpu = median(cpuPer.get("raw undici.request")!)
for (const [name] of cpuVariants) {
  const cpu = median(cpuPer.get(name)!)
  out(`| ${name} | ${fixed(cpu, 1)} | ${name.startsWith("raw") ? "-" : `+${fixed(cpu - rawCpu, 1)}`} |`)
}
await offline.runtime.dispose()

// (c) Time to fail over.
out()
out("## (c) Time to fail over")
out()
out("The first model hangs (timeout T) or answers 500 (no retries); the second answers at once.")
out("*Failed over* is when the request to the second model reached the simulator (stamped there with")
out("the monotonic clock the two processes share); *answered* adds that model's own reply. Median over")
out("the runs, in ms; the target is T + 2 ms for the failover.")
out()
out("| first model | T ms | IronlabsAI failed over / answered | Promise loop | cockatiel |")
out("|---|---|---|---|---|")
/** The second model's reply carries the `process.hrtime` at which its request arrived, in ns. */
const arrivedAt = (reply: unknown) =>
  BigInt((reply as { choices: ReadonlyArray<{ message: { content: string } }> }).choices[0]!.message.content)
for (const [first, timeoutSeconds] of [
  ["hang", 0.05],
  ["hang", 0.2],
  ["fail", 0.2]
] as const) {
  const reliability: Reliability.Input = {
    failover_chain: [
      { model: `openai/${first}`, max_retries: 0, timeout: timeoutSeconds },
      { model: "openai/stamp", max_retries: 0, timeout: 5 }
    ],
    // Every run must call the first model and fail over from it: with model memory it would be skipped
    // after its third failure (section (g) measures that).
    health: false
  }
  const targets: ReadonlyArray<Target> = [
    { url, model: first, maxRetries: 0, timeoutMs: timeoutSeconds * 1000, backoffMs: 0 },
    { url, model: "stamp", maxRetries: 0, timeoutMs: 5000, backoffMs: 0 }
  ]
  const ours = lean.client(reliability)
  const contenders: ReadonlyArray<() => Promise<unknown>> = [
    () => lean.runtime.runPromise(ours.completions.create(request)),
    promiseLoop(agent, targets),
    cockatielChain(agent, targets)
  ]
  const times = contenders.map(() => ({ failedOver: [] as Array<number>, answered: [] as Array<number> }))
  for (let run = 0; run < (quick ? 5 : 20); run++) {
    for (const [i, task] of contenders.entries()) {
      const start = process.hrtime.bigint()
      const reply = await task()
      times[i]!.answered.push(Number(process.hrtime.bigint() - start) / 1e6)
      times[i]!.failedOver.push(Number(arrivedAt(reply) - start) / 1e6)
    }
  }
  const cells = times.map((t) => `${fixed(median(t.failedOver), 1)} / ${fixed(median(t.answered), 1)}`)
  out(
    `| ${first === "hang" ? "hangs" : "HTTP 500"} | ${first === "hang" ? timeoutSeconds * 1000 : "-"} | ${cells.join(" | ")} |`
  )
  if (first === "hang") {
    const t = timeoutSeconds * 1000
    const failedOver = median(times[0]!.failedOver)
    goals.push([
      `failover after a hang, T = ${t} ms`,
      `<= ${t + 2} ms`,
      `${fixed(failedOver, 1)} ms (answered ${fixed(median(times[0]!.answered), 1)})`,
      failedOver <= t + 2
    ])
  }
}

// (d) Heap per in-flight request.
out()
out("## (d) Heap per in-flight request")
out()
out("Requests held open by a model that answers after 4 s; heap after a forced GC, minus the idle heap.")
out()
out("| in flight | raw undici KB/req | IronlabsAI KB/req | above raw KB/req |")
out("|---|---|---|---|")
const gc = (globalThis as { gc?: () => void }).gc
const slowRouter = lean.client({ failover_chain: [{ model: "openai/slow", timeout: 30 }] })
for (const inFlight of quick ? [1000] : [1000, 10_000]) {
  const heapPer = async (start: () => Promise<unknown>) => {
    gc?.()
    const before = process.memoryUsage().heapUsed
    const pending = Array.from({ length: inFlight }, start)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    gc?.()
    const during = process.memoryUsage().heapUsed
    await Promise.allSettled(pending)
    return (during - before) / inFlight / 1024
  }
  const rawKb = await heapPer(() => raw(agent, url, "slow"))
  const oursKb = await heapPer(() => lean.runtime.runPromise(slowRouter.completions.create(request)))
  out(`| ${inFlight} | ${fixed(rawKb, 2)} | ${fixed(oursKb, 2)} | ${fixed(oursKb - rawKb, 2)} |`)
  goals.push([
    `heap per in-flight request above raw, ${inFlight}`,
    "<= 4 KB",
    `${fixed(oursKb - rawKb, 1)} KB`,
    oursKb - rawKb <= 4
  ])
}
if (gc === undefined) out("\n(Run with --expose-gc for exact numbers; `pnpm bench` does.)")

// (e) Weighted pick.
out()
out("## (e) Weighted pick")
out()
out("| models | ns per pick | largest share error over 1M picks |")
out("|---|---|---|")
for (const count of [2, 8, 64]) {
  const models = Array.from({ length: count }, (_, i) => ({ i, weight: i + 1 }))
  const total = models.reduce((sum, m) => sum + m.weight, 0)
  const picks = new Bench({ time: quick ? 200 : 800 })
  picks.add("pick", () => Router.pickWeighted(models, Math.random()))
  await picks.run()
  const task = picks.tasks[0]!
  const ns = ("latency" in task.result ? task.result.latency.p50 : Number.NaN) * 1e6
  const counts = new Array<number>(count).fill(0)
  const draws = 1_000_000
  for (let k = 0; k < draws; k++) counts[Router.pickWeighted(models, Math.random())!.i]!++
  const error = Math.max(...models.map((m) => Math.abs(counts[m.i]! / draws - m.weight / total)))
  out(`| ${count} | ${fixed(ns, 0)} | ${fixed(error * 100, 3)} % |`)
  if (count === 8) goals.push(["weighted pick, 8 models", "< 200 ns", `${fixed(ns, 0)} ns`, ns < 200])
}
out()
out("The pick inside the router goes through Effect's `Random` service; the number above is the")
out("pure weighted choice.")

// (f) Against what users would use instead, same workload (concurrency 64, success path).
out()
out("## (f) Against a hand-written Promise loop and cockatiel (concurrency 64)")
out()
out("| variant | req/s | ratio to raw |")
out("|---|---|---|")
const chainTargets: ReadonlyArray<Target> = [
  { url, model: "fast", maxRetries: 2, timeoutMs: 5000, backoffMs: 500 },
  { url, model: "fast2", maxRetries: 2, timeoutMs: 5000, backoffMs: 500 }
]
const contenders: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
  ["raw undici.request", () => raw(agent, url, "fast")],
  ["hand-written Promise loop", promiseLoop(agent, chainTargets)],
  ["cockatiel policies", cockatielChain(agent, chainTargets)],
  ["IronlabsAI router", () => lean.runtime.runPromise(leanRouter.completions.create(request))]
]
const rates = new Map<string, Array<number>>()
for (let round = 0; round < rounds; round++) {
  for (const [name, task] of contenders) {
    await load(task, 64, 200)
    rates.set(name, [...(rates.get(name) ?? []), (await load(task, 64, roundMillis)).perSecond])
  }
}
for (const [name] of contenders) {
  const ratio = ratioToRaw(rates.get(name)!, rates.get("raw undici.request")!)
  out(`| ${name} | ${fixed(median(rates.get(name)!), 0)} | ${ratio.text} |`)
}

// (g) A bad day, with model health on and off.
await badDay({ quick, out, goals })

// (h) least_latency against weighted, and (i) hedging's tail: simulated under TestClock.
await latency({ quick, out, goals })
await tail({ quick, out, goals })

// (j) Many instances: the Redis store against the in-memory one, and an open breaker's way across processes.
await redis({ quick, out, goals })

targets()
out()
out(`Command: \`pnpm bench\`${quick ? " -- --quick" : ""}. Sections (a) to (g) need no seeded randomness: every`)
out("variant sees the same simulator and the same workload; (h) and (i) are simulated from fixed seeds.")

await facade.close()
await platform.runtime.dispose()
await lean.runtime.dispose()
await agent.close()
child.kill("SIGTERM")
writeFileSync(fileURLToPath(new URL("../../../docs/performance.md", import.meta.url)), `${lines.join("\n")}\n`)
console.log("\nWrote docs/performance.md")
