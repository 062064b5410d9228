/**
 * The Promise facade for programs that do not use Effect:
 * `new IronlabsAI({ reliability })` validates the config at once (throwing a
 * `ReliabilityConfigError` that names every offending path), and
 * `client.completions.create(request, { signal, timeout })` resolves to an
 * OpenAI-shaped completion or rejects with the Effect error itself (`_tag` and
 * fields kept), with an `AbortError` when its signal fires, or with
 * `ClientClosed` once the client is closed. With `stream: true` it resolves to
 * an async iterator of OpenAI chunks.
 *
 * What the router decides is observable three ways: typed events
 * (`client.on("failover", listener)`), log lines (the `logger` and `logLevel`
 * options; warnings to the console by default), and OpenTelemetry spans and
 * metrics (the `telemetry` option and `ironlabsai/OpenTelemetry`).
 *
 * What it learns about each model (holds, open breakers) and its rate
 * budgets stay in the process, unless the `redis` option (or the
 * `IRONLABSAI_REDIS_URL` environment variable) shares them with the other
 * processes of a fleet through Redis, with `@ironlabsai/redis` installed.
 *
 * @example
 * import { IronlabsAI } from "ironlabsai"
 *
 * const client = new IronlabsAI({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }, { model: "anthropic/claude-3-5-haiku-20241022" }] }
 * })
 * const response = await client.completions.create({ messages: [{ role: "user", content: "Describe a sunset." }] })
 * console.log(response.choices[0]?.message.content, "Model used:", response.model)
 *
 * @since 0.1.0
 */

import {
  ChatCompletion,
  IronlabsClient as Core,
  ModelHealth,
  RateBudget,
  Reliability,
  RouteEvent,
  type Router,
  RoutingError
} from "@ironlabsai/core"
import { UndiciHttpClient } from "@ironlabsai/http"
import {
  Cause,
  type Chunk,
  Clock,
  Config,
  Duration,
  Effect,
  Either,
  Logger as EffectLogger,
  LogLevel as EffectLogLevel,
  Exit,
  type Fiber,
  FiberRef,
  type HashMap,
  identity,
  Layer,
  ManagedRuntime,
  Option,
  Predicate,
  Schema,
  Stream
} from "effect"
import * as DefaultProviders from "./DefaultProviders.js"
import { IronlabsClient } from "./IronlabsClient.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends DefaultProviders.Options {
  /** The seed's config: weights and per-model maps, or `failover_chain`. */
  readonly reliability: Reliability.Input
  /**
   * A default overall deadline for each request, in seconds: a finite number
   * above 0 (else a `TypeError` for a value that is not a number, a
   * `RangeError` for one out of range). `null` or `undefined`: none.
   */
  readonly timeout?: number | null | undefined
  /**
   * Where the library's log lines go: an object with any of `debug`, `info`,
   * `warn` and `error`, each called with the message and its fields (the
   * model, the reason, ...; never a key or a prompt), so `console` itself
   * fits, as does a pino or winston logger wrapped in a line each; a level
   * the object has no function for is dropped. `false` silences the library.
   * `null` or `undefined`: the console, one line per message
   * (`ironlabsai: breaker opened model=openai/gpt-4o reason=Overloaded until=...`).
   * A logger that throws is ignored. Anything else is a `TypeError`.
   *
   * @since 0.4.0
   */
  readonly logger?: Logger | false | null | undefined
  /**
   * The least severe lines logged: `"debug"` (each routing decision:
   * retrying, failing over, skipped, retry budget spent), `"info"` (a breaker
   * probing, closing), `"warn"` (a model held, a breaker opened, a config that
   * is valid but almost certainly a mistake), `"error"` (a listener that
   * threw), or `"silent"`. `null` or `undefined`: `"warn"`. Anything else is
   * a `TypeError`.
   *
   * @since 0.4.0
   */
  readonly logLevel?: LogLevel | null | undefined
  /**
   * Where spans go: `tracing()` from `ironlabsai/OpenTelemetry`, which sends
   * one `ironlabsai.route` span per request and a `chat {model}` client span
   * per call to the OpenTelemetry tracer provider (the global one, registered
   * by `NodeSDK.start()`, or the one given). `null` or `undefined`: no spans
   * are made, at no cost. Metrics need no option: see `metricProducer()`.
   *
   * @since 0.4.0
   */
  readonly telemetry?: Tracing | null | undefined
  /**
   * Whether the `chat {model}` spans carry the messages sent and the answer
   * (`gen_ai.input.messages`, `gen_ai.output.messages`). Off by default: a
   * prompt is the user's data. A boolean, else a `TypeError`.
   *
   * @since 0.4.0
   */
  readonly recordContent?: boolean | null | undefined
  /**
   * Shares model health (holds, open breakers, the half-open probe) and the
   * `rate_limits` budgets with the other processes that use the same Redis,
   * through `@ironlabsai/redis` (an optional peer dependency: install it
   * beside `ironlabsai`). A `redis://` or `rediss://` URL, or `RedisOptions`.
   * `null` or `undefined`: the `IRONLABSAI_REDIS_URL` environment variable
   * (with `IRONLABSAI_REDIS_PREFIX`) when it is set, else nothing is shared.
   * `false`: nothing is shared, whatever the environment says. Redis is never
   * on a request's path, and a request never fails because Redis is slow or
   * down (unless `strict`). Call `close()` when done: the Redis connections
   * keep the process alive until then. A value of the wrong type is a
   * `TypeError`, a number out of range a `RangeError`, each naming the option
   * (never a password); a missing `@ironlabsai/redis` is an `Error` naming it.
   *
   * @since 0.4.0
   */
  readonly redis?: RedisOptions | string | false | null | undefined
}

/**
 * Where and how a client shares its model health and rate budgets through
 * Redis (the `redis` option). See `docs/running-many-instances.md`.
 *
 * @example
 * import { IronlabsAI } from "ironlabsai"
 *
 * const client = new IronlabsAI({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }, { model: "anthropic/claude-3-5-haiku-20241022" }] },
 *   redis: { url: "rediss://app:secret@redis.internal:6380", prefix: "checkout", minReporters: 2 }
 * })
 *
 * @since 0.4.0
 * @category models
 */
