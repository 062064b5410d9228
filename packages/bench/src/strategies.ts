/**
 * Sections (h) and (i) of `pnpm bench`: routing strategies and hedging,
 * simulated under `TestClock` with scripted providers (`@ironlabsai/testing`)
 * and seeded randomness, so they take no sockets and seconds of wall time for
 * a minute of simulated traffic, and give the same figures on every machine.
 *
 * 1. Latency: a slow and a fast model by equal weight, `weighted` against
 *    `least_latency` against the fast model alone (the issue's goal:
 *    least_latency's mean within 1.3x of the fast model alone).
 * 2. Tail: a model that sometimes stalls before its first token beside a
 *    steady one, without hedging and with `hedge.delay` 0.5 s and `"p95"`:
 *    p99, and the extra calls hedging spent.
 *
 * Requests arrive as a Poisson stream at a fixed rate and overlap, so calls in
 * flight count as they do in production. Each model's latencies are a seeded
 * sequence, the same in every variant (a model's n-th call takes the same time
 * whichever variant made it), and so are the arrivals and the router's
 * `Random`. The variants run concurrently: `TestClock` spends its wall time
 * waiting for fibers to settle between steps, not on the CPU.
 */
import { type Attempt, IronlabsClient, ModelHealth, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Clock, Duration, Effect, Either, Fiber, Random, TestClock, TestContext } from "effect"
import type { Options } from "./badDay.js"
import { fixed, percentile } from "./stats.js"

const request = { messages: [{ role: "user", content: "Hi" }] } as const
/** Requests per simulated second. */
const perSecond = 20

/** A small deterministic generator (mulberry32): uniform in [0, 1). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Log-normal millis with median `p50Millis` and shape `sigma` (Box-Muller over `random`). */
const logNormal = (random: () => number, p50Millis: number, sigma: number) => () => {
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  return Math.max(1, Math.round(p50Millis * Math.exp(sigma * z)))
}

/** Arrival times in millis of a Poisson stream at `perSecond` over `seconds`, whole millis (seeded). */
const poisson = (seconds: number, seed: number): ReadonlyArray<number> => {
  const random = seeded(seed)
  const arrivals: Array<number> = []
  for (let at = 0; ; ) {
    at += (-Math.log(1 - random()) * 1000) / perSecond
    if (at >= seconds * 1000) return arrivals
    arrivals.push(Math.round(at))
  }
}

/** A model's script: `count` calls, each answering after the millis `next` gives. */
const delays = (count: number, next: () => number) =>
  Array.from({ length: count }, () => ScriptedProvider.delay(Duration.millis(next())))

/** One request's result: its latency in simulated millis, the model that answered (undefined: it failed), its attempts. */
interface Result {
  readonly millis: number
  readonly model: string | undefined
  readonly attempts: ReadonlyArray<Attempt.Attempt>
}

/**
 * Plays `arrivals` against a client over `script` under `TestClock`: each
 * request forked at its arrival time, the clock then run until every one has
 * settled. Returns every request's result and the calls the providers saw.
 */
const simulate = (
  reliability: Reliability.Input,
  script: Readonly<Record<string, ReadonlyArray<ScriptedProvider.Outcome>>>,
  arrivals: ReadonlyArray<number>,
  /** The router's `Random`: the same seed in every variant of a workload. */
  randomSeed: number
) => {
  const scripted = ScriptedProvider.make(script)
  // Model health without holds or breakers (nothing here fails); it still counts calls in flight and latencies.
  const client = Either.getOrThrow(
    IronlabsClient.makeWith({ reliability }, scripted.registry, ModelHealth.unsafeMakeMemory({}))
  )
  const one = Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const answer = yield* Effect.either(client.completions.create(request))
    const millis = (yield* Clock.currentTimeMillis) - start
    return Either.match(answer, {
      onLeft: (error): Result => ({ millis, model: undefined, attempts: "attempts" in error ? error.attempts : [] }),
      onRight: (completion): Result => ({ millis, model: completion.model, attempts: completion.attempts })
    })
  })
  const program = Effect.gen(function* () {
    const fibers: Array<Fiber.RuntimeFiber<Result>> = []
    let now = 0
    for (const at of arrivals) {
      if (at > now) {
        yield* TestClock.adjust(Duration.millis(at - now))
        now = at
      }
      fibers.push(yield* Effect.fork(one))
    }
    while (fibers.some((fiber) => fiber.unsafePoll() === null)) yield* TestClock.adjust("1 second")
    return yield* Fiber.joinAll(fibers)
  })
  return Effect.runPromise(
    program.pipe(Effect.withRandom(Random.make(randomSeed)), Effect.provide(TestContext.TestContext))
  ).then((results) => ({ results, calls: scripted.calls.length }))
}

