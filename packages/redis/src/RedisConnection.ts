/**
 * The Redis connection the shared stores (`RedisHealth`, `RedisBudget`) use:
 * a node-redis client for commands and a duplicate of it for `SUBSCRIBE`,
 * cluster-safe key names, Lua scripts run by `EVALSHA` (falling back to
 * `EVAL` once after a `NOSCRIPT`), and the fleet's change channel.
 *
 * It never makes anyone wait on Redis: it connects in the background (making
 * it does not fail when Redis is down), commands fail at once while it is
 * disconnected (`disableOfflineQueue`) rather than queue, and it reconnects by
 * itself. A failure is a `RedisUnavailable` error, counted in the
 * `ironlabsai.redis.errors` metric (tag `ironlabsai.operation`) and logged
 * once per outage as a warning (the URL's password never appears).
 *
 * @example
 * import { Effect } from "effect"
 * import { RedisConnection } from "@ironlabsai/redis"
 *
 * const program = Effect.gen(function* () {
 *   const redis = yield* RedisConnection.make({ url: "redis://localhost:6379" })
 *   const key = redis.keyOf("openai/gpt-4o", "health") // "ironlabsai:{openai/gpt-4o}:health"
 *   const now = yield* redis.time() // Redis TIME, in epoch millis
 *   return { key, now }
 * }).pipe(Effect.scoped)
 *
 * @since 0.4.0
 */
import { createHash, randomUUID } from "node:crypto"
import { Context, Duration, Effect, Layer, Metric, Runtime, Schema, type Scope } from "effect"
import { ClientClosedError, createClient, ErrorReply, SocketTimeoutError, TimeoutError } from "redis"

/**
 * Why a Redis command failed: the client is disconnected (`Offline`), it was
 * closed (`Closed`), no reply came in time (`Timeout`), or Redis answered
 * with an error (`Reply`).
 *
 * @since 0.4.0
 * @category errors
 */
export const Reason = Schema.Literal("Offline", "Closed", "Timeout", "Reply")

/**
 * @since 0.4.0
 * @category errors
 */
export type Reason = typeof Reason.Type

/**
 * A Redis command that failed: which operation (a script's name, or the
 * command), why, and what the client said (never the URL's credentials).
 *
 * @since 0.4.0
 * @category errors
 */
export class RedisUnavailable extends Schema.TaggedError<RedisUnavailable>("RedisUnavailable")("RedisUnavailable", {
  operation: Schema.String,
  reason: Reason,
  description: Schema.String
}) {
  override get message(): string {
    return `Redis ${this.operation} failed (${this.reason}): ${this.description}`
  }

  /** The error of a failed command, its description with `secrets` blanked out. */
  static fromCause(operation: string, cause: unknown, secrets: ReadonlyArray<string> = []): RedisUnavailable {
    const reason: Reason =
      cause instanceof ErrorReply
        ? "Reply"
        : cause instanceof ClientClosedError
          ? "Closed"
          : cause instanceof TimeoutError || cause instanceof SocketTimeoutError
            ? "Timeout"
            : "Offline"
    const text = cause instanceof Error ? cause.message || cause.name : String(cause)
    return new RedisUnavailable({ operation, reason, description: redactText(text, secrets) })
  }
}

/**
 * `ironlabsai.redis.errors`: Redis commands that failed (Redis down, slow or
 * answering an error), by `ironlabsai.operation`. Routing went on on local
 * state each time.
 *
 * @since 0.4.0
 * @category metrics
 */
export const errors: Metric.Metric.Counter<number> = Metric.counter("ironlabsai.redis.errors", {
  description: "Redis commands that failed; routing went on on local state.",
  incremental: true
})

/**
 * A Lua script, with its SHA1 computed once, for `Connection.evalScript`.
 *
 * @since 0.4.0
 * @category models
 */
export interface Script {
  /** The operation it is reported as (the metric's tag, the error's `operation`). */
  readonly name: string
  readonly source: string
  readonly sha1: string
}

/**
 * A script from its Lua source.
 *
 * @since 0.4.0
 * @category constructors
 */
export const script = (name: string, source: string): Script => ({
  name,
  source,
  sha1: createHash("sha1").update(source).digest("hex")
})

/**
 * The options of a connection.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  readonly url: string
  /** The first part of every key and of the channel (default `ironlabsai`): fleets sharing a Redis use different ones. */
  readonly prefix?: string | undefined
  /** How often the stores re-read Redis, a backstop for missed messages (default 1 s). */
  readonly reconcileInterval?: Duration.DurationInput | undefined
  /** How long a connection attempt may take (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** How long a command may wait for its reply before it fails (default 2 s). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** The longest pause between reconnection attempts (default 1 s). */
  readonly maxReconnectDelay?: Duration.DurationInput | undefined
}