export interface RedisOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. */
  readonly url: string
  /**
   * The first part of every key and of the change channel (default
   * `ironlabsai`): fleets that share one Redis but not their state use
   * different ones. A non-empty string without `{` or `}`.
   */
  readonly prefix?: string | null | undefined
  /**
   * Whether the `rate_limits` budgets refuse calls while Redis is down (fail
   * closed) rather than count them in this process's memory. Default `false`.
   */
  readonly strict?: boolean | null | undefined
  /**
   * How many distinct processes must report an open breaker within the
   * breaker's window before it opens for all: an integer >= 1, default 1 (the
   * first open is shared at once). Holds are always shared at once.
   */
  readonly minReporters?: number | null | undefined
  /**
   * How often the shared state is read again, in seconds: the backstop for a
   * change whose message was missed. A finite number above 0, default 1.
   */
  readonly reconcileInterval?: number | null | undefined
}

/**
 * What the client logs through: any of the four levels, each called with
 * the message and its fields (`model`, `reason`, `until`, `delay_ms`, ...).
 * `console` fits; so does an object that forwards to pino or winston:
 * `{ warn: (message, fields) => pino.warn(fields, message) }`.
 *
 * @example
 * import { IronlabsAI } from "ironlabsai"
 *
 * const lines: Array<string> = []
 * const client = new IronlabsAI({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }, { model: "anthropic/claude-3-5-haiku-20241022" }] },
 *   logger: { debug: (message, fields) => lines.push(`${message} ${JSON.stringify(fields)}`) },
 *   logLevel: "debug"
 * })
 *
 * @since 0.4.0
 * @category models
 */
export interface Logger {
  readonly debug?: LogFunction | undefined
  readonly info?: LogFunction | undefined
  readonly warn?: LogFunction | undefined
  readonly error?: LogFunction | undefined
}

/**
 * One level of a `Logger`: the message, and the fields it is about.
 *
 * @since 0.4.0
 * @category models
 */
export type LogFunction = (message: string, fields: Record<string, unknown>) => void

/**
 * The least severe level logged; `"silent"` logs nothing.
 *
 * @since 0.4.0
 * @category models
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent"

/**
 * Where the facade's spans go: made by `tracing()` of
 * `ironlabsai/OpenTelemetry` (the module that needs the OpenTelemetry
 * packages; the facade itself does not), given as the `telemetry` option.
 * Opaque: an Effect `Layer` that installs a tracer in the client's runtime.
 *
 * @since 0.4.0
 * @category models
 */
export interface Tracing {
  readonly _tag: "Tracing"
  readonly layer: Layer.Layer<never>
}

/**
 * The events `client.on(type, listener)` delivers, by type: the router's
 * decisions for every request (`RouteEvent`), as they happen, and model
 * health's transitions (`ModelHealth.Transition`). An event names models,
 * reasons and numbers, never a key or a prompt.
 *
 * - `attempt`: a call to a model ended (`outcome` `success`, `failure`
 *   with `reason` and `status`, or `cancelled`), `attempt` counting the calls
 *   to that model in the request from 1.
 * - `retry`: the model is called again after `delay_ms`.
 * - `failover`: the request leaves the model for the `to_models` left.
 * - `skip`: a model passed over without a call, and why.
 * - `health`: a model's state changed (`healthy`, `held`, `open`,
 *   `half-open`), with `until` and `reason` when it is held or open.
 *
 * @since 0.4.0
 * @category models
 */
export interface Events {
  readonly attempt: RouteEvent.AttemptEvent
  readonly retry: RouteEvent.RetryEvent
  readonly failover: RouteEvent.FailoverEvent
  readonly skip: RouteEvent.SkipEvent
  readonly health: ModelHealth.Transition
}

/**
 * A listener of one type of event.
 *
 * @since 0.4.0
 * @category models
 */
export type Listener<K extends keyof Events> = (event: Events[K]) => void

/**
 * The options of one `create` call, checked as `fetch` checks its own before
 * anything is sent: a value of the wrong type is a `TypeError`, a number out
 * of range a `RangeError`, each naming the option; `null` or `undefined`
 * options, and options left `undefined`, mean "not given". Keys other than
 * these are refused with a `TypeError` naming them rather than ignored.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /**
   * Cancels the request: the HTTP call in flight is aborted, nothing is
   * retried, and the call rejects with an `AbortError` (a stream's iterator
   * throws it, dropping the chunks not yet read). An `AbortSignal`, or any
   * object `fetch` takes for one (a boolean `aborted` and `addEventListener`);
   * `null` and `undefined` mean none. Many calls may share one signal: the
   * client adds one listener to it while any of them is in flight, and
   * removes it when the last one ends (a stream ends when the provider has
   * sent all of it, read or not).
   */
  readonly signal?: AbortSignal | null | undefined
  /**
   * The overall deadline of this request in seconds, all attempts and backoff
   * included; for a stream, until the provider has sent its last chunk
   * (however slowly the consumer reads them). A finite number above 0;
   * `null` or `undefined` mean the client's `timeout`.
   */
  readonly timeout?: number | null | undefined
}

/**
 * `create` was called on a client after its `close()`; or the call was in
 * flight when `close()` was called, which cancels it as an abort would (no
 * retry, no failover, no health penalty).
 *
 * @since 0.3.0
 * @category errors
 */
export class ClientClosed extends Schema.TaggedError<ClientClosed>("ClientClosed")("ClientClosed", {}) {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return "The IronlabsAI client is closed: close() was called, so it sends no more requests"
  }
}

/**
 * Something failed that the library does not expect to fail: a bug, which
 * reaches the caller as this error rather than as whatever a lower library
 * threw. `defect` names the kind of that failure (its `_tag` or class name)
 * and nothing else: its message and fields may hold a request's headers.
 *
 * @since 0.3.0
 * @category errors
 */
export class InternalError extends Schema.TaggedError<InternalError>("InternalError")("InternalError", {
  defect: Schema.String
}) {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return `IronlabsAI failed unexpectedly (${this.defect}); this is a bug, please report it`
  }
}

/**
 * The Promise client.
 *
 * @since 0.1.0
 * @category clients
 */
export class IronlabsAI {
  /**
   * What `create` rejects with after `close()`.
   *
   * @since 0.3.0
   */
  static readonly ClientClosed = ClientClosed

  /**
   * What `create` rejects with when the library itself fails unexpectedly.
   *
   * @since 0.3.0
   */
  static readonly InternalError = InternalError

  /**
   * The normalised plan the config decoded to.
   *
   * @since 0.1.0
   */
  readonly plan: Reliability.Plan

  /**
   * @since 0.1.0
   */
  readonly completions: Completions

