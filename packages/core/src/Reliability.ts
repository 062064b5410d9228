/**
 * The reliability config in the seed's own keys (`weights`, `max_retries`,
 * `timeout`, `backoff`, `model_messages`, or `failover_chain`), decoded by
 * Schema into a normalised {@link Plan}: seconds become `Duration`s, defaults
 * are filled in, and every problem is reported with its path.
 *
 * @example
 * import { Either } from "effect"
 * import { Reliability } from "@ironlabsai/core"
 *
 * const plan = Reliability.decode(
 *   { weights: { "openai/gpt-4o": 0.7, "anthropic/claude-3-5-haiku-20241022": 0.3 } },
 *   { providers: ["openai", "anthropic"] }
 * )
 * if (Either.isRight(plan)) console.log(plan.right.models.map((m) => m.model.id))
 *
 * @since 0.1.0
 */
import { Duration, Either, ParseResult, Schema } from "effect"
import * as ChatCompletion from "./ChatCompletion.js"
import * as ModelHealth from "./ModelHealth.js"
import * as ModelId from "./ModelId.js"

/**
 * Defaults for what a config leaves out, as the official SDKs have them:
 * 2 retries, 0.5 s initial backoff, 600 s per attempt.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  maxRetries: 2,
  backoff: Duration.millis(500),
  timeout: Duration.seconds(600)
} as const

// Model ids are checked by `crossChecks`, which reports a bad id at its own path.
const ModelKey = Schema.String
const Weight = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => "a weight is a finite number >= 0" })
)
const Retries = Schema.Number.pipe(
  Schema.filter((n) => Number.isInteger(n) && n >= 0, { message: () => "max_retries is an integer >= 0" })
)
const TimeoutSeconds = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n > 0, { message: () => "timeout is a number of seconds > 0" })
)
const BackoffSeconds = Schema.Number.pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => "backoff is a number of seconds >= 0" })
)
const Messages = Schema.Array(ChatCompletion.Message)
const PositiveSeconds = (name: string) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isFinite(n) && n > 0, { message: () => `${name} is a number of seconds > 0` })
  )
const PositiveInteger = (name: string) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isInteger(n) && n >= 1, { message: () => `${name} is an integer >= 1` })
  )
const Fraction = (name: string, low: "> 0" | ">= 0") =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isFinite(n) && (low === "> 0" ? n > 0 : n >= 0) && n <= 1, {
      message: () => `${name} is a number ${low} and <= 1`
    })
  )
const optional = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })
const perModel = <A, I>(value: Schema.Schema<A, I>) => optional(Schema.Record({ key: ModelKey, value }))

/**
 * One entry of an ordered failover chain.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChainEntry = Schema.Struct({
  model: ModelKey,
  max_retries: optional(Retries),
  timeout: optional(TimeoutSeconds),
  backoff: optional(BackoffSeconds),
  messages: optional(Messages)
})

/**
 * `health`: the router's memory of each model (DESIGN §8). Every key is
 * optional; `false` turns holds and the breaker off, `true` keeps the defaults.
 *
 * @since 0.2.0
 * @category schemas
 */
export const HealthConfig = Schema.Struct({
  consecutive_failures: optional(PositiveInteger("consecutive_failures")),
  failure_rate: optional(Fraction("failure_rate", "> 0")),
  window: optional(PositiveSeconds("window")),
  min_calls: optional(PositiveInteger("min_calls")),
  open_for: optional(PositiveSeconds("open_for")),
  max_open_for: optional(PositiveSeconds("max_open_for")),
  rate_limit_hold: optional(PositiveSeconds("rate_limit_hold")),
  long_hold: optional(PositiveSeconds("long_hold")),
  on_all_unavailable: optional(
    Schema.Literal("wait", "fail", "probe").annotations({
      message: () => ({ message: 'on_all_unavailable is "wait", "fail" or "probe"', override: true })
    })
  ),
  max_wait: optional(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => "max_wait is a number of seconds >= 0" })
    )
  )
})

