/**
 * Scripted providers: a queue of outcomes per model (succeed, fail with a
 * reason, delay, hang), so that routing is tested with `TestClock`, a seeded
 * `Random` and no network. Every call is recorded with the request it carried.
 *
 * @example
 * import { Effect } from "effect"
 * import { IronlabsClient } from "@ironlabsai/core"
 * import { ScriptedProvider } from "@ironlabsai/testing"
 *
 * const scripted = ScriptedProvider.make({
 *   "openai/gpt-4o": [ScriptedProvider.fail("ServerError"), ScriptedProvider.succeed("Hello")]
 * })
 * const program = Effect.gen(function* () {
 *   const client = yield* IronlabsClient.make({ reliability: { failover_chain: [{ model: "openai/gpt-4o" }] } })
 *   return yield* client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
 * }).pipe(Effect.provide(scripted.layer))
 *
 * @since 0.1.0
 */
import { type ChatCompletion, Provider, ProviderError } from "@ironlabsai/core"
import { Cause, Clock, Duration, Effect, Exit, FiberId, Layer, Stream } from "effect"

/**
 * What one call does.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | {
      readonly _tag: "Succeed"
      readonly content: string
      readonly finishReason: ChatCompletion.FinishReason
      /** Streams only: the content deltas (default: one per word) and the wait before each. */
      readonly chunks?: ReadonlyArray<string> | undefined
      readonly interval?: Duration.DurationInput | undefined
    }
  | {
      readonly _tag: "Fail"
      readonly reason: ProviderError.Reason
      readonly status?: number | undefined
      readonly retryAfter?: Duration.DurationInput | undefined
      /** When the rate limit that was hit resets, as a wire reads it from its rate-limit headers. */
      readonly rateLimitReset?: Duration.DurationInput | undefined
    }
  | { readonly _tag: "Delay"; readonly duration: Duration.DurationInput; readonly then: Outcome }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "Break"; readonly afterChunks: number; readonly reason: ProviderError.Reason }
  | { readonly _tag: "Stall"; readonly afterChunks: number }

/**
 * Answer with `content` (default: `Scripted answer from <model>.`).
 *
 * @since 0.1.0
 * @category outcomes
 */
export const succeed = (
  content?: string,
  options?: {
    readonly finishReason?: ChatCompletion.FinishReason | undefined
    /** Streams only: the content deltas, in place of one per word. */
    readonly chunks?: ReadonlyArray<string> | undefined
    /** Streams only: the wait before each content delta. */
    readonly interval?: Duration.DurationInput | undefined
  }
): Outcome => ({
  _tag: "Succeed",
  content: content ?? options?.chunks?.join("") ?? "",
  finishReason: options?.finishReason ?? "stop",
  chunks: options?.chunks,
  interval: options?.interval
})

/**
 * Streams only: send the role preamble and `afterChunks` content deltas, then
 * fail with `reason` (a plain call fails with it at once).
 *
 * @since 0.1.0
 * @category outcomes
 */
export const breakAfter = (afterChunks: number, reason: ProviderError.Reason = "Transport"): Outcome => ({
  _tag: "Break",
  afterChunks,
  reason
})

/**
 * Streams only: send the role preamble and `afterChunks` content deltas, then
 * nothing more, ever (a plain call hangs).
 *
 * @since 0.1.0
 * @category outcomes
 */
export const stallAfter = (afterChunks: number): Outcome => ({ _tag: "Stall", afterChunks })

/**
 * Fail with a `ProviderError` of this reason, with the `status`, `retryAfter`
 * and `rateLimitReset` (the reset a wire reads from its rate-limit headers)
 * a provider would have sent.
 *
 * @since 0.1.0
 * @category outcomes
 */
export const fail = (
  reason: ProviderError.Reason,
  options?: {
    readonly status?: number | undefined
    readonly retryAfter?: Duration.DurationInput | undefined
    readonly rateLimitReset?: Duration.DurationInput | undefined
  }
): Outcome => ({
  _tag: "Fail",
  reason,
  status: options?.status,
  retryAfter: options?.retryAfter,
  rateLimitReset: options?.rateLimitReset
})

/**
 * Wait (on the Effect clock, so `TestClock` drives it), then do `then`.
 *
 * @since 0.1.0
 * @category outcomes
 */
export const delay = (duration: Duration.DurationInput, then: Outcome = succeed()): Outcome => ({
  _tag: "Delay",
  duration,
  then
})

/**
 * Never answer, until interrupted.
 *
 * @since 0.1.0
 * @category outcomes
 */
export const hang: Outcome = { _tag: "Hang" }

/**
 * One recorded call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  /** The routed model id. */
  readonly model: string
  readonly request: ChatCompletion.ChatCompletionRequest
  /** Clock time at the start of the call, in millis. */
  readonly startedAt: number
  /** How the call ended; `"interrupted"` when a timeout or the caller stopped it. */
  status: "pending" | "success" | "failure" | "interrupted"
}

/**
 * Scripted providers and what they saw.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScriptedProviders {
  readonly registry: Provider.Registry
  readonly layer: Layer.Layer<Provider.Providers>
  /** Every call, in order. */
  readonly calls: ReadonlyArray<Call>
  /** The ids of the models called, in order: `["openai/gpt-4o", "openai/gpt-4o", ...]`. */
  readonly order: () => ReadonlyArray<string>
  /** How many calls each model got. */
  readonly count: (model: string) => number
}