  readonly #runtime: ManagedRuntime.ManagedRuntime<Core.IronlabsClient, unknown>
  /** The calls in flight (streams until the provider has sent all), each by the function that stops it. */
  readonly #calls = new Set<Stop>()
  #closing: Promise<void> | undefined
  /** The listeners of each type, in the order added; replaced, never mutated, so a dispatch in progress is unaffected. */
  readonly #listeners: Record<keyof Events, ReadonlyArray<AnyListener> | undefined> = {
    attempt: undefined,
    retry: undefined,
    failover: undefined,
    skip: undefined,
    health: undefined
  }
  /** The fiber reading model health's transitions, while there is a `health` listener. */
  #healthFiber: Fiber.RuntimeFiber<void, unknown> | undefined
  readonly #log: Log
  /** Whether the runtime is built: with Redis, once `@ironlabsai/redis` is loaded (at once without). */
  #loaded = false

  constructor(options: ClientOptions) {
    // The config is decoded once and env read once, here, so that a bad config, key or URL throws now and
    // not at the first request; the client routes over this very plan.
    const plan = Either.getOrThrowWith(
      Reliability.decode(options.reliability, { providers: DefaultProviders.prefixes }),
      identity
    )
    const connections = Either.getOrThrowWith(
      Effect.runSync(
        Effect.either(
          DefaultProviders.resolveChecked(
            options,
            plan.models.map((m) => m.model.provider)
          )
        )
      ),
      identity
    )
    this.plan = plan
    const timeout = seconds(options.timeout, "timeout")
    const log = makeLog(options.logger, options.logLevel)
    const telemetry = checkTelemetry(options.telemetry)
    const recordContent = checkBoolean(options.recordContent, "recordContent")
    const redis = checkRedis(options.redis)
    this.#log = log
    // What is valid but almost certainly a mistake (a timeout in milliseconds) is said at once, as a warning.
    Effect.runSync(Effect.provide(Core.logWarnings(plan), log.layer))
    // One dispatcher for every request: it returns at once for a type nobody listens to.
    const listeners = this.#listeners
    const dispatcher: RouteEvent.Listener = (event) => {
      const current = listeners[event.type]
      if (current !== undefined) dispatch(current, event.type, event, log)
    }
    // Read by the client at each request: with no route listener, the router makes no event at all.
    const clientOptions = {
      timeout,
      recordContent,
      get onEvent(): RouteEvent.Listener | undefined {
        return (listeners.attempt ?? listeners.retry ?? listeners.failover ?? listeners.skip) ? dispatcher : undefined
      }
    }
    const layer =
      redis === undefined
        ? Layer.effect(
            IronlabsClient,
            Effect.map(DefaultProviders.fromResolved(connections), (providers) =>
              Core.fromPlan(plan, providers, clientOptions)
            )
          ).pipe(Layer.provide(UndiciHttpClient.layer))
        : Layer.effect(IronlabsClient, sharedClient(plan, connections, clientOptions)).pipe(
            // The Redis connection logs through the client's logger (its warnings when Redis is down).
            Layer.provide(Layer.merge(UndiciHttpClient.layer, Layer.provide(redisLayer(redis, plan), log.layer)))
          )
    this.#runtime = ManagedRuntime.make(
      telemetry === undefined ? Layer.merge(layer, log.layer) : Layer.mergeAll(layer, log.layer, telemetry.layer)
    )
    if (redis !== undefined) {
      // Connected now, so that the fleet's state comes in before the first request, and so that `health()`
      // (synchronous) can read it: until the store is loaded, nothing is known and every model is healthy.
      const loaded = () => {
        this.#loaded = true
      }
      // A failure to load is each request's (and `health()`'s) to report.
      this.#runtime.runtime().then(loaded, loaded)
    } else this.#loaded = true
    const start: Start = (effect, signal, onExit) => this.#start(effect, signal, onExit)
    const closed = () => this.#closing !== undefined
    function create(
      request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
      options?: RequestOptions | null
    ): Promise<AsyncIterable<ChatCompletion.ChatCompletionChunk>>
    function create(
      request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | null | undefined },
      options?: RequestOptions | null
    ): Promise<Router.RoutedCompletion>
    function create(input: ChatCompletion.ChatCompletionRequest, requestOptions?: unknown) {
      // Callers may be untyped JavaScript: the options are checked here and the request by the client (as
      // for Effect callers), before any model is called; problems are a rejected promise, never a throw.
      let checked: Checked
      try {
        checked = checkOptions(requestOptions)
      } catch (error) {
        return Promise.reject(error)
      }
      if (closed()) return Promise.reject(new ClientClosed())
      const { createOptions, signal } = checked
      if (signal?.aborted === true) return Promise.reject(abortError())
      if ((input as { readonly stream?: unknown } | null)?.stream !== true) {
        const request = input as ChatCompletion.ChatCompletionRequest & { readonly stream?: false }
        return new Promise<Router.RoutedCompletion>((resolve, reject) => {
          start(
            Effect.flatMap(IronlabsClient, (client) => client.completions.create(request, createOptions)),
            signal,
            (exit, stopped) => (Exit.isSuccess(exit) ? resolve(exit.value) : reject(toError(exit.cause, stopped)))
          )
        })
      }
      const request = input as ChatCompletion.ChatCompletionRequest & { readonly stream: true }
      return ChunkIterator.open(
        Stream.unwrap(Effect.map(IronlabsClient, (client) => client.completions.create(request, createOptions))),
        start,
        signal
      )
    }
    this.completions = { create }
  }

  /**
   * Each model of the plan, in plan order, as the router remembers it now:
   * `state` (`healthy`, `held`, `open`, `half-open`), `until` (epoch millis)
   * and `reason` for a held or open model, and the counters that explain it.
   * Throws `ClientClosed` after `close()`.
   *
   * @since 0.2.0
   */
  health(): ReadonlyArray<ModelHealth.ModelStatus> {
    if (this.#closing !== undefined) throw new ClientClosed()
    // With Redis, the store loads in the background: until it has, nothing is known about any model.
    if (!this.#loaded) return this.plan.models.map((m) => ModelHealth.healthy(m.model.id))
    const exit = this.#runtime.runSyncExit(Effect.flatMap(IronlabsClient, (client) => client.health))
    if (Exit.isSuccess(exit)) return exit.value
    throw toError(exit.cause, undefined)
  }

  /**
   * Adds a listener of one type of event (`Events`): `attempt`, `retry`,
   * `failover` and `skip` for every request's routing, `health` for model
   * health's transitions. Route events are delivered synchronously, in the
   * order they happen, while the request is routed; `health` events in the
   * order of the transitions, from the moment the first `health` listener is
   * added (model health is watched only while one is). A listener that
   * throws does not break the request: it is logged at error level with the
   * event type and the class of what it threw. As with Node's
   * `EventEmitter`, adding a listener twice delivers each event to it twice.
   * An unknown type or a listener that is not a function is a `TypeError`.
   * Returns the client, for chaining.
   *
   * @example
   * import { IronlabsAI } from "ironlabsai"
   *
   * const client = new IronlabsAI({
   *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }, { model: "anthropic/claude-3-5-haiku-20241022" }] }
   * })
   * client
   *   .on("failover", (event) => console.log(`${event.model} failed (${event.reason}), ${event.to_models} left`))
   *   .on("health", (t) => console.log(`${t.model}: ${t.from} -> ${t.to}`))
   *
   * @since 0.4.0
   */
  on<K extends keyof Events>(type: K, listener: Listener<K>): this {
    checkListener(type, listener, "on")
    const current = this.#listeners[type]
    this.#listeners[type] = current === undefined ? [listener as AnyListener] : [...current, listener as AnyListener]
    if (type === "health") this.#watchHealth()
    return this
  }

  /**
   * Removes a listener added with `on` (the last one added, if it was added
   * more than once); a listener that was not added is ignored. Removing the
   * last `health` listener stops watching model health. Returns the client.
   *
   * @since 0.4.0
   */
  off<K extends keyof Events>(type: K, listener: Listener<K>): this {
    checkListener(type, listener, "off")
    const current = this.#listeners[type]
    const index = current === undefined ? -1 : current.lastIndexOf(listener as AnyListener)
    if (current === undefined || index === -1) return this
    const rest = current.filter((_, i) => i !== index)
    this.#listeners[type] = rest.length === 0 ? undefined : rest
    if (type === "health" && rest.length === 0) void this.#unwatchHealth()
    return this
  }

  /**
   * Closes the client: the calls in flight are cancelled as an abort would
   * cancel them, and reject with `ClientClosed` (a stream's iterator throws
   * it); then the HTTP connections are closed. Later calls to `create`
   * reject with `ClientClosed`, and no `health` event is delivered any more.
   * With `redis`, it also lets the last outcomes' writes reach Redis (half a
   * second at most), gives back what this process holds of the shared rate
   * budgets, and closes the Redis connections. Optional without
   * `redis`: a script that never calls it still exits by itself; with
   * `redis`, the connections keep the process alive until it is called.
   * Calling it again returns the same promise.
   *
   * @since 0.1.0
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all([...Array.from(this.#calls, (stop) => stop("close")), this.#unwatchHealth()]).then(
      () => this.#runtime.dispose()
    )
    return this.#closing
  }

  /** Starts reading model health's transitions for the `health` listeners, unless it is reading them or closed. */
  #watchHealth(): void {
    if (this.#healthFiber !== undefined || this.#closing !== undefined) return
    const listeners = this.#listeners
    const log = this.#log
    const fiber = this.#runtime.runFork(
      Effect.flatMap(IronlabsClient, (client) =>
        Stream.runForEach(client.healthChanges, (transition) =>
          Effect.sync(() => {
            const current = listeners.health
            if (current !== undefined) dispatch(current, "health", transition, log)
          })
        )
      )
    )
    this.#healthFiber = fiber
    fiber.addObserver(() => {
      if (this.#healthFiber === fiber) this.#healthFiber = undefined
    })
  }

  /** Stops reading model health's transitions; resolves once the reading fiber has ended. */
  #unwatchHealth(): Promise<void> {
    const fiber = this.#healthFiber
    if (fiber === undefined) return Promise.resolve()
    this.#healthFiber = undefined
    const ended = new Promise<void>((resolve) => fiber.addObserver(() => resolve()))
    fiber.unsafeInterruptAsFork(fiber.id())
    return ended
  }

  /**
   * Runs `effect` in its own fiber, stopped by `signal` (through one listener
   * per signal, however many calls share it) and by `close()`; `onExit` gets
   * its exit and why it was stopped, if it was.
   */
  #start<A, E>(
    effect: Effect.Effect<A, E, Core.IronlabsClient>,
    signal: AbortSignal | undefined,
    onExit: (exit: Exit.Exit<A, unknown>, stopped: Stopped | undefined) => void
  ): Stop {
    const fiber: Fiber.RuntimeFiber<A, unknown> = this.#runtime.runFork(effect)
    let stopped: Stopped | undefined
    const ended = new Promise<void>((resolve) => fiber.addObserver(() => resolve()))
    const stop: Stop = (reason) => {
      stopped ??= reason
      fiber.unsafeInterruptAsFork(fiber.id())
      return ended
    }
    const unsubscribe = signal === undefined ? undefined : onAbort(signal, () => void stop("abort"))
    this.#calls.add(stop)
    fiber.addObserver((exit) => {
      unsubscribe?.()
      this.#calls.delete(stop)
      onExit(exit, stopped)
    })
    return stop
  }
}