/**
 * `retry_budget`: the limit on same-model retries across requests (DESIGN
 * §8). `false` turns it off, `true` keeps the defaults.
 *
 * @since 0.2.0
 * @category schemas
 */
export const RetryBudgetConfig = Schema.Struct({
  ratio: optional(Fraction("ratio", ">= 0")),
  window: optional(PositiveSeconds("window")),
  min_per_second: optional(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => "min_per_second is a number >= 0" })
    )
  )
})

const NonNegative = (name: string) =>
  Schema.Number.pipe(Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => `${name} is a number >= 0` }))

/**
 * `prices` of a model, in US dollars per million tokens: what its answers
 * cost, and what the `cost` strategy ranks by.
 *
 * @since 0.3.0
 * @category schemas
 */
export const PriceConfig = Schema.Struct({
  input: NonNegative("input"),
  output: NonNegative("output")
})

/**
 * `rate_limits` of a model: requests and tokens per minute that this client
 * may spend on it. Over either, the model is skipped (trace: skipped, budget).
 *
 * @since 0.3.0
 * @category schemas
 */
export const RateLimitConfig = Schema.Struct({
  rpm: optional(PositiveInteger("rpm")),
  tpm: optional(PositiveInteger("tpm"))
})

/**
 * `hedge`, off by default (or `false`): when no content has come `delay`
 * seconds (or the model's `"p95"` time to first content) after an attempt
 * started, another attempt goes to a different healthy model, up to
 * `max_hedges` extra attempts per request, within a `budget` (a fraction of
 * requests).
 *
 * @since 0.3.0
 * @category schemas
 */
export const HedgeConfig = Schema.Struct({
  delay: Schema.Union(PositiveSeconds("delay"), Schema.Literal("p95")).annotations({
    message: () => ({ message: 'delay is a number of seconds > 0, or "p95"', override: true })
  }),
  max_hedges: optional(PositiveInteger("max_hedges")),
  budget: optional(Fraction("budget", "> 0"))
})

/**
 * How a weighted config picks a model for each request.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Strategy = Schema.Literal("weighted", "least_latency", "least_busy", "cost").annotations({
  message: () => ({
    message: 'routing_strategy is "weighted", "least_latency", "least_busy" or "cost"',
    override: true
  })
})

/**
 * @since 0.3.0
 * @category models
 */
export type Strategy = typeof Strategy.Type

/**
 * The config as a user writes it: either the weighted shape or
 * `failover_chain`, with the optional `health` and `retry_budget`. Times are
 * in seconds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ReliabilityConfig = Schema.Struct({
  weights: perModel(Weight),
  max_retries: perModel(Retries),
  timeout: perModel(TimeoutSeconds),
  backoff: perModel(BackoffSeconds),
  model_messages: perModel(Messages),
  failover_chain: optional(
    Schema.Array(ChainEntry).pipe(Schema.minItems(1, { message: () => "the chain needs at least one model" }))
  ),
  health: optional(Schema.Union(Schema.Boolean, HealthConfig)),
  retry_budget: optional(Schema.Union(Schema.Boolean, RetryBudgetConfig)),
  drop_unsupported_params: optional(Schema.Boolean),
  routing_strategy: optional(Strategy),
  prices: perModel(PriceConfig),
  rate_limits: perModel(RateLimitConfig),
  hedge: optional(Schema.Union(Schema.Literal(false), HedgeConfig))
}).annotations({ message: () => "the config is an object: { weights, ... } or { failover_chain }" })

/**
 * The config as a user writes it (the seed's JSON shape).
 *
 * @since 0.1.0
 * @category models
 */
export type Input = typeof ReliabilityConfig.Encoded