/**
 * A connection to Redis, shared by the stores made from it.
 *
 * @since 0.4.0
 * @category models
 */
export interface Connection {
  /** The first part of every key, and of the channel. */
  readonly prefix: string
  /** The backstop poll's interval the stores use unless told otherwise. */
  readonly reconcileInterval: Duration.Duration
  /**
   * The key of one part of one model's state: `${prefix}:{${model}}:${part}`.
   * The model id in braces is the Cluster hash tag, so all of a model's keys
   * are on one slot and a script may touch several of them.
   */
  readonly keyOf: (model: string, part: string) => string
  /** The channel changes are published on: `${prefix}:changes`. */
  readonly channel: string
  /** This connection's id, random: how the fleet tells its instances apart (reporters, probe leases). */
  readonly instanceId: string
  /** The URL with its password replaced by `***`, for logs. */
  readonly redactedUrl: string
  /** Whether commands can be sent now. */
  readonly isReady: () => boolean
  /** Calls `listener` each time the connection becomes ready (the first time, and after each reconnection) while the scope is open. */
  readonly onReady: (listener: () => void) => Effect.Effect<void, never, Scope.Scope>
  /** Publishes `message` on the channel. */
  readonly publish: (message: string) => Effect.Effect<void, RedisUnavailable>
  /** Calls `listener` with each message on the channel while the scope is open (re-subscribed after reconnections). */
  readonly subscribe: (listener: (message: string) => void) => Effect.Effect<void, never, Scope.Scope>
  /** Runs a script (`EVALSHA`, then `EVAL` once on `NOSCRIPT`) on `keys` with `args`. */
  readonly evalScript: (
    script: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>
  ) => Effect.Effect<unknown, RedisUnavailable>
  /** Sends one command, reported as `operation` when it fails. */
  readonly command: (
    args: ReadonlyArray<string | number>,
    operation?: string
  ) => Effect.Effect<unknown, RedisUnavailable>
  /** Redis `TIME`, in epoch millis. */
  readonly time: () => Effect.Effect<number, RedisUnavailable>
  /**
   * Counts a failure in `ironlabsai.redis.errors` and logs it as a warning,
   * once per outage (until the connection is ready again). The stores call
   * it for the failures they absorb; `evalScript`, `command`, `publish` and
   * `time` do not call it themselves.
   */
  readonly report: (error: RedisUnavailable) => Effect.Effect<void>
}

/**
 * The Redis connection, as a service.
 *
 * @since 0.4.0
 * @category tags
 */
export class RedisConnection extends Context.Tag("ironlabsai/RedisConnection")<RedisConnection, Connection>() {}

/**
 * A URL with its password (and a lone user name's secret) replaced by `***`.
 *
 * @since 0.4.0
 * @category utils
 */
export const redactUrl = (url: string): string => url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, redactUserinfo)

const redactUserinfo = (_match: string, scheme: string, userinfo: string): string => {
  const colon = userinfo.indexOf(":")
  return colon === -1 ? `${scheme}***@` : `${scheme}${userinfo.slice(0, colon)}:***@`
}

/** The secrets in a URL's user info (decoded and not), to blank out of error texts. */
const secretsOf = (url: string): ReadonlyArray<string> => {
  const found = /^[a-z][a-z0-9+.-]*:\/\/([^@/]*)@/i.exec(url)?.[1]
  if (found === undefined || found === "") return []
  const colon = found.indexOf(":")
  const secret = colon === -1 ? found : found.slice(colon + 1)
  if (secret === "") return []
  let decoded = secret
  try {
    decoded = decodeURIComponent(secret)
  } catch {
    // Not percent-encoded: the raw text is the secret.
  }
  return decoded === secret ? [secret] : [secret, decoded]
}

const redactText = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = redactUrl(text)
  for (const secret of secrets) out = out.split(secret).join("***")
  return out
}

/** The error metric of one operation, made once. */
const errorsByOperation = new Map<string, Metric.Metric.Counter<number>>()
const errorsOf = (operation: string): Metric.Metric.Counter<number> => {
  let found = errorsByOperation.get(operation)
  if (found === undefined) {
    found = Metric.tagged(errors, "ironlabsai.operation", operation)
    errorsByOperation.set(operation, found)
  }
  return found
}