/**
 * `create` resolves to a completion, or, with `stream: true`, to an async
 * iterable of OpenAI chunks, as the OpenAI SDK does.
 *
 * The iterable is its own async iterator and follows the protocol as an
 * async generator (and so the OpenAI SDK's `Stream`) does: `next()` calls
 * made without awaiting the previous queue, and each gets the next chunk in
 * order; after the last chunk every pending and later call resolves
 * `{ done: true }`; when the stream fails, the first pending call rejects
 * and the others resolve `{ done: true }`. Unlike a generator's, `return()`
 * does not wait behind a pending `next()`: it settles every pending call
 * with `{ done: true }`, closes the HTTP request, and resolves
 * `{ value, done: true }` once it is closed (this is what `break` in a
 * `for await` loop calls). `throw(error)` does the same and rejects with
 * `error`.
 *
 * The promise settles at the commit: it resolves once the first content is
 * in, so every failover failure rejects it (with `AllModelsFailed`, say).
 * From then on the stream is read as the provider sends it, whether or not
 * the consumer is pulling, into a buffer the consumer drains; so the
 * per-model `timeout` bounds each gap between the provider's chunks and the
 * overall deadline the provider's last chunk, and a consumer that pulls
 * slowly never causes either. A consumer that stops pulling without calling
 * `return()` does not keep the request open: it ends when the provider has
 * sent everything (or at a timeout, the deadline or the stream's size cap),
 * and what was read stays buffered until the iterator is dropped.
 *
 * @since 0.1.0
 * @category models
 */
