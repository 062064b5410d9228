/**
 * The Promise facade for programs that do not use Effect:
 * `new IronlabsAI({ reliability })` validates the config at once (throwing a
 * `ReliabilityConfigError` that names every offending path), and
 * `client.completions.create(request, { signal, timeout })` resolves to an
 * OpenAI-shaped completion or rejects with the Effect error itself (`_tag` and
 * fields kept), or with an `AbortError` when its signal fires.
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
  type ChatCompletion,
  IronlabsClient as Core,
  type ModelHealth,
  Reliability,
  type Router
} from "@ironlabsai/core"
import {
  Cause,
  type Chunk,
  Duration,
  Effect,
  Either,
  Exit,
  identity,
  Layer,
  ManagedRuntime,
  Option,
  Scope,
  Stream
} from "effect"
import * as DefaultProviders from "./DefaultProviders.js"
import { IronlabsClient } from "./IronlabsClient.js"
import { UndiciHttpClient } from "@ironlabsai/http"

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends DefaultProviders.Options {
  /** The seed's config: weights and per-model maps, or `failover_chain`. */
  readonly reliability: Reliability.Input
  /** A default overall deadline for each request, in seconds. */
  readonly timeout?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** Cancels the request: the HTTP call in flight is aborted, nothing is retried. */
  readonly signal?: AbortSignal | undefined
  /** The overall deadline of this request in seconds, all attempts and backoff included. */
  readonly timeout?: number | undefined
}

/**
 * The Promise client.
 *
 * @since 0.1.0
 * @category clients
 */
export class IronlabsAI {
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

  constructor(options: ClientOptions) {
    // The config is decoded once and env read once, here, so that a bad config, key or URL throws now and
    // not at the first request; the client routes over this very plan.
    const plan = Either.getOrThrowWith(
      Reliability.decode(options.reliability, { providers: DefaultProviders.prefixes }),
      identity
    )
    const connections = Either.getOrThrowWith(
      Effect.runSync(Effect.either(DefaultProviders.resolveChecked(options))),
      identity
    )
    this.plan = plan
    const timeout = seconds(options.timeout, "timeout")
    const client = Effect.map(DefaultProviders.fromResolved(connections), (providers) =>
      Core.fromPlan(plan, providers, { timeout })
    )
    this.#runtime = ManagedRuntime.make(
      Layer.effect(IronlabsClient, client).pipe(Layer.provide(UndiciHttpClient.layer))
    )
    const run = <A>(effect: Effect.Effect<A, unknown, Core.IronlabsClient>, signal: AbortSignal | undefined) =>
      this.#run(effect, signal)
    function create(
      request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
      options?: RequestOptions
    ): Promise<AsyncIterable<ChatCompletion.ChatCompletionChunk>>
    function create(
      request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | null | undefined },
      options?: RequestOptions
    ): Promise<Router.RoutedCompletion>
    function create(input: ChatCompletion.ChatCompletionRequest, requestOptions?: RequestOptions) {
      // Callers may be untyped JavaScript: the options are checked here and the request by the client (as
      // for Effect callers), before any model is called; problems are a rejected promise, never a throw.
      let deadline: Duration.Duration | undefined
      try {
        deadline = seconds(requestOptions?.timeout, "options.timeout")
      } catch (error) {
        return Promise.reject(error)
      }
      const createOptions = deadline === undefined ? undefined : { timeout: deadline }
      const signal = requestOptions?.signal
      if ((input as { readonly stream?: unknown } | null)?.stream !== true) {
        const request = input as ChatCompletion.ChatCompletionRequest & { readonly stream?: false }
        return run(
          Effect.flatMap(IronlabsClient, (client) => client.completions.create(request, createOptions)),
          signal
        )
      }
      const request = input as ChatCompletion.ChatCompletionRequest & { readonly stream: true }
      return streamed(
        Stream.unwrap(Effect.map(IronlabsClient, (client) => client.completions.create(request, createOptions))),
        run,
        signal
      )
    }
    this.completions = { create }
  }

  /**
   * Each model of the plan, in plan order, as the router remembers it now:
   * `state` (`healthy`, `held`, `open`, `half-open`), `until` (epoch millis)
   * and `reason` for a held or open model, and the counters that explain it.
   *
   * @since 0.2.0
   */
  health(): ReadonlyArray<ModelHealth.ModelStatus> {
    return this.#runtime.runSync(Effect.flatMap(IronlabsClient, (client) => client.health))
  }

  /**
   * Closes the HTTP connections. Optional: a script that never calls it still
   * exits by itself.
   *
   * @since 0.1.0
   */
  close(): Promise<void> {
    return this.#runtime.dispose()
  }

  async #run<A>(effect: Effect.Effect<A, unknown, Core.IronlabsClient>, signal: AbortSignal | undefined): Promise<A> {
    if (signal?.aborted) throw abortError()
    const exit = await this.#runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal })
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) throw failure.value
    if (Cause.isInterruptedOnly(exit.cause)) throw abortError()
    throw Cause.squash(exit.cause)
  }
}