const mean = (values: ReadonlyArray<number>) => values.reduce((sum, v) => sum + v, 0) / values.length
const share = (results: ReadonlyArray<Result>, model: string) =>
  (100 * results.filter((r) => r.model === model).length) / results.length
/** Typed wide on purpose: `"cancelled"` is the outcome of an attempt a hedge beat, once hedging records it. */
const isCancelled = (attempt: { readonly outcome: string }) => attempt.outcome === "cancelled"

/** Section (h): least_latency against weighted and the fast model alone. */
export const latency = async ({ goals, out, quick }: Options): Promise<void> => {
  const started = performance.now()
  const seconds = quick ? 30 : 60
  const slowP50 = 2000
  const fastP50 = 200
  const sigma = 0.5
  /** Independent workloads (arrivals, each model's latencies, the router's draws): the goal sits close to the figure. */
  const workloads = quick ? [1] : [1, 2, 3]
  const both = { "openai/slow": 1, "openai/fast": 1 }
  const variants: ReadonlyArray<readonly [string, Reliability.Input]> = [
    ["weighted (default)", { weights: both }],
    ["least_latency", { weights: both, routing_strategy: "least_latency" }],
    ["fast model alone", { weights: { "openai/fast": 1 } }]
  ]
  const runs = await Promise.all(
    workloads.map((workload) => {
      const arrivals = poisson(seconds, 10 * workload)
      // Every model's script is long enough to answer every request, and the same in every variant.
      const script = () => ({
        "openai/slow": delays(arrivals.length, logNormal(seeded(10 * workload + 1), slowP50, sigma)),
        "openai/fast": delays(arrivals.length, logNormal(seeded(10 * workload + 2), fastP50, sigma))
      })
      return Promise.all(
        variants.map(([, reliability]) => simulate(reliability, script(), arrivals, 10 * workload + 3))
      )
    })
  )
  /** A variant's results over every workload. */
  const pooled = (variant: number) => runs.flatMap((workload) => workload[variant]!.results)
  const meanOf = (results: ReadonlyArray<Result>) => mean(results.map((r) => r.millis))
  const requests = runs.reduce((sum, workload) => sum + workload[0]!.results.length, 0)

  out()
  out("## (h) Latency: least_latency against weighted")
  out()
  out(`Simulated under TestClock with scripted providers (no sockets): two models by equal weight, \`openai/slow\` and`)
  out(
    `\`openai/fast\`, whose times to answer are log-normal with medians ${slowP50} ms and ${fastP50} ms (sigma ${sigma}: p95 is`
  )
  out(
    `${fixed(Math.exp(1.645 * sigma), 2)}x the median, the mean ${fixed(Math.exp((sigma * sigma) / 2), 2)}x), a seeded sequence per model that every variant replays. Requests arrive as a`
  )
  out(
    `seeded Poisson stream, ${perSecond} a second for ${seconds} simulated seconds, and overlap, so calls in flight count: \`least_latency\``
  )
  out("draws two models by weight and takes the lower peak-EWMA latency x (calls in flight + 1) / weight.")
  out(
    `The model health store has no holds or breakers (nothing fails here). ${workloads.length === 1 ? "One workload" : `${workloads.length} workloads with different seeds, pooled`}`
  )
  out(`(${requests} requests per variant). Read the mean against the fast model alone, the physical limit: the goal is`)
  out("least_latency within 1.3x of it.")
  out()
  out("| routing | mean ms | p50 ms | p95 ms | p99 ms | answered by fast | answered by slow | mean / fast alone |")
  out("|---|---|---|---|---|---|---|---|")
  const fastAlone = meanOf(pooled(2))
  for (const [i, [name]] of variants.entries()) {
    const results = pooled(i)
    const millis = results.map((r) => r.millis)
    const failed = results.filter((r) => r.model === undefined).length
    out(
      `| ${name}${failed > 0 ? ` (${failed} failed)` : ""} | ${fixed(mean(millis), 0)} | ${fixed(percentile(millis, 50), 0)} | ${fixed(percentile(millis, 95), 0)} | ${fixed(percentile(millis, 99), 0)} | ${fixed(share(results, "openai/fast"), 1)} % | ${fixed(share(results, "openai/slow"), 1)} % | ${fixed(mean(millis) / fastAlone, 2)}x |`
    )
  }
  const ratio = meanOf(pooled(1)) / fastAlone
  const perWorkload = runs.map((workload) => meanOf(workload[1]!.results) / meanOf(workload[2]!.results))
  const range =
    perWorkload.length > 1
      ? ` (per workload ${fixed(Math.min(...perWorkload), 2)}-${fixed(Math.max(...perWorkload), 2)}x)`
      : ""
  goals.push([
    "least_latency mean latency, against the fast model alone",
    "<= 1.3x",
    `${fixed(ratio, 2)}x${range}`,
    ratio <= 1.3
  ])
  out()
  out(
    `least_latency's mean is **${fixed(ratio, 2)}x** the fast model's alone${range} (goal: at most 1.3x${ratio <= 1.3 ? ", met" : ", **not met**"}).`
  )
  out(`This section took ${fixed((performance.now() - started) / 1000, 1)} s.`)
}

