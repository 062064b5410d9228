/**
 * The demo: the seed's two configurations under load against the embedded
 * loopback simulator on a bad day (latency per model, 429s with retry-after,
 * 500s and 529s, and gpt-4o stalling for a while), each followed by the same
 * workload without the load balancer (one model, no retries), so the gain is
 * visible. Every number printed is computed from what happened.
 *
 * @example
 * import { Effect } from "effect"
 * import { Demo } from "@ironlabsai/cli"
 *
 * Effect.runPromise(Demo.run({ requests: 100 }))
 *
 * @since 0.1.0
 */

import { randomUUID } from "node:crypto"
import type { Attempt, ModelHealth, RateBudget, Reliability } from "@ironlabsai/core"
import { UndiciHttpClient } from "@ironlabsai/http"
import { Simulator } from "@ironlabsai/testing"
import { MultiBar } from "cli-progress"
import { Duration, Effect, Layer, Logger, LogLevel, Stream } from "effect"
import { DefaultProviders, IronlabsClient } from "ironlabsai"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Use the real providers (keys from env) instead of the simulator. */
  readonly live?: boolean | undefined
  /** Requests per configuration. Default 300 (10 with `live`). */
  readonly requests?: number | undefined
  /** Where the report goes. Default: stdout. */
  readonly write?: ((text: string) => void) | undefined
  /**
   * Show two live progress bars on stderr while the requests run. Default:
   * when stderr is a terminal. The `ironlabsai` command turns them off when
   * `NO_COLOR` is set or `TERM` is `dumb`, as they move the cursor.
   *
   * @since 0.3.0
   */
  readonly progress?: boolean | undefined
  /**
   * A `redis://` or `rediss://` URL: the clients keep their model health and
   * rate budgets in Redis (`@ironlabsai/redis`), as the processes of a fleet
   * would. Each scenario of each run has keys of its own (a prefix made for
   * it), so that one run's holds do not spill into the next. Default: none.
   *
   * @since 0.4.0
   */
  readonly redis?: string | undefined
}

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const concise = { role: "user", content: "Please provide a concise response." } as const

/** Without the load balancer: gpt-4o alone, no retries, no memory of its failures. */
const noLoadBalancer: Reliability.Input = {
  failover_chain: [{ model: GPT, max_retries: 0, timeout: 5.0, messages: [concise] }],
  health: false,
  retry_budget: false
}

/**
 * The seed's two configurations, verbatim, each with its run without the load
 * balancer: the first model alone, no retries.
 *
 * @since 0.1.0
 * @category configs
 */
export const scenarios: ReadonlyArray<{
  readonly title: string
  readonly reliability: Reliability.Input
  readonly baseline: Reliability.Input
}> = [
  {
    title: "Weighted: 70% gpt-4o, 30% claude-3-5-haiku",
    reliability: {
      weights: { [GPT]: 0.7, [HAIKU]: 0.3 },
      max_retries: { [GPT]: 2, [HAIKU]: 1 },
      timeout: { [GPT]: 5.0, [HAIKU]: 5.0 },
      backoff: { [GPT]: 2.0, [HAIKU]: 1.0 },
      model_messages: { [GPT]: [concise] }
    },
    baseline: noLoadBalancer
  },
  {
    title: "Failover chain: gpt-4o, then claude-3-5-haiku",
    reliability: {
      failover_chain: [
        { model: GPT, max_retries: 2, timeout: 5.0, backoff: 2.0, messages: [concise] },
        { model: HAIKU, max_retries: 1, timeout: 5.0, backoff: 1.0 }
      ]
    },
    baseline: noLoadBalancer
  }
]

/** How many requests are in flight at once. */
const concurrency = 32

/** What one request did. */
interface Outcome {
  readonly answeredBy: string | undefined
  /** The error's tag when no model answered. */
  readonly failedWith?: string | undefined
  readonly attempts: ReadonlyArray<Attempt.Attempt>
  readonly millis: number
}