export interface Completions {
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
    options?: RequestOptions | null
  ): Promise<AsyncIterable<ChatCompletion.ChatCompletionChunk>>
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | null | undefined },
    options?: RequestOptions | null
  ): Promise<Router.RoutedCompletion>
}

/** Why the facade interrupted a call: its signal fired, `close()` was called, or the consumer left a stream. */
type Stopped = "abort" | "close" | "return"

/** Interrupts a call for a reason (the first reason given stays); resolves once the call has ended. */
type Stop = (reason: Stopped) => Promise<void>

type Start = <A, E>(
  effect: Effect.Effect<A, E, Core.IronlabsClient>,
  signal: AbortSignal | undefined,
  onExit: (exit: Exit.Exit<A, unknown>, stopped: Stopped | undefined) => void
) => Stop

type Waiter = {
  readonly resolve: (result: IteratorResult<ChatCompletion.ChatCompletionChunk>) => void
  readonly reject: (error: unknown) => void
}

const done: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true })

/**
 * A routed stream as an async iterator. One fiber reads the stream eagerly
 * (so timeouts count the provider's pace, never the consumer's) and pushes its
 * chunks here; `next()` takes them in order, or waits in a queue for them.
 */
class ChunkIterator implements AsyncIterableIterator<ChatCompletion.ChatCompletionChunk> {
  /** Chunks read and not yet taken, from `head` on. */
  #buffer: Array<ChatCompletion.ChatCompletionChunk | undefined> = []
  #head = 0
  /** The pending `next()` calls, oldest first; only while the buffer is empty. */
  readonly #waiters: Array<Waiter> = []
  /** The stream has no more chunks to give: it ended, failed, or was stopped. */
  #ended = false
  /** The error the stream failed with, for the next `next()` once the buffer is drained. */
  #failure: { readonly error: Error } | undefined
  /** The iterator has finished: every `next()` from now on is done. */
  #finished = false
  #stop: Stop | undefined

  /** Starts reading `stream`; resolves at its first chunk (or its end), rejects if it fails before. */
  static open(
    stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, unknown, Core.IronlabsClient>,
    start: Start,
    signal: AbortSignal | undefined
  ): Promise<AsyncIterable<ChatCompletion.ChatCompletionChunk>> {
    return new Promise((resolve, reject) => {
      const iterator = new ChunkIterator()
      let committed = false
      const commit = () => {
        if (committed) return
        committed = true
        resolve(iterator)
      }
      iterator.#stop = start(
        Stream.runForEachChunk(stream, (chunk) =>
          Effect.sync(() => {
            iterator.#push(chunk)
            commit()
          })
        ),
        signal,
        (exit, stopped) => {
          if (Exit.isSuccess(exit)) {
            iterator.#end(undefined, false)
            return commit()
          }
          if (stopped === "return") return
          const error = toError(exit.cause, stopped)
          if (!committed) return reject(error)
          // An abort (or close) stops everything at once, as it stops `fetch`'s body: unread chunks are dropped.
          iterator.#end(error, stopped !== undefined && Cause.isInterruptedOnly(exit.cause))
        }
      )
    })
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  next(): Promise<IteratorResult<ChatCompletion.ChatCompletionChunk>> {
    if (this.#head < this.#buffer.length) return Promise.resolve({ value: this.#take(), done: false })
    if (this.#failure !== undefined) {
      const { error } = this.#failure
      this.#failure = undefined
      this.#finished = true
      return Promise.reject(error)
    }
    if (this.#ended || this.#finished) return Promise.resolve(done)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  async return<R>(value?: R | PromiseLike<R>): Promise<IteratorReturnResult<R>> {
    await this.#leave()
    return { value: (await value) as R, done: true }
  }

  async throw(error?: unknown): Promise<never> {
    await this.#leave()
    throw error
  }

  /** The consumer leaves: pending calls are done, the buffer is dropped, the request is closed. */
  #leave(): Promise<void> {
    this.#finished = true
    this.#failure = undefined
    this.#buffer = []
    this.#head = 0
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(done)
    return this.#ended || this.#stop === undefined ? Promise.resolve() : this.#stop("return")
  }

  #push(chunk: Chunk.Chunk<ChatCompletion.ChatCompletionChunk>): void {
    if (this.#finished) return
    for (const value of chunk) {
      const waiter = this.#waiters.shift()
      if (waiter !== undefined) waiter.resolve({ value, done: false })
      else this.#buffer.push(value)
    }
  }

  #take(): ChatCompletion.ChatCompletionChunk {
    const value = this.#buffer[this.#head]!
    this.#buffer[this.#head++] = undefined
    if (this.#head === this.#buffer.length) {
      this.#buffer = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#buffer.length) {
      this.#buffer = this.#buffer.slice(this.#head)
      this.#head = 0
    }
    return value
  }

  /** The stream has no more chunks: it ended, or failed with `error` (dropping the unread chunks if `drop`). */
  #end(error: Error | undefined, drop: boolean): void {
    this.#ended = true
    if (this.#finished) return
    if (drop) {
      this.#buffer = []
      this.#head = 0
    }
    const waiters = this.#waiters.splice(0)
    if (error === undefined) {
      for (const waiter of waiters) waiter.resolve(done)
      return
    }
    const first = waiters.shift()
    if (first === undefined) {
      this.#failure = { error }
      return
    }
    this.#finished = true
    first.reject(error)
    for (const waiter of waiters) waiter.resolve(done)
  }
}

/** The errors `create` fails with, typed in its error channel. */
const isExpected = (error: unknown): error is Error =>
  error instanceof RoutingError.AllModelsFailed ||
  error instanceof RoutingError.DeadlineExceeded ||
  error instanceof RoutingError.NoModelAvailable ||
  error instanceof RoutingError.StreamInterrupted ||
  error instanceof ChatCompletion.InvalidChatRequest

/**
 * What a call that did not succeed rejects with: its typed error; an
 * `AbortError` or `ClientClosed` when the facade stopped it; anything else
 * (a defect, an error of a lower library) is an `InternalError` that names
 * only its kind.
 */
const toError = (cause: Cause.Cause<unknown>, stopped: Stopped | undefined): Error => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && isExpected(failure.value)) return failure.value
  if (stopped !== undefined && Cause.isInterruptedOnly(cause)) {
    return stopped === "close" ? new ClientClosed() : abortError()
  }
  return new InternalError({ defect: kindOf(Option.getOrElse(failure, () => Cause.squash(cause))) })
}

