/**
 * The Redis connection the shared stores use: a node-redis client, a
 * subscriber, cluster-safe keys, Lua scripts, and a warning (not a failure)
 * when Redis is down.
 *
 * @since 0.4.0
 */
export * as RedisConnection from "./RedisConnection.js"

/**
 * Model health shared between processes through Redis: a `ModelHealth.Store`.
 *
 * @since 0.4.0
 */
export * as RedisHealth from "./RedisHealth.js"

/**
 * Rate budgets (`rpm`, `tpm`) shared between processes through Redis: a `RateBudget` service.
 *
 * @since 0.4.0
 */
export * as RedisBudget from "./RedisBudget.js"

/**
 * Both shared stores from one Redis connection, as one layer.
 *
 * @since 0.4.0
 */
export * as RedisStore from "./RedisStore.js"