/** What one run did: every request's outcome, and the model health transitions in its course. */
interface Run {
  readonly outcomes: ReadonlyArray<Outcome>
  readonly transitions: ReadonlyArray<ModelHealth.Transition>
  /** When the run began, in epoch millis. */
  readonly startedAt: number
}

/**
 * Runs the demo, printing to stdout.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options = {}): Effect.Effect<void, Error> =>
  Effect.gen(function* () {
    const requests = options.requests ?? (options.live ? 10 : 300)
    const print = options.write ?? ((text: string) => process.stdout.write(`${text}\n`))
    if (!Number.isInteger(requests) || requests < 1) return yield* Effect.fail(new Error("requests must be >= 1"))
    if (options.live) yield* checkLiveKeys
    const shared = options.redis === undefined ? undefined : yield* redisStores(options.redis)
    print(
      options.live
        ? `IronlabsAI demo: ${requests} requests per run against the real providers.`
        : [
            `IronlabsAI demo: ${requests} requests per run, ${concurrency} at a time, against the embedded`,
            "simulator on a bad day. gpt-4o goes down 0.5 s in: for half a second its",
            "requests hang, then for 2.5 s it answers 429 with retry-after 90 s; all",
            "along it sends a few 429s (retry-after 1 s) and 500s. claude-3-5-haiku is",
            "overloaded (529) now and then. Timeouts, retries and backoff are the seed's",
            "own; the same requests go at the same time to gpt-4o alone, without retries."
          ].join("\n")
    )
    if (shared !== undefined) print(`State shared through Redis at ${shared.url}.`)
    for (const [index, scenario] of scenarios.entries()) {
      print(`\n${scenario.title}`)
      const [balanced, alone] = yield* Effect.scoped(
        Effect.flatMap(options.live ? Effect.succeed({}) : simulatedEndpoints, (endpoints) =>
          withProgress(requests, options.progress ?? process.stderr.isTTY === true, (bars) =>
            Effect.all(
              [
                workload(scenario.reliability, endpoints, requests, bars.balanced, shared?.layer(index)),
                workload(scenario.baseline, endpoints, requests, bars.alone, shared?.layer(index))
              ],
              { concurrency: 2 }
            )
          )
        )
      )
      print(report(balanced.outcomes, scenario.reliability))
      print(transitionLines(balanced))
      print(`  ${"with the load balancer".padEnd(24)}${summary(balanced.outcomes)}`)
      print(`  ${"gpt-4o alone, no retry".padEnd(24)}${summary(alone.outcomes)}`)
    }
    print("\nStreamed through the failover chain (gpt-4o answers 429, retry-after 90 s):")
    yield* Effect.scoped(
      Effect.flatMap(options.live ? Effect.succeed({}) : streamingEndpoints, (endpoints) =>
        streamOne(
          scenarios[1]!.reliability,
          endpoints,
          options.write === undefined,
          print,
          shared?.layer(scenarios.length)
        )
      )
    )
  }).pipe(
    // The report shows every hold and breaker change itself: the router's own warnings would say it twice.
    Logger.withMinimumLogLevel(LogLevel.Error)
  )

/** What a client keeps in Redis: its model health and rate budgets. */
type Stores = Layer.Layer<ModelHealth.ModelHealthStore | RateBudget.RateBudget>

/**
 * The Redis stores of one run: the URL to show (its password blanked out) and, for each part of the run, a
 * layer with keys of its own.
 */
const redisStores = (url: string) =>
  Effect.map(
    Effect.promise(() => import("@ironlabsai/redis")),
    ({ RedisConnection, RedisStore }) => {
      const run = randomUUID().slice(0, 8)
      return {
        url: RedisConnection.redactUrl(url),
        layer: (part: number): Stores => RedisStore.layer({ url, prefix: `ironlabsai-demo:${run}:${part}` })
      }
    }
  )

/** The client over `reliability`, its state in `stores` (Redis) when given, else in memory. */
const clientLayer = (
  reliability: Reliability.Input,
  endpoints: DefaultProviders.Options,
  stores: Stores | undefined
) => {
  const client = IronlabsClient.layer({ reliability, ...endpoints }).pipe(Layer.provide(UndiciHttpClient.layer))
  return stores === undefined ? client : Layer.provide(client, stores)
}

