/**
 * Section (g) of `pnpm bench`: a bad day, measured side by side with model
 * health on (the defaults) and off (`health: false, retry_budget: false`),
 * through the router over HTTP (`UndiciHttpClient`, the default client) to the
 * simulator. Three measurements:
 *
 * 1. the issue's bad day: two models by weight, the first hangs past its
 *    timeout, then answers 429 with retry-after 90 s, then recovers; the other
 *    answers in 50 ms. A fixed number of requests at concurrency 16: answered,
 *    p50/p95/p99 and the calls the simulator received for the broken model;
 * 2. the time a recovered model takes to get its weight's share of answers
 *    back, under paced load, with health on;
 * 3. sequential requests through a chain whose first model hangs.
 *
 * The simulator runs in this process here, not in the child process of the
 * other sections: each run is a timeline (hang, then 429, then recovery) that
 * must start with the run, and the calls spent on the broken model are read
 * from the simulator's record of requests. Both would need a control channel
 * to the child. Its CPU cost (a few hundred requests a second at most) is small
 * beside latencies of 50 ms to seconds, unlike in the success-path sections,
 * where it would compete with the client being measured.
 */
import { IronlabsClient, type ModelHealth, Provider, type Reliability } from "@ironlabsai/core"
import { OpenAiProvider } from "@ironlabsai/openai"
import { Simulator } from "@ironlabsai/testing"
import { UndiciHttpClient } from "@ironlabsai/http"
import { Effect, Either, Fiber, Layer, Logger, LogLevel, ManagedRuntime, Redacted, Stream } from "effect"
import { fixed, median, percentile } from "./stats.js"

/** A row of the bench's targets table: target, wanted, measured, met. */
export type Goal = readonly [string, string, string, boolean]

export interface Options {
  readonly quick: boolean
  readonly out: (line?: string) => void
  readonly goals: Array<Goal>
}

const request = { messages: [{ role: "user", content: "Hi" }] } as const
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The healthy model's latency, and the recovered model's. */
const latencyMs = 50
/** The bad day's timeline for the broken model, from the start of each run. */
const hangMs = 5000
const rateLimitedMs = 10_000
const concurrency = 16
/** The recovery measurement: paced load, and the breaker's first open period (`health.open_for`). */
const perSecond = 50
const openForSeconds = 1
/** A recovered model has its share back when its share of answers over a sliding 1 s window reaches this part of its weight. */
const shareWanted = 0.8

/** The seed's shape: every model with max_retries 2, timeout 2 s, backoff 0.5 s. */
const seedLike = (weights: Record<string, number>): Reliability.Input => {
  const each = (value: number) => Object.fromEntries(Object.keys(weights).map((model) => [model, value]))
  return { weights, max_retries: each(2), timeout: each(2), backoff: each(0.5) }
}
const healthOff = { health: false, retry_budget: false } as const

/** `median (lowest-highest)` over runs, or the one value. */
const spread = (values: ReadonlyArray<number>, digits: number) =>
  values.length > 1
    ? `${fixed(median(values), digits)} (${fixed(Math.min(...values), digits)}-${fixed(Math.max(...values), digits)})`
    : fixed(values[0] ?? Number.NaN, digits)

