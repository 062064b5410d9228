/**
 * Helpers of the Redis tests: connections with a prefix of their own, waiting
 * for a connection, polling with a deadline on the real clock.
 */
import { randomUUID } from "node:crypto"
import { Effect, HashMap, Logger, Metric, type Scope } from "effect"
import * as RedisConnection from "../../src/RedisConnection.js"

/** A prefix no other test uses. */
export const uniquePrefix = (): string => `test-${randomUUID().slice(0, 8)}`

/** Waits on the real clock (TestClock or not). */
export const realSleep = (millis: number): Effect.Effect<void> =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

/** Polls `check` every 5 ms on the real clock until it holds; fails the test with `what` after `timeoutMillis`. */
export const eventually = <A, E>(
  what: string,
  check: Effect.Effect<A | undefined | false, E>,
  timeoutMillis = 2_000
): Effect.Effect<A, E> =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMillis
    for (;;) {
      const value = yield* check
      if (value !== undefined && value !== false) return value
      if (Date.now() > deadline)
        return yield* Effect.dieMessage(`timed out after ${timeoutMillis} ms waiting for: ${what}`)
      yield* realSleep(5)
    }
  })

/** A connection to `url`, waited for until it is ready. */
export const connect = (
  options: RedisConnection.Options
): Effect.Effect<RedisConnection.Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const connection = yield* RedisConnection.make(options)
    yield* eventually(`a connection to ${options.url}`, Effect.sync(connection.isReady))
    return connection
  })

/** CRC16/XMODEM, as Redis Cluster hashes keys. */
const crc16 = (bytes: Uint8Array): number => {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** The Cluster slot of a key (its hash tag's, when it has one), as `CLUSTER KEYSLOT` computes it. */
export const keySlot = (key: string): number => {
  let hashed = key
  const open = key.indexOf("{")
  if (open !== -1) {
    const close = key.indexOf("}", open + 1)
    if (close > open + 1) hashed = key.slice(open + 1, close)
  }
  return crc16(new TextEncoder().encode(hashed)) % 16384
}

/** Log lines an Effect program wrote, and the layer that collects them. */
export const collectLogs = () => {
  const lines: Array<{ readonly level: string; readonly message: string; readonly annotations: string }> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: JSON.stringify(Object.fromEntries(HashMap.toEntries(annotations)))
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** How many failures `ironlabsai.redis.errors` counted for `operation`, so far in this process. */
export const errorCount = (operation: string): Effect.Effect<number> =>
  Effect.map(Metric.value(Metric.tagged(RedisConnection.errors, "ironlabsai.operation", operation)), (state) =>
    Number(state.count)
  )