/** A simulator where gpt-4o is rate-limited past the cap and claude streams a haiku, piece by piece. */
const streamingEndpoints = Effect.suspend(() =>
  Effect.map(
    Simulator.make({
      handler: (request) =>
        request.model === "gpt-4o"
          ? { status: 429, headers: { "retry-after": "90" } }
          : {
              chunks: [
                "Salt ",
                "wind ",
                "on ",
                "the ",
                "glass, / ",
                "the ",
                "tide ",
                "keeps ",
                "its ",
                "own ",
                "time."
              ],
              chunkInterval: 60
            }
    }),
    endpointsOf
  )
)

/** Streams one answer, writing each piece as it arrives when the output is the terminal. */
const streamOne = (
  reliability: Reliability.Input,
  endpoints: DefaultProviders.Options,
  live: boolean,
  print: (text: string) => void,
  stores: Stores | undefined
) =>
  Effect.gen(function* () {
    const client = yield* IronlabsClient
    const started = Date.now()
    let text = ""
    let firstContentAfter: number | undefined
    let model = ""
    if (live) process.stdout.write("  ")
    yield* client.completions
      .create({ messages: [{ role: "user", content: "Write a haiku about the ocean." }], stream: true })
      .pipe(
        Stream.runForEach((chunk) =>
          Effect.sync(() => {
            const piece = chunk.choices[0]?.delta.content ?? ""
            if (piece !== "" && firstContentAfter === undefined) firstContentAfter = Date.now() - started
            text += piece
            model = chunk.model
            if (live) process.stdout.write(piece)
          })
        )
      )
    if (live) process.stdout.write("\n")
    else print(`  ${text}`)
    print(`  Model used: ${model}`)
    print(`  First content after ${firstContentAfter ?? "-"} ms, the whole answer after ${Date.now() - started} ms.`)
  }).pipe(
    Effect.scoped,
    Effect.provide(clientLayer(reliability, endpoints, stores)),
    Effect.mapError((error) => new Error(error.message))
  )

const checkLiveKeys = Effect.gen(function* () {
  const resolved = yield* Effect.mapError(DefaultProviders.resolve(), (error) => new Error(error.message))
  if (resolved.openai.apiKey === undefined || resolved.anthropic.apiKey === undefined) {
    return yield* Effect.fail(new Error("--live needs OPENAI_API_KEY and ANTHROPIC_API_KEY in the environment"))
  }
})

/** A fresh simulator on a bad day, for one scenario; its clock starts now. */
const simulatedEndpoints = Effect.suspend(() => Effect.map(Simulator.make({ handler: badDay() }), endpointsOf))

/** Both providers pointed at a simulator. */
function endpointsOf(sim: Simulator.Simulator): DefaultProviders.Options {
  return {
    openai: { apiKey: "sk-demo", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-demo", baseURL: sim.anthropicBaseUrl }
  }
}

/**
 * The simulator's profile: a log-normal latency per model, random faults, and
 * a gpt-4o outage from 0.5 s to 3.5 s (hanging, then 429 with a 90 s
 * retry-after, past the 60 s cap, so the router fails over at once).
 */
const badDay = () => {
  const started = Date.now()
  const latency = (median: number) => Math.round(median * Math.exp(0.5 * gaussian()))
  return (request: Simulator.RecordedRequest): Simulator.Reply => {
    const r = Math.random()
    if (request.model === "gpt-4o") {
      const t = Date.now() - started
      if (t >= 500 && t < 1000) return { hang: true }
      if (t >= 1000 && t < 3500) return { status: 429, headers: { "retry-after": "90" }, latency: latency(5) }
      if (r < 0.04) return { status: 429, headers: { "retry-after": "1" }, latency: latency(10) }
      if (r < 0.07) return { status: 500, latency: latency(30) }
      return { latency: latency(60), content: "Waves fold on the shore." }
    }
    if (r < 0.04) return { status: 529, latency: latency(10) }
    return { latency: latency(40), content: "Salt wind, a slow tide." }
  }
}

const gaussian = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random())