/** Section (i): the tail, with and without hedging. */
export const tail = async ({ out, quick }: Options): Promise<void> => {
  const started = performance.now()
  const seconds = quick ? 30 : 60
  const stallRate = 0.1
  const stallMillis = 10_000
  const answerMillis = 300
  const steadyMillis = 400
  const arrivals = poisson(seconds, 4)
  // Hedges add calls: room for every request to call each model twice.
  const script = () => {
    const stalls = seeded(5)
    return {
      "openai/stalls": delays(2 * arrivals.length, () => (stalls() < stallRate ? stallMillis : answerMillis)),
      "openai/steady": delays(2 * arrivals.length, () => steadyMillis)
    }
  }
  const weights = { "openai/stalls": 1, "openai/steady": 1 }
  const variants: ReadonlyArray<readonly [string, Reliability.Input]> = [
    ["no hedging", { weights }],
    ["`hedge: { delay: 0.5 }`", { weights, hedge: { delay: 0.5 } }],
    ['`hedge: { delay: "p95" }`', { weights, hedge: { delay: "p95" } }]
  ]
  const runs = await Promise.all(variants.map(([, reliability]) => simulate(reliability, script(), arrivals, 6)))

  out()
  out("## (i) Tail: hedging")
  out()
  out(
    `Simulated like (h): two models by equal weight; \`openai/stalls\` waits ${stallMillis / 1000} s before its first token on ${stallRate * 100}% of its calls`
  )
  out(
    `(a seeded draw per call) and otherwise answers in ${answerMillis} ms; \`openai/steady\` answers in ${steadyMillis} ms. ${perSecond} requests a second`
  )
  out(
    `for ${seconds} simulated seconds (${arrivals.length} requests, Poisson), without hedging and with \`hedge.delay\` 0.5 s and \`"p95"\``
  )
  out("(each model's recent times to first token), `max_hedges` and `budget` left at their defaults (1 and 0.05). Read")
  out(
    `p99 and *waited out a stall* (answered after ${stallMillis / 1000} s or more) for what hedging saves, and the calls for what it spends:`
  )
  out("*provider calls* is every call the providers received, per request; *cancelled* the attempts a hedge")
  out('beat (outcome `"cancelled"` in the answers\' `attempts`); *hedged* the requests that made more than one call.')
  out()
  out(
    "| hedging | p50 ms | p95 ms | p99 ms | max ms | waited out a stall | provider calls per request | cancelled | hedged requests |"
  )
  out("|---|---|---|---|---|---|---|---|---|")
  const percent = (count: number, of: number) => `${count} (${fixed((100 * count) / of, 1)} %)`
  const idle: Array<string> = []
  for (const [i, [name, reliability]] of variants.entries()) {
    const { results, calls } = runs[i]!
    const millis = results.map((r) => r.millis)
    const failed = results.filter((r) => r.model === undefined).length
    const stalled = millis.filter((ms) => ms >= stallMillis).length
    const cancelled = results.reduce((sum, r) => sum + r.attempts.filter(isCancelled).length, 0)
    const hedged = results.filter((r) => r.attempts.filter((a) => a.outcome !== "skipped").length > 1).length
    if (reliability.hedge !== undefined && calls === results.length) idle.push(name)
    out(
      `| ${name}${failed > 0 ? ` (${failed} failed)` : ""} | ${fixed(percentile(millis, 50), 0)} | ${fixed(percentile(millis, 95), 0)} | ${fixed(percentile(millis, 99), 0)} | ${fixed(Math.max(...millis), 0)} | ${percent(stalled, results.length)} | ${fixed(calls / results.length, 3)} (${calls} for ${results.length}) | ${cancelled} | ${percent(hedged, results.length)} |`
    )
  }
  out()
  if (idle.length > 0) {
    out(
      `${idle.join(" and ")}: not one extra call, so no hedge was sent; in a build that does not hedge yet, these rows are the unhedged run again.`
    )
  }
  out(`This section took ${fixed((performance.now() - started) / 1000, 1)} s.`)
}