/**
 * One model of a plan, with every setting resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelPlan {
  readonly model: ModelId.ModelId
  /** The model's share of a weighted plan (the shares sum to 1); 1 in an ordered chain. */
  readonly weight: number
  readonly maxRetries: number
  readonly timeout: Duration.Duration
  readonly backoff: Duration.Duration
  /** Appended to the request's messages when this model is called. */
  readonly messages: ReadonlyArray<ChatCompletion.Message>
}

/**
 * A normalised config: a weighted draw or an ordered chain over models.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly _tag: "Weighted" | "Ordered"
  readonly models: ReadonlyArray<ModelPlan>
  /** The model memory's policy; `undefined` when `health: false`. */
  readonly health: ModelHealth.Policy | undefined
  /** The retry budget; `undefined` when `retry_budget: false`. */
  readonly retryBudget: ModelHealth.RetryBudget | undefined
  /**
   * `drop_unsupported_params`: a model that cannot serve some fields of a
   * request gets it without them (the trace says which) instead of being
   * skipped.
   */
  readonly dropUnsupportedParams?: boolean | undefined
  /** `routing_strategy` of a weighted plan; `weighted` when not given. */
  readonly strategy?: Strategy | undefined
  /** `prices`, by model id. */
  readonly prices?: ReadonlyMap<string, Price> | undefined
  /** `rate_limits`, by model id. */
  readonly rateLimits?: ReadonlyMap<string, RateLimit> | undefined
  /** `hedge`, when given. */
  readonly hedge?: Hedge | undefined
}

/**
 * A model's price, in US dollars per million tokens.
 *
 * @since 0.3.0
 * @category models
 */
export interface Price {
  readonly input: number
  readonly output: number
}

/**
 * A model's requests and tokens per minute.
 *
 * @since 0.3.0
 * @category models
 */
export interface RateLimit {
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
}

/**
 * Hedging, resolved: the delay (or the model's p95 time to first content),
 * the most extra attempts per request, and the fraction of requests that may
 * hedge.
 *
 * @since 0.3.0
 * @category models
 */
export interface Hedge {
  readonly delay: Duration.Duration | "p95"
  readonly maxHedges: number
  readonly budget: number
}

/**
 * Hedging's defaults: one extra attempt, for at most 5% of requests.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultHedge = { maxHedges: 1, budget: 0.05 } as const

/**
 * What in a valid config is almost certainly a mistake, with its path: a
 * `timeout` of an hour or more (seconds typed as milliseconds: `5000` is 83
 * minutes), and a `backoff` over the 60 s retry-after cap, which makes every
 * retry fail over at once instead. The client logs each as a warning when it
 * is built.
 *
 * @since 0.3.0
 * @category decoding
 */
export const warnings = (plan: Plan): ReadonlyArray<ConfigIssue> =>
  plan.models.flatMap((model, i): Array<ConfigIssue> => {
    const at = (key: "timeout" | "backoff") =>
      plan._tag === "Ordered" ? formatPath(["failover_chain", i, key]) : formatPath([key, model.model.id])
    const found: Array<ConfigIssue> = []
    const timeout = Duration.toSeconds(model.timeout)
    if (timeout >= 3600) {
      found.push({
        path: at("timeout"),
        message: `is ${timeout} s (${Math.round(timeout / 60)} minutes): timeouts are in seconds; did you mean ${timeout / 1000}?`
      })
    }
    const backoff = Duration.toSeconds(model.backoff)
    if (model.maxRetries > 0 && backoff > retryAfterCapSeconds) {
      found.push({
        path: at("backoff"),
        message: `is ${backoff} s: a retry wait over ${retryAfterCapSeconds} s fails over at once, so this model is never retried`
      })
    }
    return found
  })

/** The router's default cap on a retry wait (`Router.defaultRetryAfterCap`), in seconds. */
const retryAfterCapSeconds = 60