/** Two live progress bars on stderr, one per run, removed when both are done; or none. */
const withProgress = <A, E, R>(
  total: number,
  show: boolean,
  f: (bars: {
    readonly balanced: (answered: number) => void
    readonly alone: (answered: number) => void
  }) => Effect.Effect<A, E, R>
) =>
  show
    ? Effect.acquireUseRelease(
        Effect.sync(() => {
          const multi = new MultiBar({
            format: "  {name} {bar} {value}/{total} done, {answered} answered",
            barsize: 24,
            hideCursor: true,
            clearOnComplete: true,
            stream: process.stderr
          })
          const bar = (name: string) => {
            const single = multi.create(total, 0, { name: name.padEnd(22), answered: 0 })
            return (answered: number) => single.increment({ answered })
          }
          return { multi, balanced: bar("with the load balancer"), alone: bar("gpt-4o alone") }
        }),
        f,
        ({ multi }) => Effect.sync(() => multi.stop())
      )
    : f({ balanced: () => {}, alone: () => {} })

/** Sends `requests` requests through a client built from `reliability`. */
const workload = (
  reliability: Reliability.Input,
  endpoints: DefaultProviders.Options,
  requests: number,
  progress: (answered: number) => void,
  stores: Stores | undefined
) =>
  Effect.gen(function* () {
    const client = yield* IronlabsClient
    let answered = 0
    const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }] } as const
    const startedAt = Date.now()
    const transitions: Array<ModelHealth.Transition> = []
    yield* Effect.forkScoped(
      Stream.runForEach(client.healthChanges, (transition) => Effect.sync(() => transitions.push(transition)))
    )
    const outcomes = yield* Effect.forEach(
      Array.from({ length: requests }),
      () =>
        client.completions.create(ask).pipe(
          Effect.map(
            (response): Omit<Outcome, "millis"> => ({ answeredBy: response.model, attempts: response.attempts })
          ),
          Effect.catchAll((error) =>
            Effect.succeed({
              answeredBy: undefined,
              failedWith: error._tag,
              attempts: "attempts" in error ? error.attempts : []
            })
          ),
          Effect.timed,
          Effect.map(([duration, outcome]): Outcome => ({ ...outcome, millis: Duration.toMillis(duration) })),
          Effect.tap((outcome) =>
            Effect.sync(() => {
              if (outcome.answeredBy !== undefined) answered++
              progress(answered)
            })
          )
        ),
      { concurrency }
    )
    // What time alone changed (a hold or an open period running out) is published when the model is looked at.
    yield* client.health
    return { outcomes, transitions, startedAt } satisfies Run
  }).pipe(
    Effect.scoped,
    Effect.provide(clientLayer(reliability, endpoints, stores)),
    Effect.mapError((error) => new Error(error.message))
  )

/** `claude-3-5-haiku` for `anthropic/claude-3-5-haiku-20241022`: short enough for 80 columns. */
const label = (model: string) => (model.split("/")[1] ?? model).replace(/-\d{8}$/, "")

const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const ms = (millis: number) =>
  Number.isNaN(millis) ? "-" : millis < 1000 ? `${Math.round(millis)}ms` : `${(millis / 1000).toFixed(1)}s`

const pct = (part: number, whole: number) => (whole === 0 ? "-" : `${((100 * part) / whole).toFixed(1)}%`)

