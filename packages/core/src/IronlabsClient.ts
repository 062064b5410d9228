/**
 * The client service: `completions.create` routes a request over the
 * configured models. This module builds it from an explicit provider registry
 * (the `Providers` service), so routing runs with scripted providers and no
 * HTTP; the `ironlabsai` package adds a layer with the real providers.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { IronlabsClient, Provider } from "@ironlabsai/core"
 *
 * declare const providers: Layer.Layer<Provider.Providers>
 * const Client = IronlabsClient.layerWithProviders({ reliability: { failover_chain: [{ model: "openai/gpt-4o" }] } }).pipe(
 *   Layer.provide(providers)
 * )
 * const program = Effect.gen(function* () {
 *   const client = yield* IronlabsClient.IronlabsClient
 *   return yield* client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
 * }).pipe(Effect.provide(Client))
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, Either, Layer, Option, Stream } from "effect"
import * as ChatCompletion from "./ChatCompletion.js"
import * as ModelHealth from "./ModelHealth.js"
import * as RateBudget from "./RateBudget.js"
import * as Provider from "./Provider.js"
import * as Reliability from "./Reliability.js"
import type * as RouteEvent from "./RouteEvent.js"
import * as Router from "./Router.js"
import type { RoutingError, StreamInterrupted } from "./RoutingError.js"

/**
 * A duration written with its unit: `"30 seconds"`, `Duration.seconds(30)`.
 * Bare numbers are refused, because Effect would read them as milliseconds
 * beside a reliability config that speaks seconds.
 *
 * @since 0.1.0
 * @category models
 */
export type DurationWithUnit = Exclude<Duration.DurationInput, number | bigint>

/**
 * Options of one `create` call.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  /** The overall deadline of this request, all attempts and backoff included. */
  readonly timeout?: DurationWithUnit | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly plan: Reliability.Plan
  readonly completions: Completions
  /** Each model of the plan, in plan order, with its state (healthy, held, open, half-open) and counters. */
  readonly health: Effect.Effect<ReadonlyArray<ModelHealth.ModelStatus>>
  /** The plan's models' state changes, as they are seen, from the moment of subscription. */
  readonly healthChanges: Stream.Stream<ModelHealth.Transition>
}

/**
 * `create` answers with a routed completion, or, with `stream: true`, with a
 * `Stream` of OpenAI `chat.completion.chunk`s, as the OpenAI SDK does.
 *
 * @since 0.1.0
 * @category models
 */
export interface Completions {
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
    options?: CreateOptions
  ): Stream.Stream<
    ChatCompletion.ChatCompletionChunk,
    RoutingError | StreamInterrupted | ChatCompletion.InvalidChatRequest
  >
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | null | undefined },
    options?: CreateOptions
  ): Effect.Effect<Router.RoutedCompletion, RoutingError | ChatCompletion.InvalidChatRequest>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class IronlabsClient extends Context.Tag("ironlabsai/IronlabsClient")<IronlabsClient, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The seed's config: weights and per-model maps, or `failover_chain`. */
  readonly reliability: Reliability.Input
  /** A default overall deadline for each request. */
  readonly timeout?: DurationWithUnit | undefined
  /** A retry wait longer than this fails over at once. Default 60 s. */
  readonly retryAfterCap?: DurationWithUnit | undefined
  /**
   * Told of each attempt, retry, failover and skip of every request, as it
   * happens (`RouteEvent`). Read at each request: a getter may answer
   * `undefined` while nobody listens, and the router then makes no event.
   */
  readonly onEvent?: RouteEvent.Listener | undefined
  /**
   * Whether call spans carry the messages sent and the answer
   * (`gen_ai.input.messages`, `gen_ai.output.messages`). Off by default: a
   * prompt is the user's data.
   */
  readonly recordContent?: boolean | undefined
}