export const badDay = async ({ goals, out, quick }: Options): Promise<void> => {
  const started = performance.now()
  // The router's warnings (a breaker opened) would be console output inside the measurement.
  const runtime = ManagedRuntime.make(Layer.merge(UndiciHttpClient.layer, Logger.minimumLogLevel(LogLevel.Error)))
  /** Our router, over a provider pointed at `sim`, with a fresh model health. */
  const routerOver = (sim: Simulator.Simulator, reliability: Reliability.Input) => {
    const provider = runtime.runSync(
      OpenAiProvider.make({ apiKey: Redacted.make("sk-bench"), baseURL: sim.openaiBaseUrl })
    )
    return Either.getOrThrow(IronlabsClient.makeWith({ reliability }, Provider.registry({ openai: provider })))
  }
  /** One request: the answering model's id, or `undefined` when the router gave up. */
  const ask = (client: IronlabsClient.Service) =>
    runtime.runPromise(client.completions.create(request)).then(
      (completion) => completion.model,
      () => undefined
    )

  const total = quick ? 200 : 600
  const rounds = quick ? 1 : 2
  const trials = quick ? 1 : 3

  out()
  out("## (g) Bad day: model health on vs off")
  out()
  out("Through the router over HTTP (UndiciHttpClient) to a simulator in this process: it plays a")
  out("timeline that starts with each run and counts the calls each model received (skips are not")
  out("calls). Every model has the seed's shape of settings: max_retries 2, timeout 2 s, backoff 0.5 s.")
  out("*Health on* is the default config; *off* adds `health: false, retry_budget: false`.")
  out()
  out(`Two models by weight, \`openai/broken\` 0.7 and \`openai/healthy\` 0.3. The broken one hangs for the`)
  out(
    `first ${hangMs / 1000} s, answers 429 with \`retry-after: 90\` until ${(hangMs + rateLimitedMs) / 1000} s, then answers normally;`
  )
  out(`the healthy one answers in ${latencyMs} ms. ${total} requests, ${concurrency} at a time (closed loop);`)
  out(
    `${rounds === 1 ? "one run of each" : `${rounds} runs of each, interleaved (on, off, then off, on)`}; latencies over all runs, calls on the broken model per run${rounds === 1 ? "" : " (median, lowest-highest)"}.`
  )
  out()

  // (1) The bad day.
  const badDayRun = async (health: boolean) => {
    let phaseStart = Number.POSITIVE_INFINITY
    const sim = await Simulator.start({
      handler: (recorded): Simulator.Reply => {
        if (recorded.model !== "broken") return { latency: latencyMs }
        const t = Date.now() - phaseStart
        if (t < hangMs) return { hang: true }
        if (t < hangMs + rateLimitedMs) return { status: 429, headers: { "retry-after": "90" } }
        return { latency: latencyMs }
      }
    })
    const client = routerOver(sim, {
      ...seedLike({ "openai/broken": 0.7, "openai/healthy": 0.3 }),
      ...(health ? {} : healthOff)
    })
    const latencies: Array<number> = []
    let answered = 0
    let next = 0
    phaseStart = Date.now()
    const began = performance.now()
    const worker = async () => {
      while (next < total) {
        next++
        const start = performance.now()
        const model = await ask(client)
        latencies.push(performance.now() - start)
        if (model !== undefined) answered++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    const wallSeconds = (performance.now() - began) / 1000
    const brokenCalls = sim.requests.filter((r) => r.model === "broken").length
    await sim.close()
    return { latencies, answered, brokenCalls, wallSeconds }
  }
  type Run = Awaited<ReturnType<typeof badDayRun>>
  const runs = { on: [] as Array<Run>, off: [] as Array<Run> }
  for (let round = 0; round < rounds; round++) {
    for (const health of round % 2 === 0 ? [true, false] : [false, true]) {
      runs[health ? "on" : "off"].push(await badDayRun(health))
    }
  }
  out("| model health | answered | p50 ms | p95 ms | p99 ms | max ms | calls on the broken model | wall s |")
  out("|---|---|---|---|---|---|---|---|")
  for (const [name, variant] of [
    ["on (defaults)", runs.on],
    ["off", runs.off]
  ] as const) {
    const all = variant.flatMap((r) => r.latencies)
    const answered = (100 * variant.reduce((sum, r) => sum + r.answered, 0)) / all.length
    out(
      `| ${name} | ${fixed(answered, 1)} % | ${fixed(percentile(all, 50), 0)} | ${fixed(percentile(all, 95), 0)} | ${fixed(percentile(all, 99), 0)} | ${fixed(Math.max(...all), 0)} | ${spread(
        variant.map((r) => r.brokenCalls),
        0
      )} | ${spread(
        variant.map((r) => r.wallSeconds),
        1
      )} |`
    )
    if (variant === runs.on) {
      goals.push(["bad day, health on: answered", "100 %", `${fixed(answered, 1)} %`, answered === 100])
    }
  }

  // (2) A recovered model's share.
  out()
  out(`A recovered model's share: \`openai/flaky\` 0.7 and \`openai/healthy\` 0.3, the same settings and`)
  out(
    `\`health: { open_for: ${openForSeconds} }\` (${openForSeconds} s instead of the default 10 s, to keep the bench short;`
  )
  out(
    `the breaker's open period is ${openForSeconds} s x 2^(k-1), jittered 0.8-1.2x). Requests paced at ${perSecond}/s; the flaky`
  )
  out(`model answers 500 (after ${latencyMs} ms) until T, then answers normally. *Closed* is when the breaker`)
  out("closed after T: the half-open probe answered (or a retry of a request whose own failures alone had")
  out("opened it: the router lets that request keep its retries). *Share back* is the first answer at which the flaky")
  out(`model's share of the answers over the last second reached ${shareWanted * 100}% of its weight`)
  out(
    `(${fixed(shareWanted * 70, 0)}%), which includes the window filling up (about ${fixed(shareWanted * 1000, 0)} ms). Times from T; ${trials === 1 ? "one run" : `median of ${trials} runs (lowest-highest)`}.`
  )
  out()
  out(
    `| T (flaky until) | open period in force at T, s | closed after T, s | share back after T, s | in open periods (${openForSeconds} s) |`
  )
  out("|---|---|---|---|---|")
  const recoveryRun = async (outageMs: number, afterMs: number) => {
    let phaseStart = Number.POSITIVE_INFINITY
    const sim = await Simulator.start({
      handler: (recorded): Simulator.Reply =>
        recorded.model === "flaky" && Date.now() - phaseStart < outageMs
          ? { status: 500, latency: latencyMs }
          : { latency: latencyMs }
    })
    const client = routerOver(sim, {
      ...seedLike({ "openai/flaky": 0.7, "openai/healthy": 0.3 }),
      health: { open_for: openForSeconds }
    })
    const transitions: Array<ModelHealth.Transition> = []
    const watcher = runtime.runFork(
      Stream.runForEach(client.healthChanges, (transition) => Effect.sync(() => transitions.push(transition)))
    )
    await sleep(10)
    const answers: Array<{ readonly at: number; readonly model: string | undefined }> = []
    const pending: Array<Promise<unknown>> = []
    phaseStart = Date.now()
    const count = Math.round(((outageMs + afterMs) / 1000) * perSecond)
    for (let i = 0; i < count; i++) {
      const wait = phaseStart + (i * 1000) / perSecond - Date.now()
      if (wait > 0) await sleep(wait)
      pending.push(ask(client).then((model) => answers.push({ at: Date.now(), model })))
    }
    await Promise.all(pending)
    await runtime.runPromise(Fiber.interrupt(watcher))
    await sim.close()
    const recoveredAt = phaseStart + outageMs
    const flaky = transitions.filter((t) => t.model === "openai/flaky")
    const lastOpen = flaky.filter((t) => t.to === "open" && t.at <= recoveredAt).at(-1)
    const closed = flaky.find((t) => t.to === "healthy" && t.at >= recoveredAt)
    return {
      openPeriod: lastOpen?.until === undefined ? Number.NaN : lastOpen.until - lastOpen.at,
      closed: closed === undefined ? Number.NaN : closed.at - recoveredAt,
      shareBack: shareBackAfter(answers, recoveredAt, "openai/flaky", shareWanted * 0.7) - recoveredAt
    }
  }
  // An outage shorter than the breaker's first open period, and one that outlasts it: the first probe
  // fails and the period doubles (the second open ends 2.5-3.7 s in, after T).
  for (const [outageMs, afterMs] of [
    [500, 3500],
    [2500, 4500]
  ] as const) {
    const results = [] as Array<Awaited<ReturnType<typeof recoveryRun>>>
    for (let trial = 0; trial < trials; trial++) results.push(await recoveryRun(outageMs, afterMs))
    const seconds = (pick: (r: (typeof results)[number]) => number) => results.map((r) => pick(r) / 1000)
    const shareBack = median(seconds((r) => r.shareBack))
    out(
      `| ${outageMs / 1000} s | ${spread(
        seconds((r) => r.openPeriod),
        2
      )} | ${spread(
        seconds((r) => r.closed),
        2
      )} | ${spread(
        seconds((r) => r.shareBack),
        2
      )} | ${fixed(shareBack / openForSeconds, 2)} |`
    )
    goals.push([
      `recovered model's share back, flaky until ${outageMs / 1000} s (open_for ${openForSeconds} s)`,
      `<= 2 open periods (${2 * openForSeconds} s)`,
      `${fixed(shareBack, 2)} s`,
      shareBack <= 2 * openForSeconds
    ])
  }

  // (3) Sequential requests, the first model of a chain hanging.
  out()
  out("Sequential requests: 20 in a row through a chain whose first model hangs (timeout 200 ms,")
  out("max_retries 0) and whose second answers at once. Per request, in ms.")
  out()
  out("| model health | p50 ms | p95 ms | first request ms | calls on the hanging model |")
  out("|---|---|---|---|---|")
  for (const health of [true, false]) {
    const sim = await Simulator.start({ handler: (recorded) => (recorded.model === "hang" ? { hang: true } : {}) })
    const client = routerOver(sim, {
      failover_chain: [
        { model: "openai/hang", max_retries: 0, timeout: 0.2 },
        { model: "openai/fast", max_retries: 0, timeout: 5 }
      ],
      ...(health ? {} : healthOff)
    })
    const times: Array<number> = []
    for (let i = 0; i < 20; i++) {
      const start = performance.now()
      await ask(client)
      times.push(performance.now() - start)
    }
    const calls = sim.requests.filter((r) => r.model === "hang").length
    await sim.close()
    out(
      `| ${health ? "on (defaults)" : "off"} | ${fixed(percentile(times, 50), 1)} | ${fixed(percentile(times, 95), 1)} | ${fixed(times[0]!, 1)} | ${calls} |`
    )
  }
  await runtime.dispose()
  out()
  out(`This section took ${fixed((performance.now() - started) / 1000, 0)} s.`)
}

/**
 * The time of the first answer at or after `from` at which `model`'s share of
 * the answers over the second before reached `wanted`; NaN if none did.
 */
const shareBackAfter = (
  answers: ReadonlyArray<{ readonly at: number; readonly model: string | undefined }>,
  from: number,
  model: string,
  wanted: number
): number => {
  const sorted = answers.filter((a) => a.model !== undefined).sort((a, b) => a.at - b.at)
  let oldest = 0
  let mine = 0
  for (const [i, answer] of sorted.entries()) {
    if (answer.model === model) mine++
    while (sorted[oldest]!.at <= answer.at - 1000) {
      if (sorted[oldest]!.model === model) mine--
      oldest++
    }
    const inWindow = i - oldest + 1
    if (answer.at >= from && inWindow >= 10 && mine / inWindow >= wanted) return answer.at
  }
  return Number.NaN
}