/**
 * One problem in a config, with the path it was found at.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
}

/**
 * A config that cannot be used. `issues` lists every problem with its path.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReliabilityConfigError extends Schema.TaggedError<ReliabilityConfigError>("ReliabilityConfigError")(
  "ReliabilityConfigError",
  { issues: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String })) }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const lines = this.issues.map((issue) => `  - ${issue.path === "" ? "(config)" : issue.path}: ${issue.message}`)
    return `Invalid reliability config:\n${lines.join("\n")}`
  }
}

/**
 * Decodes a config into a plan, checking every model's provider prefix against
 * `providers`. Fails with every problem found, not only the first.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (
  input: unknown,
  options: { readonly providers: Iterable<string> }
): Either.Either<Plan, ReliabilityConfigError> => {
  const decoded = Schema.decodeUnknownEither(ReliabilityConfig)(input, { errors: "all", onExcessProperty: "error" })
  const issues = Either.match(decoded, {
    onLeft: (error) =>
      ParseResult.ArrayFormatter.formatErrorSync(error).flatMap((issue): Array<ConfigIssue> => {
        const switchable = switchableAt(input, issue.path)
        // `health`, `retry_budget` and `hedge` are a boolean (hedge: false only) or an object: report the form
        // that was given, once.
        if (switchable === "object" && issue.path.length === 1) return []
        if (switchable === "other") {
          if (!issue.message.startsWith(issue.path[0] === "hedge" ? "Expected false" : "Expected boolean")) return []
          const forms =
            issue.path[0] === "hedge" ? "false or an object of settings" : "true, false or an object of settings"
          return [{ path: formatPath(issue.path), message: `is ${forms}` }]
        }
        return [{ path: formatPath(issue.path), message: issue.message }]
      }),
    onRight: (): Array<ConfigIssue> => []
  })
  issues.push(...crossChecks(input, new Set(options.providers)))
  if (issues.length > 0 || Either.isLeft(decoded)) return Either.left(new ReliabilityConfigError({ issues }))
  return Either.right(toPlan(decoded.right))
}

/** For an issue under `health`, `retry_budget` or `hedge`: what form the user gave there. */
const switchableAt = (input: unknown, path: ReadonlyArray<PropertyKey>): "object" | "other" | undefined => {
  if (!isRecord(input) || (path[0] !== "health" && path[0] !== "retry_budget" && path[0] !== "hedge")) return undefined
  const value = input[path[0]]
  return isRecord(value) ? "object" : path.length === 1 ? "other" : undefined
}

/**
 * Checks that span several keys, run on the raw input so that they are reported
 * together with the structural problems.
 */