/** A failure's `_tag`, else its class name, else its type: never its message or fields. */
const kindOf = (defect: unknown): string => {
  if (Predicate.hasProperty(defect, "_tag") && typeof defect._tag === "string") return defect._tag.slice(0, 60)
  if (defect instanceof Error) return defect.name.slice(0, 60)
  return defect === null ? "null" : typeof defect
}

/** What `fetch` rejects with when its signal fires. */
const abortError = (): Error => new DOMException("This operation was aborted", "AbortError")

/**
 * One `abort` listener per signal, whatever the number of calls that share it:
 * a listener per call would pile up on a long-lived signal (and Node warns
 * past 10). The listener is removed when the last call watching it ends.
 */
const abortWatchers = new WeakMap<AbortSignal, { readonly listener: () => void; readonly calls: Set<() => void> }>()

const onAbort = (signal: AbortSignal, callback: () => void): (() => void) => {
  let watcher = abortWatchers.get(signal)
  if (watcher === undefined) {
    const calls = new Set<() => void>()
    const listener = () => {
      abortWatchers.delete(signal)
      for (const call of calls) call()
    }
    watcher = { listener, calls }
    abortWatchers.set(signal, watcher)
    signal.addEventListener("abort", listener, { once: true })
  }
  const { calls, listener } = watcher
  // Each call's own function, so that a Set holds one entry per call.
  const entry = () => callback()
  calls.add(entry)
  return () => {
    calls.delete(entry)
    if (calls.size > 0) return
    if (abortWatchers.get(signal)?.calls === calls) abortWatchers.delete(signal)
    signal.removeEventListener("abort", listener)
  }
}

interface Checked {
  readonly createOptions: Core.CreateOptions | undefined
  readonly signal: AbortSignal | undefined
}

const optionNames: ReadonlySet<string> = new Set(["signal", "timeout"])

/** Checks `create`'s options as `fetch` checks its own; throws a `TypeError` or `RangeError` naming the option. */
const checkOptions = (options: unknown): Checked => {
  if (options === undefined || options === null) return { createOptions: undefined, signal: undefined }
  if (typeof options !== "object") {
    throw new TypeError(
      `options must be an object with signal and timeout, or null or undefined; got ${describe(options)}`
    )
  }
  for (const [key, value] of Object.entries(options)) {
    if (!optionNames.has(key) && value !== undefined) {
      throw new TypeError(`options.${key} is not an option of create: it takes signal and timeout`)
    }
  }
  const { signal, timeout } = options as { readonly signal?: unknown; readonly timeout?: unknown }
  const deadline = seconds(timeout, "options.timeout")
  return { createOptions: deadline === undefined ? undefined : { timeout: deadline }, signal: checkSignal(signal) }
}

/** An AbortSignal as `fetch` accepts one: an object with a boolean `aborted` and `addEventListener`. */
const checkSignal = (signal: unknown): AbortSignal | undefined => {
  if (signal === undefined || signal === null) return undefined
  if (
    typeof signal !== "object" ||
    typeof (signal as { aborted?: unknown }).aborted !== "boolean" ||
    typeof (signal as { addEventListener?: unknown }).addEventListener !== "function" ||
    typeof (signal as { removeEventListener?: unknown }).removeEventListener !== "function"
  ) {
    throw new TypeError(`options.signal must be an AbortSignal, or null or undefined; got ${describe(signal)}`)
  }
  return signal as AbortSignal
}