/**
 * Connects to Redis in the background: it returns at once, whether or not
 * Redis is up, and the scope's end closes both clients.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const prefix = options.prefix ?? "ironlabsai"
    const channel = `${prefix}:changes`
    const redactedUrl = redactUrl(options.url)
    const secrets = secretsOf(options.url)
    const commandTimeout = Duration.toMillis(options.commandTimeout ?? Duration.seconds(2))
    const maxDelay = Duration.toMillis(options.maxReconnectDelay ?? Duration.seconds(1))
    const reconnectStrategy = (retries: number): number =>
      Math.min(maxDelay, 50 * 2 ** Math.min(retries, 10)) + Math.floor(Math.random() * 50)

    const client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: {
        reconnectStrategy,
        connectTimeout: Duration.toMillis(options.connectTimeout ?? Duration.seconds(5))
      }
    })
    // The subscriber keeps its SUBSCRIBE queued until it connects, and node-redis subscribes again after a reconnection.
    const subscriber = client.duplicate({ disableOfflineQueue: false })

    const log = (effect: Effect.Effect<void>): void => {
      runFork(Effect.annotateLogs(effect, { "redis.url": redactedUrl, "redis.prefix": prefix }))
    }
    /** Whether the current outage was already logged. */
    let warned = false
    /** Whether the connection was ever ready (a reconnection is logged as such). */
    let everReady = false
    const warnOnce = (text: string, operation: string, description: string): void => {
      if (warned) return
      warned = true
      log(
        Effect.logWarning(text).pipe(
          Effect.annotateLogs({ "ironlabsai.operation": operation, "redis.error": description })
        )
      )
    }

    const readyListeners = new Set<() => void>()
    const messageListeners = new Set<(message: string) => void>()
    client.on("error", (error: unknown) => {
      const description = redactText(error instanceof Error ? error.message || error.name : String(error), secrets)
      warnOnce(
        everReady
          ? "Redis is unreachable: routing goes on on local state until it is back"
          : "Redis is not reachable yet: routing goes on on local state, connecting in the background",
        "connect",
        description
      )
    })
    subscriber.on("error", () => {
      // The command client reports the outage; the subscriber reconnects by itself.
    })
    client.on("ready", () => {
      if (warned || everReady) log(Effect.logInfo("Redis is reachable again: resynchronising shared state"))
      warned = false
      everReady = true
      for (const listener of readyListeners) listener()
    })

    client.connect().catch(() => {
      // Errors are reported by the "error" listener; the client keeps reconnecting until it is closed.
    })
    subscriber.connect().catch(() => {})
    subscriber
      .subscribe(channel, (message: string) => {
        for (const listener of messageListeners) listener(message)
      })
      .catch(() => {})

    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        readyListeners.clear()
        messageListeners.clear()
        for (const each of [subscriber, client]) {
          try {
            if (each.isReady) await Promise.race([each.close(), new Promise((resolve) => setTimeout(resolve, 500))])
            if (each.isOpen) each.destroy()
          } catch {
            // Already closed.
          }
        }
      })
    )

    const send = (args: ReadonlyArray<string>, operation: string): Effect.Effect<unknown, RedisUnavailable> =>
      Effect.tryPromise({
        try: () => client.sendCommand(args, { timeout: commandTimeout }) as Promise<unknown>,
        catch: (cause) => RedisUnavailable.fromCause(operation, cause, secrets)
      })

    const evalScript: Connection["evalScript"] = (script, keys, args) => {
      const rest = [String(keys.length), ...keys, ...args.map(String)]
      return Effect.catchIf(
        send(["EVALSHA", script.sha1, ...rest], script.name),
        (error) => error.reason === "Reply" && error.description.startsWith("NOSCRIPT"),
        () => send(["EVAL", script.source, ...rest], script.name)
      )
    }

    const time: Connection["time"] = () =>
      Effect.map(send(["TIME"], "time"), (reply) => {
        const [seconds, micros] = reply as [string, string]
        return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
      })

    const report: Connection["report"] = (error) =>
      Effect.suspend(() => {
        warnOnce(
          `Redis ${error.operation} failed: routing goes on on local state`,
          error.operation,
          `${error.reason}: ${error.description}`
        )
        return Metric.increment(errorsOf(error.operation))
      })

    const connection: Connection = {
      prefix,
      reconcileInterval: Duration.decode(options.reconcileInterval ?? Duration.seconds(1)),
      keyOf: (model, part) => `${prefix}:{${model}}:${part}`,
      channel,
      instanceId: randomUUID(),
      redactedUrl,
      isReady: () => client.isReady,
      onReady: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => readyListeners.add(listener)),
          () => Effect.sync(() => readyListeners.delete(listener))
        ),
      publish: (message) => Effect.asVoid(send(["PUBLISH", channel, message], "publish")),
      subscribe: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => messageListeners.add(listener)),
          () => Effect.sync(() => messageListeners.delete(listener))
        ),
      evalScript,
      command: (args, operation) => send(args.map(String), operation ?? String(args[0] ?? "command").toLowerCase()),
      time,
      report
    }
    return connection
  })

/**
 * The connection as a layer.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RedisConnection> => Layer.scoped(RedisConnection, make(options))