/**
 * `create` resolves to a completion, or, with `stream: true`, to an async
 * iterable of OpenAI chunks, as the OpenAI SDK does.
 *
 * @since 0.1.0
 * @category models
 */
export interface Completions {
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
    options?: RequestOptions
  ): Promise<AsyncIterable<ChatCompletion.ChatCompletionChunk>>
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | null | undefined },
    options?: RequestOptions
  ): Promise<Router.RoutedCompletion>
}

type Runner = <A>(effect: Effect.Effect<A, unknown, Core.IronlabsClient>, signal: AbortSignal | undefined) => Promise<A>

/**
 * A routed stream as an async iterable. The promise settles at the commit: it
 * resolves once the first content is in (so every failover failure rejects it
 * with `AllModelsFailed`), and later failures are thrown by the iterator. A
 * consumer that stops early (`break`) or aborts closes the stream, and with it
 * the HTTP request.
 */
const streamed = async (
  stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, unknown, Core.IronlabsClient>,
  run: Runner,
  signal: AbortSignal | undefined
): Promise<AsyncIterable<ChatCompletion.ChatCompletionChunk>> => {
  const scope = Effect.runSync(Scope.make())
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    signal?.removeEventListener("abort", onAbort)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  const onAbort = () => void close()
  signal?.addEventListener("abort", onAbort, { once: true })
  const pullOnce = async (
    pull: Effect.Effect<Chunk.Chunk<ChatCompletion.ChatCompletionChunk>, Option.Option<unknown>, Core.IronlabsClient>
  ) => {
    try {
      return await run(pull, signal)
    } catch (error) {
      await close()
      // `toPull` fails with None at the end of the stream.
      if (Option.isOption(error)) {
        if (Option.isNone(error)) return undefined
        throw error.value
      }
      throw error
    }
  }
  let pull: Effect.Effect<Chunk.Chunk<ChatCompletion.ChatCompletionChunk>, Option.Option<unknown>, Core.IronlabsClient>
  try {
    pull = await run(Scope.extend(Stream.toPull(stream), scope), signal)
  } catch (error) {
    await close()
    throw error
  }
  const buffer: Array<ChatCompletion.ChatCompletionChunk> = [...((await pullOnce(pull)) ?? [])]
  let done = buffer.length === 0
  return {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<ChatCompletion.ChatCompletionChunk>> => {
        while (buffer.length === 0 && !done) {
          if (closed) throw abortError()
          const chunks = await pullOnce(pull)
          if (chunks === undefined) done = true
          else buffer.push(...chunks)
        }
        const value = buffer.shift()
        if (value !== undefined) return { value, done: false }
        await close()
        return { value: undefined, done: true }
      },
      return: async (): Promise<IteratorResult<ChatCompletion.ChatCompletionChunk>> => {
        done = true
        buffer.length = 0
        await close()
        return { value: undefined, done: true }
      }
    })
  }
}

/** What `fetch` rejects with when its signal fires. */
const abortError = (): Error => new DOMException("This operation was aborted", "AbortError")

const seconds = (value: number | undefined, name: string): Duration.Duration | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} is a number of seconds > 0, got ${String(value)}`)
  }
  return Duration.millis(value * 1000)
}