/** Per model: answers and share against the configured split, attempts, retries, failovers, errors, latency. */
const report = (outcomes: ReadonlyArray<Outcome>, reliability: Reliability.Input): string => {
  const models = configuredModels(reliability)
  const answered = outcomes.filter((o) => o.answeredBy !== undefined).length
  const header = `  ${"model".padEnd(17)}${"answers".padStart(8)}${"share".padStart(7)}${"target".padStart(7)}${"calls".padStart(6)}${"skips".padStart(6)}${"retry".padStart(6)}${"fover".padStart(6)}${"errs".padStart(5)}${"p95".padStart(7)}`
  const rows = models.map(({ id, target }) => {
    const stats = modelStats(outcomes, id)
    return `  ${label(id).padEnd(17)}${String(stats.answers).padStart(8)}${pct(stats.answers, answered).padStart(7)}${target.padStart(7)}${String(stats.calls).padStart(6)}${String(stats.skips).padStart(6)}${String(stats.retries).padStart(6)}${String(stats.failovers).padStart(6)}${String(stats.errors).padStart(5)}${ms(percentile(stats.latencies, 95)).padStart(7)}`
  })
  const bars = models.map(({ id }) => {
    const share = answered === 0 ? 0 : modelStats(outcomes, id).answers / answered
    const width = 40
    const filled = Math.round(share * width)
    return `  ${label(id).padEnd(17)}${"█".repeat(filled)}${"░".repeat(width - filled)} ${pct(share, 1)} of answers`
  })
  const legend = [
    "  (calls: HTTP calls; skips: passed over without a call, held or open; retry:",
    "  same-model retries; fover: failed over from; errs: failed calls; p95: calls)"
  ].join("\n")
  return [header, ...rows, legend, "", ...bars, ""].join("\n")
}

const configuredModels = (reliability: Reliability.Input) => {
  if (reliability.weights !== undefined) {
    const weights = Object.entries(reliability.weights)
    const total = weights.reduce((sum, [, w]) => sum + w, 0)
    return weights.map(([id, w]) => ({ id, target: `${Math.round((100 * w) / total)}%` }))
  }
  return (reliability.failover_chain ?? []).map((entry, i) => ({ id: entry.model, target: `#${i + 1}` }))
}

const modelStats = (outcomes: ReadonlyArray<Outcome>, model: string) => {
  let calls = 0
  let skips = 0
  let retries = 0
  let failovers = 0
  let errors = 0
  let answers = 0
  const latencies: Array<number> = []
  for (const outcome of outcomes) {
    if (outcome.answeredBy === model) answers++
    const mine = outcome.attempts.filter((a) => a.model === model && a.outcome !== "skipped")
    skips += outcome.attempts.filter((a) => a.model === model && a.outcome === "skipped").length
    calls += mine.length
    retries += Math.max(0, mine.length - 1)
    errors += mine.filter((a) => a.outcome === "failure").length
    latencies.push(...mine.map((a) => Duration.toMillis(a.duration)))
    const lastCall = outcome.attempts.filter((a) => a.outcome !== "skipped").at(-1)
    if (mine.length > 0 && lastCall !== undefined && lastCall.model !== model) failovers++
  }
  return { calls, skips, retries, failovers, errors, answers, latencies }
}

/** The model health transitions of a run, one line each, timed from the run's start. */
const transitionLines = (run: Run): string => {
  const at = (millis: number) => `+${((millis - run.startedAt) / 1000).toFixed(2)}s`
  const lines = run.transitions.map((t) => {
    const why = t.reason === undefined ? "" : ` (${t.reason})`
    const until = t.until === undefined ? "" : `, for ${ms(t.until - t.at)}`
    return `  ${at(t.at).padStart(7)}  ${label(t.model).padEnd(17)}${t.from} -> ${t.to}${why}${until}`
  })
  return ["  Model health:", ...(lines.length === 0 ? ["  (no transitions)"] : lines), ""].join("\n")
}

const summary = (outcomes: ReadonlyArray<Outcome>): string => {
  const answered = outcomes.filter((o) => o.answeredBy !== undefined)
  const latencies = outcomes.map((o) => o.millis)
  const failures = new Map<string, number>()
  for (const o of outcomes)
    if (o.failedWith !== undefined) failures.set(o.failedWith, (failures.get(o.failedWith) ?? 0) + 1)
  const failed = [...failures].map(([tag, n]) => `\n${" ".repeat(26)}${n} x ${tag}`).join("")
  return `${pct(answered.length, outcomes.length).padStart(6)} answered, p50 ${ms(percentile(latencies, 50)).padStart(5)}, p95 ${ms(percentile(latencies, 95)).padStart(5)}${failed}`
}