const seconds = (value: unknown, name: string): Duration.Duration | undefined => {
  if (value === undefined || value === null) return undefined
  if (typeof value !== "number") throw new TypeError(`${name} is a number of seconds > 0, got ${describe(value)}`)
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} is a number of seconds > 0, got ${value}`)
  return Duration.millis(value * 1000)
}

/** A value's type, for an error message: never the value itself, which may be large or secret. */
const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (typeof value === "object") {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name
    return typeof name === "string" && name !== "Object" ? `an instance of ${name.slice(0, 60)}` : "an object"
  }
  return `a ${typeof value}`
}

// --- Events ------------------------------------------------------------------------------------------------------

/** A listener as the client keeps it, whatever its type. */
type AnyListener = (event: Events[keyof Events]) => void

const eventTypes: ReadonlySet<string> = new Set<keyof Events>([...RouteEvent.types, "health"])

/** Calls each listener in order; one that throws is logged (its kind only: its message may hold user data). */
const dispatch = (
  listeners: ReadonlyArray<AnyListener>,
  type: keyof Events,
  event: Events[keyof Events],
  log: Log
): void => {
  for (const listener of listeners) {
    try {
      listener(event)
    } catch (error) {
      log.write("error", "event listener threw", { event: type, error: kindOf(error) })
    }
  }
}

const checkListener = (type: unknown, listener: unknown, method: "on" | "off"): void => {
  if (typeof type !== "string" || !eventTypes.has(type)) {
    throw new TypeError(
      `${method}(type, listener): type must be "attempt", "retry", "failover", "skip" or "health"; got ${
        typeof type === "string" ? JSON.stringify(type.slice(0, 60)) : describe(type)
      }`
    )
  }
  if (typeof listener !== "function") {
    throw new TypeError(`${method}(type, listener): listener must be a function; got ${describe(listener)}`)
  }
}

// --- Logs --------------------------------------------------------------------------------------------------------

type Level = "debug" | "info" | "warn" | "error"

/** The client's log: `write` for what is said outside Effect, `layer` for the Effect logs of its runtime. */
interface Log {
  readonly write: (level: Level, message: string, fields: Record<string, unknown>) => void
  readonly layer: Layer.Layer<never>
}

const levels: ReadonlyArray<Level> = ["debug", "info", "warn", "error"]
const rank: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 }
const minimumOf: Readonly<Record<LogLevel, EffectLogLevel.LogLevel>> = {
  debug: EffectLogLevel.Debug,
  info: EffectLogLevel.Info,
  warn: EffectLogLevel.Warning,
  error: EffectLogLevel.Error,
  silent: EffectLogLevel.None
}

/** An Effect level as a `Logger`'s: trace goes with debug, fatal with error. */
const levelOf = (level: EffectLogLevel.LogLevel): Level | undefined => {
  if (level.ordinal >= EffectLogLevel.Error.ordinal)
    return level.ordinal === EffectLogLevel.None.ordinal ? undefined : "error"
  if (level.ordinal >= EffectLogLevel.Warning.ordinal) return "warn"
  if (level.ordinal >= EffectLogLevel.Info.ordinal) return "info"
  return "debug"
}

/** The console, one line per message: `ironlabsai: breaker opened model=openai/gpt-4o reason=Overloaded`. */
const consoleLog = (level: Level, message: string, fields: Record<string, unknown>): void => {
  let line = `ironlabsai: ${message}`
  for (const key in fields) line += ` ${key}=${fieldText(fields[key])}`
  console[level](line)
}

/** A field's value in a line, logfmt style: quoted when it has spaces, quotes or `=`. */
const fieldText = (value: unknown): string => {
  if (typeof value === "string") return /^[^\s"=]*$/.test(value) && value !== "" ? value : JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value)
  if (value === undefined) return "undefined"
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return describe(value)
  }
}

/** Effect's log message (the arguments of `Effect.log*`) as one string. */
const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : fieldText(part))).join(" ")
}

/** The order fields are given in: what the line is about first, then the rest by name. */
const fieldOrder: ReadonlyArray<string> = ["model", "reason", "status", "until", "delay_ms"]

const byFieldOrder = (a: string, b: string): number => {
  const i = fieldOrder.indexOf(a)
  const j = fieldOrder.indexOf(b)
  if (i !== -1 || j !== -1) return (i === -1 ? fieldOrder.length : i) - (j === -1 ? fieldOrder.length : j)
  return a < b ? -1 : a > b ? 1 : 0
}

/** A log's annotations as fields, in a stable order (a `HashMap` has none). */
const fieldsOf = (annotations: HashMap.HashMap<string, unknown>): Record<string, unknown> => {
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Array.from(annotations).sort(([a], [b]) => byFieldOrder(a, b))) fields[key] = value
  return fields
}

/** Checks the `logger` and `logLevel` options; throws a `TypeError` naming the option. */
const makeLog = (logger: unknown, logLevel: unknown): Log => {
  if (logLevel !== undefined && logLevel !== null && (typeof logLevel !== "string" || !Object.hasOwn(rank, logLevel))) {
    throw new TypeError(
      `logLevel must be "debug", "info", "warn", "error" or "silent"; got ${
        typeof logLevel === "string" ? JSON.stringify(logLevel.slice(0, 60)) : describe(logLevel)
      }`
    )
  }
  const minimum: LogLevel = logger === false ? "silent" : ((logLevel ?? "warn") as LogLevel)
  let sink: (level: Level, message: string, fields: Record<string, unknown>) => void
  if (logger === undefined || logger === null) {
    sink = consoleLog
  } else if (logger === false) {
    sink = () => {}
  } else if (typeof logger === "object" && !Array.isArray(logger)) {
    const functions: Partial<Record<Level, LogFunction>> = {}
    for (const level of levels) {
      const f = (logger as Record<string, unknown>)[level]
      if (f === undefined) continue
      if (typeof f !== "function") {
        throw new TypeError(`logger.${level} must be a function (message, fields) or undefined; got ${describe(f)}`)
      }
      functions[level] = f as LogFunction
    }
    sink = (level, message, fields) => {
      const f = functions[level]
      if (f === undefined) return
      try {
        f.call(logger, message, fields)
      } catch {
        // A logger that fails cannot be told so; the request goes on.
      }
    }
  } else {
    throw new TypeError(
      `logger must be an object with debug, info, warn or error functions (console fits), false, or null or undefined; got ${describe(logger)}`
    )
  }
  const floor = rank[minimum]
  const write: Log["write"] = (level, message, fields) => {
    if (rank[level] >= floor) sink(level, message, fields)
  }
  const effectLogger = EffectLogger.make<unknown, void>(({ annotations, logLevel: level, message }) => {
    const mapped = levelOf(level)
    if (mapped !== undefined) write(mapped, messageText(message), fieldsOf(annotations))
  })
  return {
    write,
    layer: Layer.mergeAll(
      EffectLogger.replace(EffectLogger.defaultLogger, effectLogger),
      EffectLogger.minimumLogLevel(minimumOf[minimum]),
      // Each call's fiber ends in the caller's promise, which settles with its failure: not an unhandled error.
      Layer.scopedDiscard(Effect.locallyScoped(FiberRef.unhandledErrorLogLevel, Option.none()))
    )
  }
}

// --- Telemetry ---------------------------------------------------------------------------------------------------

const checkTelemetry = (telemetry: unknown): Tracing | undefined => {
  if (telemetry === undefined || telemetry === null) return undefined
  if (
    Predicate.isTagged(telemetry, "Tracing") &&
    Predicate.hasProperty(telemetry, "layer") &&
    Layer.isLayer(telemetry.layer)
  ) {
    return telemetry as Tracing
  }
  throw new TypeError(
    `telemetry must be the value of tracing() from "ironlabsai/OpenTelemetry", or null or undefined; got ${describe(telemetry)}`
  )
}

const checkBoolean = (value: unknown, name: string): boolean | undefined => {
  if (value === undefined || value === null) return undefined
  if (typeof value !== "boolean")
    throw new TypeError(`${name} must be a boolean, or null or undefined; got ${describe(value)}`)
  return value
}

// --- Redis -------------------------------------------------------------------------------------------------------

/** The `redis` option, checked, or the environment's: what the Redis store is made with. */
interface RedisSettings {
  readonly url: string
  readonly prefix: string | undefined
  readonly strict: boolean | undefined
  readonly minReporters: number | undefined
  readonly reconcileInterval: Duration.Duration | undefined
}

const redisPackage = "@ironlabsai/redis"

const redisOptionNames: ReadonlySet<string> = new Set(["url", "prefix", "strict", "minReporters", "reconcileInterval"])

/**
 * Checks the `redis` option (or reads `IRONLABSAI_REDIS_URL` and `IRONLABSAI_REDIS_PREFIX` when it is absent):
 * the settings, or `undefined` when nothing is shared. Throws a `TypeError` or `RangeError` naming the option or
 * the variable (never the URL: it may hold a password), or an `Error` when `@ironlabsai/redis` is not installed.
 */
const checkRedis = (option: unknown): RedisSettings | undefined => {
  const settings = option === undefined || option === null ? redisFromEnv() : redisFromOption(option)
  if (settings !== undefined) checkRedisInstalled()
  return settings
}

const redisFromOption = (option: unknown): RedisSettings | undefined => {
  if (option === false) return undefined
  if (typeof option === "string") return redisSettings({ url: checkRedisUrl(option, "redis") })
  if (typeof option !== "object" || option === null || Array.isArray(option)) {
    throw new TypeError(
      `redis must be a redis:// or rediss:// URL, an object with url, prefix, strict, minReporters and reconcileInterval, false, or null or undefined; got ${describe(option)}`
    )
  }
  for (const [key, value] of Object.entries(option)) {
    if (!redisOptionNames.has(key) && value !== undefined) {
      throw new TypeError(
        `redis.${key.slice(0, 60)} is not a Redis option: they are url, prefix, strict, minReporters and reconcileInterval`
      )
    }
  }
  const { url, prefix, strict, minReporters, reconcileInterval } = option as Record<string, unknown>
  return redisSettings({
    url: checkRedisUrl(url, "redis.url"),
    prefix: checkPrefix(prefix, "redis.prefix"),
    strict: checkBoolean(strict, "redis.strict"),
    minReporters: checkMinReporters(minReporters),
    reconcileInterval: seconds(reconcileInterval, "redis.reconcileInterval")
  })
}