const crossChecks = (input: unknown, providers: ReadonlySet<string>): Array<ConfigIssue> => {
  if (!isRecord(input)) return []
  const issues: Array<ConfigIssue> = []
  const { weights, failover_chain: chain } = input
  if (weights !== undefined && chain !== undefined) {
    issues.push({ path: "", message: "give either weights or failover_chain, not both" })
  } else if (weights === undefined && chain === undefined) {
    issues.push({ path: "", message: "give weights (a weighted split) or failover_chain (an ordered list)" })
  }
  const checkModelId = (id: unknown, path: string) => {
    if (typeof id !== "string") return
    const model = ModelId.parse(id)
    if (model === undefined) {
      issues.push({ path, message: "a model id is provider/model, e.g. openai/gpt-4o" })
    } else if (!providers.has(model.provider)) {
      issues.push({ path, message: `unknown provider "${model.provider}" (known: ${[...providers].join(", ")})` })
    }
  }
  if (isRecord(weights)) {
    const values = Object.values(weights)
    if (values.length === 0 || values.every((w) => w === 0)) {
      issues.push({ path: "weights", message: "at least one model needs a weight > 0" })
    }
    for (const id of Object.keys(weights)) checkModelId(id, formatPath(["weights", id]))
  }
  for (const key of perModelKeys) {
    const map = input[key]
    if (!isRecord(map)) continue
    if (chain !== undefined && weights === undefined) {
      issues.push({ path: key, message: `${key} goes with weights; in failover_chain, set it on each entry` })
      continue
    }
    for (const id of Object.keys(map)) {
      if (isRecord(weights) && !Object.hasOwn(weights, id)) {
        issues.push({ path: formatPath([key, id]), message: "is not a model in weights" })
      }
    }
  }
  if (input.routing_strategy !== undefined && chain !== undefined && weights === undefined) {
    issues.push({
      path: "routing_strategy",
      message: "routing_strategy goes with weights; a failover_chain is tried in its order"
    })
  }
  const configured = new Set<unknown>(
    isRecord(weights) ? Object.keys(weights) : Array.isArray(chain) ? chain.map((e) => (isRecord(e) ? e.model : e)) : []
  )
  for (const key of ["prices", "rate_limits"] as const) {
    const map = input[key]
    if (!isRecord(map)) continue
    for (const id of Object.keys(map)) {
      if (!configured.has(id)) issues.push({ path: formatPath([key, id]), message: "is not a model of this config" })
    }
  }
  if (input.routing_strategy === "cost" && !isRecord(input.prices)) {
    issues.push({ path: "routing_strategy", message: 'the "cost" strategy needs prices' })
  }
  const health = input.health
  if (isRecord(health)) {
    const d = ModelHealth.defaultPolicy
    const given = (key: string, fallback: Duration.Duration) =>
      typeof health[key] === "number" ? health[key] : Duration.toSeconds(fallback)
    const [openFor, maxOpenFor] = [given("open_for", d.openFor), given("max_open_for", d.maxOpenFor)]
    if (maxOpenFor < openFor) {
      const path = health.max_open_for === undefined ? "health.open_for" : "health.max_open_for"
      issues.push({ path, message: `max_open_for (${maxOpenFor} s) must be >= open_for (${openFor} s)` })
    }
    const [hold, longHold] = [given("rate_limit_hold", d.rateLimitHold), given("long_hold", d.longHold)]
    if (longHold < hold) {
      const path = health.long_hold === undefined ? "health.rate_limit_hold" : "health.long_hold"
      issues.push({ path, message: `long_hold (${longHold} s) must be >= rate_limit_hold (${hold} s)` })
    }
  }
  if (Array.isArray(chain)) {
    const seen = new Map<unknown, number>()
    chain.forEach((entry, i) => {
      const model = isRecord(entry) ? entry.model : undefined
      const path = formatPath(["failover_chain", i, "model"])
      checkModelId(model, path)
      const first = seen.get(model)
      if (typeof model === "string" && first !== undefined) {
        issues.push({ path, message: `duplicates failover_chain[${first}] (${model})` })
      } else seen.set(model, i)
    })
  }
  return issues
}

const perModelKeys = ["max_retries", "timeout", "backoff", "model_messages"] as const

const toPlan = (config: typeof ReliabilityConfig.Type): Plan => {
  const memory = {
    health: healthPolicy(config.health),
    retryBudget: retryBudget(config.retry_budget),
    dropUnsupportedParams: config.drop_unsupported_params === true,
    ...(config.prices === undefined ? {} : { prices: new Map(Object.entries(config.prices)) }),
    ...(config.rate_limits === undefined ? {} : { rateLimits: new Map(Object.entries(config.rate_limits)) }),
    ...(config.hedge === undefined || config.hedge === false
      ? {}
      : {
          hedge: {
            delay: config.hedge.delay === "p95" ? "p95" : Duration.millis(config.hedge.delay * 1000),
            maxHedges: config.hedge.max_hedges ?? defaultHedge.maxHedges,
            budget: config.hedge.budget ?? defaultHedge.budget
          } as const
        })
  }
  if (config.failover_chain !== undefined) {
    return {
      _tag: "Ordered",
      models: config.failover_chain.map((entry) =>
        modelPlan(entry.model, 1, entry.max_retries, entry.timeout, entry.backoff, entry.messages)
      ),
      ...memory
    }
  }
  const weights = normalised(config.weights ?? {})
  const get = <A>(map: Readonly<Record<string, A>> | undefined, id: string): A | undefined =>
    map !== undefined && Object.hasOwn(map, id) ? map[id] : undefined
  return {
    _tag: "Weighted",
    strategy: config.routing_strategy ?? "weighted",
    models: Object.entries(weights).map(([id, weight]) =>
      modelPlan(
        id,
        weight,
        get(config.max_retries, id),
        get(config.timeout, id),
        get(config.backoff, id),
        get(config.model_messages, id)
      )
    ),
    ...memory
  }
}

