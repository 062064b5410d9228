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
import { NodeHttpClient } from "@effect/platform-node"
import {
  type ChatCompletion,
  type IronlabsClient as Core,
  Reliability,
  type Router,
  type RoutingError
} from "@ironlabsai/core"
import { Cause, Duration, Effect, Either, Exit, Layer, ManagedRuntime, Option } from "effect"
import * as DefaultProviders from "./DefaultProviders.js"
import { IronlabsClient } from "./IronlabsClient.js"

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
  readonly completions: {
    readonly create: (
      request: ChatCompletion.ChatCompletionRequest,
      options?: RequestOptions
    ) => Promise<Router.RoutedCompletion>
  }

  readonly #runtime: ManagedRuntime.ManagedRuntime<Core.IronlabsClient, unknown>

  constructor(options: ClientOptions) {
    const plan = Reliability.decode(options.reliability, { providers: DefaultProviders.prefixes })
    // Env is read now, so that a bad key or URL throws here and not at the first request.
    const connections = Effect.runSync(Effect.either(DefaultProviders.resolve(options)))
    const issues = [
      ...(Either.isLeft(plan) ? plan.left.issues : []),
      ...(Either.isLeft(connections)
        ? [{ path: "env", message: connections.left.message }]
        : DefaultProviders.problems(connections.right))
    ]
    if (issues.length > 0 || Either.isLeft(plan) || Either.isLeft(connections)) {
      throw new Reliability.ReliabilityConfigError({ issues })
    }
    this.plan = plan.right
    const timeout = seconds(options.timeout, "timeout")
    this.#runtime = ManagedRuntime.make(
      IronlabsClient.layer({ ...options, ...connections.right, timeout }).pipe(
        Layer.provide(NodeHttpClient.layerUndici)
      )
    )
    this.completions = {
      create: (request, requestOptions) => {
        const deadline = seconds(requestOptions?.timeout, "options.timeout")
        const effect = Effect.flatMap(IronlabsClient, (client) =>
          client.completions.create(request, deadline === undefined ? undefined : { timeout: deadline })
        )
        return this.#run(effect, requestOptions?.signal)
      }
    }
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

  async #run<A>(
    effect: Effect.Effect<A, RoutingError.RoutingError, Core.IronlabsClient>,
    signal: AbortSignal | undefined
  ): Promise<A> {
    if (signal?.aborted) throw abortError()
    const exit = await this.#runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal })
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) throw failure.value
    if (Cause.isInterruptedOnly(exit.cause)) throw abortError()
    throw Cause.squash(exit.cause)
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