/**
 * Builds the service over a given registry, validating the config against the
 * registry's provider prefixes. The client remembers model health in memory,
 * as its config's `health` and `retry_budget` say, unless `health` is given
 * (a shared store).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  options: Options,
  providers: Provider.Registry,
  health?: ModelHealth.Service | undefined
): Either.Either<Service, Reliability.ReliabilityConfigError> =>
  Either.map(Reliability.decode(options.reliability, { providers: providers.keys() }), (plan) =>
    fromPlan(plan, providers, options, health)
  )

/**
 * Builds the service from a plan already decoded (`Reliability.decode`), so
 * that a caller that decoded the config itself routes over that very plan.
 * The plan's providers must all be in `providers`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromPlan = (
  plan: Reliability.Plan,
  providers: Provider.Registry,
  options: Omit<Options, "reliability"> = {},
  health?: ModelHealth.Service | undefined,
  sharedBudget?: RateBudget.Service | undefined
): Service => {
  const memory = health ?? ModelHealth.unsafeMakeMemory({ health: plan.health, retryBudget: plan.retryBudget })
  // The plan's rate_limits, in a shared store when one is given, else this client's own, in memory.
  const budget = plan.rateLimits === undefined ? undefined : (sharedBudget ?? RateBudget.unsafeMakeMemory())
  if (budget?.expect !== undefined) for (const [model, limit] of plan.rateLimits ?? []) budget.expect(model, limit)
  const hedgeBudget = plan.hedge === undefined ? undefined : Router.makeHedgeBudget()
  const routeOptions = (createOptions: CreateOptions | undefined): Router.Options => ({
    deadline: createOptions?.timeout ?? options.timeout,
    retryAfterCap: options.retryAfterCap,
    health: memory,
    budget,
    hedgeBudget,
    onEvent: options.onEvent,
    recordContent: options.recordContent
  })
  function create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
    options?: CreateOptions
  ): Stream.Stream<
    ChatCompletion.ChatCompletionChunk,
    RoutingError | StreamInterrupted | ChatCompletion.InvalidChatRequest
  >
  function create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | null | undefined },
    options?: CreateOptions
  ): Effect.Effect<Router.RoutedCompletion, RoutingError | ChatCompletion.InvalidChatRequest>
  function create(
    input: ChatCompletion.ChatCompletionRequest,
    createOptions?: CreateOptions
  ):
    | Stream.Stream<
        ChatCompletion.ChatCompletionChunk,
        RoutingError | StreamInterrupted | ChatCompletion.InvalidChatRequest
      >
    | Effect.Effect<Router.RoutedCompletion, RoutingError | ChatCompletion.InvalidChatRequest> {
    // Checked here, for Effect callers and the facade alike, before any model is called.
    const request = ChatCompletion.decodeRequest(input)
    if (input.stream === true) {
      return Either.isLeft(request)
        ? Stream.fail(request.left)
        : Router.routeStream(plan, providers, request.right, routeOptions(createOptions))
    }
    return Either.isLeft(request)
      ? Effect.fail(request.left)
      : Router.route(plan, providers, request.right, routeOptions(createOptions))
  }
  const ids = new Set(plan.models.map((m) => m.model.id))
  return {
    plan,
    completions: { create },
    health: Effect.map(memory.snapshot, (statuses) => {
      const byModel = new Map(statuses.map((status) => [status.model, status]))
      return plan.models.map((m) => byModel.get(m.model.id) ?? ModelHealth.healthy(m.model.id))
    }),
    healthChanges: Stream.filter(memory.changes, (transition) => ids.has(transition.model))
  }
}

/**
 * Builds the service over the `Providers` in context. Model health is kept in
 * the `ModelHealthStore` in context when there is one (a shared store, made
 * with the config's policy), else in the `ModelHealth` in context, else in
 * memory from the config; rate budgets in the `RateBudget` in context, else
 * in memory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Service, Reliability.ReliabilityConfigError, Provider.Providers> =>
  Effect.gen(function* () {
    const providers = yield* Provider.Providers
    const plan = yield* Reliability.decode(options.reliability, { providers: providers.keys() })
    const store = yield* Effect.serviceOption(ModelHealth.ModelHealthStore)
    const health = Option.isSome(store)
      ? store.value.make({
          health: plan.health,
          retryBudget: plan.retryBudget,
          models: plan.models.map((m) => m.model.id)
        })
      : Option.getOrUndefined(yield* Effect.serviceOption(ModelHealth.ModelHealth))
    const budget = Option.getOrUndefined(yield* Effect.serviceOption(RateBudget.RateBudget))
    yield* logWarnings(plan)
    return fromPlan(plan, providers, options, health, budget)
  })

/**
 * Logs, as warnings, what in a valid config is almost certainly a mistake
 * (`Reliability.warnings`): each with its path, never a key.
 *
 * @since 0.3.0
 * @category constructors
 */
export const logWarnings = (plan: Reliability.Plan): Effect.Effect<void> =>
  Effect.forEach(
    Reliability.warnings(plan),
    (warning) => Effect.logWarning(`reliability config: ${warning.path} ${warning.message}`),
    { discard: true }
  )

/**
 * The client as a layer over the `Providers` in context (scripted ones in a
 * test). `ironlabsai`'s `IronlabsClient.layer` is the one over the real
 * providers, which needs only an `HttpClient`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWithProviders = (
  options: Options
): Layer.Layer<IronlabsClient, Reliability.ReliabilityConfigError, Provider.Providers> =>
  Layer.effect(IronlabsClient, make(options))
