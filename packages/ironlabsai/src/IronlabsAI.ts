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
  type ModelHealth,
  Reliability,
  type Router,
  RoutingError
} from "@ironlabsai/core"
import { UndiciHttpClient } from "@ironlabsai/http"
import {
  Cause,
  type Chunk,
  Duration,
  Effect,
  Either,
  Exit,
  type Fiber,
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
}

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
    // What is valid but almost certainly a mistake (a timeout in milliseconds) is said at once, as a warning.
    Effect.runSync(Core.logWarnings(plan))
    const timeout = seconds(options.timeout, "timeout")
    const client = Effect.map(DefaultProviders.fromResolved(connections), (providers) =>
      Core.fromPlan(plan, providers, { timeout })
    )
    this.#runtime = ManagedRuntime.make(
      Layer.effect(IronlabsClient, client).pipe(Layer.provide(UndiciHttpClient.layer))
    )
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
    const exit = this.#runtime.runSyncExit(Effect.flatMap(IronlabsClient, (client) => client.health))
    if (Exit.isSuccess(exit)) return exit.value
    throw toError(exit.cause, undefined)
  }

  /**
   * Closes the client: the calls in flight are cancelled as an abort would
   * cancel them, and reject with `ClientClosed` (a stream's iterator throws
   * it); then the HTTP connections are closed. Later calls to `create`
   * reject with `ClientClosed`. Optional: a script that never calls it still
   * exits by itself. Calling it again returns the same promise.
   *
   * @since 0.1.0
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all(Array.from(this.#calls, (stop) => stop("close"))).then(() => this.#runtime.dispose())
    return this.#closing
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