const redisSettings = (settings: Partial<RedisSettings> & { readonly url: string }): RedisSettings => ({
  prefix: undefined,
  strict: undefined,
  minReporters: undefined,
  reconcileInterval: undefined,
  ...settings
})

/** `IRONLABSAI_REDIS_URL` (and `IRONLABSAI_REDIS_PREFIX`), read once; unset or empty: nothing is shared. */
const redisFromEnv = (): RedisSettings | undefined => {
  const env = (name: string) =>
    Effect.runSync(Effect.orElseSucceed(Config.withDefault(Config.string(name), ""), () => ""))
  const url = env("IRONLABSAI_REDIS_URL")
  if (url === "") return undefined
  const prefix = env("IRONLABSAI_REDIS_PREFIX")
  return redisSettings({
    url: checkRedisUrl(url, "IRONLABSAI_REDIS_URL"),
    prefix: prefix === "" ? undefined : checkPrefix(prefix, "IRONLABSAI_REDIS_PREFIX")
  })
}

/**
 * A URL node-redis takes: `redis://` or `rediss://`, a host, user info that decodes, and a database number as
 * its path if any. The URL itself is never put in the message.
 */
const checkRedisUrl = (url: unknown, name: string): string => {
  const expected = "a redis://[user:password@]host[:port][/db] or rediss:// URL"
  if (typeof url !== "string") {
    throw new TypeError(`${name} must be ${expected}; got ${url === undefined ? "undefined" : describe(url)}`)
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  if (scheme !== undefined && scheme !== "redis" && scheme !== "rediss") {
    throw new TypeError(`${name} must be ${expected}; got a URL with the scheme ${JSON.stringify(scheme.slice(0, 20))}`)
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TypeError(`${name} must be ${expected}; got a string that is not a URL`)
  }
  if (!/^rediss?:\/\//i.test(url) || parsed.hostname === "") {
    throw new TypeError(`${name} must be ${expected}; got a URL without a host`)
  }
  if (parsed.pathname !== "" && parsed.pathname !== "/" && !/^\/\d+$/.test(parsed.pathname)) {
    throw new TypeError(`${name} must be ${expected}; got a path that is not a database number`)
  }
  try {
    decodeURIComponent(parsed.username)
    decodeURIComponent(parsed.password)
  } catch {
    throw new TypeError(`${name} must be ${expected}; got a user or password that is not percent-encoded properly`)
  }
  return url
}

/** A key prefix: a non-empty string without braces (they would move the Cluster hash tag off the model id). */
const checkPrefix = (prefix: unknown, name: string): string | undefined => {
  if (prefix === undefined || prefix === null) return undefined
  if (typeof prefix !== "string" || prefix === "" || /[{}]/.test(prefix)) {
    throw new TypeError(
      `${name} must be a non-empty string without { or }, or null or undefined; got ${
        typeof prefix === "string" ? JSON.stringify(prefix.slice(0, 60)) : describe(prefix)
      }`
    )
  }
  return prefix
}

const checkMinReporters = (value: unknown): number | undefined => {
  if (value === undefined || value === null) return undefined
  if (typeof value !== "number") throw new TypeError(`redis.minReporters is an integer >= 1, got ${describe(value)}`)
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`redis.minReporters is an integer >= 1, got ${value}`)
  return value
}

/**
 * Throws when `@ironlabsai/redis` cannot be resolved from here. Where `import.meta.resolve` is missing (some
 * bundlers and test runners), the check is left to the import itself.
 */
const checkRedisInstalled = (): void => {
  const resolve = (import.meta as { readonly resolve?: (specifier: string) => string }).resolve
  if (typeof resolve !== "function") return
  try {
    resolve.call(import.meta, redisPackage)
  } catch {
    throw new Error(
      `Sharing state through Redis (the redis option or IRONLABSAI_REDIS_URL) needs the ${redisPackage} package, which is not installed: npm install ${redisPackage}`
    )
  }
}

/** The Redis store of `@ironlabsai/redis`, loaded when the client's runtime is built: model health and budgets. */
const redisLayer = (
  settings: RedisSettings,
  plan: Reliability.Plan
): Layer.Layer<ModelHealth.ModelHealthStore | RateBudget.RateBudget> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.tryPromise({
        try: () => import("@ironlabsai/redis"),
        catch: () =>
          new Error(`Cannot load ${redisPackage}: install it beside ironlabsai (npm install ${redisPackage})`)
      }).pipe(Effect.orDie),
      ({ RedisStore }) =>
        RedisStore.layer({
          url: settings.url,
          prefix: settings.prefix,
          strict: settings.strict,
          minReporters: settings.minReporters,
          reconcileInterval: settings.reconcileInterval,
          // The config's limits are known now: their first leases are taken at once.
          budget: plan.rateLimits === undefined ? undefined : { limits: Object.fromEntries(plan.rateLimits) }
        })
    )
  )

/** The client over `plan`, its model health and rate budgets in the Redis store. */
const sharedClient = (
  plan: Reliability.Plan,
  connections: DefaultProviders.Resolved,
  options: Omit<Core.Options, "reliability">
) =>
  Effect.gen(function* () {
    const providers = yield* DefaultProviders.fromResolved(connections)
    const store = yield* ModelHealth.ModelHealthStore
    const budget = yield* RateBudget.RateBudget
    const health = store.make({ health: plan.health, retryBudget: plan.retryBudget })
    // The store reads the fleet's state of the models it has seen, as soon as it is connected: the plan's are
    // marked seen now (a peek takes nothing), so that a new process skips a model the fleet holds from the start.
    const now = yield* Clock.currentTimeMillis
    for (const m of plan.models) health.admit(m.model.id, now, { peek: true })
    return Core.fromPlan(plan, providers, options, health, budget)
  })
