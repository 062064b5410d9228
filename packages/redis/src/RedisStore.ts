/**
 * Everything a fleet shares through Redis, from one connection, as one
 * layer: the model-health store (`RedisHealth`: holds, breakers, the probe
 * lease) and the rate budgets (`RedisBudget`: global `rpm` and `tpm`). A
 * client made in its context (`IronlabsClient.make`) uses both.
 *
 * @example
 * import { RedisStore } from "@ironlabsai/redis"
 *
 * // Share model health (a breaker opens for all once two instances saw it open) and
 * // rate budgets (refused while Redis is down: strict) between every process of the fleet.
 * const Shared = RedisStore.layer({
 *   url: "redis://localhost:6379",
 *   prefix: "my-service",
 *   minReporters: 2,
 *   strict: true,
 *   budget: { limits: { "openai/gpt-4o": { rpm: 500, tpm: 200_000 } } }
 * })
 *
 * @since 0.4.0
 */
import type { ModelHealth, RateBudget } from "@ironlabsai/core"
import { Layer } from "effect"
import * as RedisBudget from "./RedisBudget.js"
import * as RedisConnection from "./RedisConnection.js"
import * as RedisHealth from "./RedisHealth.js"

/**
 * The connection's options, and the stores'.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options extends RedisConnection.Options {
  /** How many instances must report an open breaker before it opens for all (default 1); `health.minReporters` too. */
  readonly minReporters?: number | undefined
  /** Refuse budgeted calls while Redis is down rather than count them in memory (default `false`); `budget.strict` too. */
  readonly strict?: boolean | undefined
  readonly health?: RedisHealth.Options | undefined
  readonly budget?: RedisBudget.Options | undefined
}

/**
 * The connection, the model-health store and the rate budgets, as one layer.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<RedisConnection.RedisConnection | ModelHealth.ModelHealthStore | RateBudget.RateBudget> =>
  Layer.mergeAll(
    RedisHealth.layer({
      ...options.health,
      ...(options.minReporters === undefined ? {} : { minReporters: options.minReporters })
    }),
    RedisBudget.layer({ ...options.budget, ...(options.strict === undefined ? {} : { strict: options.strict }) })
  ).pipe(Layer.provideMerge(RedisConnection.layer(options)))