/**
 * Weights as shares that sum to 1, so that the draw means their ratios at any
 * magnitude: `1e308` three times would overflow a sum, `5e-324` next to `1`
 * would vanish in one. Divided by the largest first, the sum stays finite; a
 * positive weight too small for its share stays the smallest positive number,
 * so that the model is still there to fail over to.
 */
const normalised = (weights: Readonly<Record<string, number>>): Record<string, number> => {
  const largest = Math.max(0, ...Object.values(weights))
  if (largest === 0) return { ...weights }
  const total = Object.values(weights).reduce((sum, weight) => sum + weight / largest, 0)
  return Object.fromEntries(
    Object.entries(weights).map(([id, weight]) => [
      id,
      weight === 0 ? 0 : Math.max(weight / largest / total, Number.MIN_VALUE)
    ])
  )
}

const seconds = (value: number | undefined, fallback: Duration.Duration): Duration.Duration =>
  value === undefined ? fallback : Duration.millis(value * 1000)

const healthPolicy = (config: typeof ReliabilityConfig.Type.health): ModelHealth.Policy | undefined => {
  if (config === false) return undefined
  const given = config === undefined || config === true ? {} : config
  const d = ModelHealth.defaultPolicy
  return {
    consecutiveFailures: given.consecutive_failures ?? d.consecutiveFailures,
    failureRate: given.failure_rate ?? d.failureRate,
    window: seconds(given.window, d.window),
    minCalls: given.min_calls ?? d.minCalls,
    openFor: seconds(given.open_for, d.openFor),
    maxOpenFor: seconds(given.max_open_for, d.maxOpenFor),
    rateLimitHold: seconds(given.rate_limit_hold, d.rateLimitHold),
    longHold: seconds(given.long_hold, d.longHold),
    onAllUnavailable: given.on_all_unavailable ?? d.onAllUnavailable,
    maxWait: seconds(given.max_wait, d.maxWait)
  }
}

const retryBudget = (config: typeof ReliabilityConfig.Type.retry_budget): ModelHealth.RetryBudget | undefined => {
  if (config === false) return undefined
  const given = config === undefined || config === true ? {} : config
  const d = ModelHealth.defaultRetryBudget
  return {
    ratio: given.ratio ?? d.ratio,
    window: seconds(given.window, d.window),
    minPerSecond: given.min_per_second ?? d.minPerSecond
  }
}

const modelPlan = (
  id: string,
  weight: number,
  maxRetries: number | undefined,
  timeout: number | undefined,
  backoff: number | undefined,
  messages: ReadonlyArray<ChatCompletion.Message> | undefined
): ModelPlan => ({
  model: ModelId.parse(id)!,
  weight,
  maxRetries: maxRetries ?? defaults.maxRetries,
  timeout: seconds(timeout, defaults.timeout),
  backoff: seconds(backoff, defaults.backoff),
  messages: messages ?? []
})

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** `weights["openai/gpt-4o"]`, `failover_chain[1].model`: the path as a JS accessor. */
const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path
    .map((key, i) =>
      typeof key === "number"
        ? `[${key}]`
        : /^[A-Za-z_$][\w$]*$/.test(String(key))
          ? `${i === 0 ? "" : "."}${String(key)}`
          : `[${JSON.stringify(String(key))}]`
    )
    .join("")