/**
 * Scripted providers for the models of `script`. A model whose queue is empty
 * (or that is not in the script) succeeds. Providers are registered for every
 * prefix in the script and for `options.providers` (default `openai`,
 * `anthropic`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  script: Readonly<Record<string, ReadonlyArray<Outcome>>>,
  options?: { readonly providers?: ReadonlyArray<string> | undefined }
): ScriptedProviders => {
  const queues = new Map(Object.entries(script).map(([model, outcomes]) => [model, [...outcomes]]))
  const calls: Array<Call> = []
  /** Records the call and takes the next outcome of its model. */
  const begin = (model: string, request: ChatCompletion.ChatCompletionRequest) =>
    Effect.map(Clock.currentTimeMillis, (startedAt) => {
      const call: Call = { model, request, startedAt, status: "pending" }
      calls.push(call)
      // The first way a call ends is how it ended.
      const settle = <A, E>(exit: Exit.Exit<A, E>) =>
        Effect.sync(() => {
          if (call.status !== "pending") return
          call.status = Exit.isSuccess(exit) ? "success" : Exit.isInterrupted(exit) ? "interrupted" : "failure"
        })
      return { outcome: queues.get(model)?.shift() ?? succeed(), settle }
    })
  const provider: Provider.Provider = {
    complete: ({ model, request }) =>
      Effect.flatMap(begin(model.id, request), ({ outcome, settle }) =>
        run(outcome, model.id).pipe(Effect.onExit(settle))
      ),
    stream: ({ model, request }) =>
      Stream.unwrap(
        Effect.map(begin(model.id, request), ({ outcome, settle }) =>
          // A stream closed by its consumer (a timeout, `take`, interruption) never ends by itself.
          runStream(outcome, model.id).pipe(
            Stream.onEnd(settle(Exit.void)),
            Stream.onError((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : settle(Exit.failCause(cause)))),
            Stream.ensuring(settle(Exit.interrupt(FiberId.none)))
          )
        )
      )
  }
  const prefixes = new Set([
    ...(options?.providers ?? ["openai", "anthropic"]),
    ...Object.keys(script).map((id) => id.split("/")[0]!)
  ])
  const registry = new Map([...prefixes].map((prefix) => [prefix, provider]))
  return {
    registry,
    layer: Layer.succeed(Provider.Providers, registry),
    calls,
    order: () => calls.map((call) => call.model),
    count: (model) => calls.filter((call) => call.model === model).length
  }
}

const run = (
  outcome: Outcome,
  model: string
): Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError> => {
  switch (outcome._tag) {
    case "Succeed":
      return Effect.map(Clock.currentTimeMillis, (now) => completion(model, outcome, now))
    case "Fail":
      return Effect.fail(
        ProviderError.ProviderError.fromReason({
          reason: outcome.reason,
          model,
          status: outcome.status,
          retryAfter: outcome.retryAfter === undefined ? undefined : Duration.decode(outcome.retryAfter),
          rateLimitReset: outcome.rateLimitReset === undefined ? undefined : Duration.decode(outcome.rateLimitReset),
          description: "scripted failure"
        })
      )
    case "Delay":
      return Effect.zipRight(Effect.sleep(outcome.duration), run(outcome.then, model))
    case "Hang":
    case "Stall":
      return Effect.never
    case "Break":
      return run({ _tag: "Fail", reason: outcome.reason }, model)
  }
}

/** The chunks of a streamed outcome, OpenAI-shaped, as a provider would send them. */
const runStream = (
  outcome: Outcome,
  model: string
): Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError> => {
  const chunk = (
    delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"],
    finish: ChatCompletion.FinishReason | null = null
  ): ChatCompletion.ChatCompletionChunk => ({
    id: "chatcmpl-scripted",
    object: "chat.completion.chunk",
    created: 0,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }]
  })
  const preamble = Stream.make(chunk({ role: "assistant", content: "" }))
  const words = (text: string) => text.split(/(?<= )/)
  const deltas = (pieces: ReadonlyArray<string>, interval?: Duration.DurationInput) =>
    Stream.fromIterable(pieces).pipe(
      Stream.mapEffect((piece) =>
        Effect.as(interval === undefined ? Effect.void : Effect.sleep(interval), chunk({ content: piece }))
      )
    )
  const scripted = (count: number) => words(`Scripted answer from ${model}, piece by piece.`).slice(0, count)
  switch (outcome._tag) {
    case "Succeed": {
      const content = outcome.content === "" ? `Scripted answer from ${model}.` : outcome.content
      // The last chunk carries the usage, as both wires send it (OpenAI when asked, as the wire always asks).
      return Stream.concat(
        Stream.concat(preamble, deltas(outcome.chunks ?? words(content), outcome.interval)),
        Stream.make({ ...chunk({}, outcome.finishReason), usage: scriptedUsage })
      )
    }
    case "Fail":
    case "Hang":
      return Stream.fromEffect(run(outcome, model)).pipe(Stream.drain)
    case "Delay":
      return Stream.concat(
        Stream.fromEffect(Effect.sleep(outcome.duration)).pipe(Stream.drain),
        runStream(outcome.then, model)
      )
    case "Break":
      return Stream.concat(
        Stream.concat(preamble, deltas(scripted(outcome.afterChunks))),
        Stream.fromEffect(run({ _tag: "Fail", reason: outcome.reason }, model)).pipe(Stream.drain)
      )
    case "Stall":
      return Stream.concat(Stream.concat(preamble, deltas(scripted(outcome.afterChunks))), Stream.never)
  }
}

const completion = (
  model: string,
  outcome: { readonly content: string; readonly finishReason: ChatCompletion.FinishReason },
  now: number
): ChatCompletion.ChatCompletion => {
  const content = outcome.content === "" ? `Scripted answer from ${model}.` : outcome.content
  return {
    id: `chatcmpl-scripted-${now}`,
    object: "chat.completion",
    created: Math.floor(now / 1000),
    model,
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: outcome.finishReason }],
    usage: scriptedUsage
  }
}

/** The usage every scripted answer reports. */
const scriptedUsage: ChatCompletion.Usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
