/**
 * The attempt trace of a routed request.
 *
 * @since 0.1.0
 */
export * as Attempt from "./Attempt.js"

/**
 * The OpenAI-shaped chat-completion domain: messages, requests, completions.
 *
 * @since 0.1.0
 */
export * as ChatCompletion from "./ChatCompletion.js"

/**
 * The client service, built over an explicit provider registry.
 *
 * @since 0.1.0
 */
export * as IronlabsClient from "./IronlabsClient.js"

/**
 * The deadline of one attempt, on the Effect clock, and the two ways it is enforced: cooperative and aggressive.
 *
 * @since 0.2.0
 */
export * as Deadline from "./Deadline.js"

/**
 * The router's memory of each model: holds, a circuit breaker and a retry budget.
 *
 * @since 0.2.0
 */
export * as ModelHealth from "./ModelHealth.js"

/**
 * Client-side rate budgets: requests and tokens per minute per model.
 *
 * @since 0.3.0
 */
export * as RateBudget from "./RateBudget.js"

/**
 * Bounds on JSON nesting, checked where JSON comes in.
 *
 * @since 0.3.0
 */
export * as Json from "./Json.js"

/**
 * Model ids of the form `provider/model`.
 *
 * @since 0.1.0
 */
export * as ModelId from "./ModelId.js"

/**
 * What the router needs of a provider, and the registry of providers.
 *
 * @since 0.1.0
 */
export * as Provider from "./Provider.js"

/**
 * The error of one provider call, and its classification.
 *
 * @since 0.1.0
 */
export * as ProviderError from "./ProviderError.js"

/**
 * The reliability config in the seed's keys, decoded into a plan.
 *
 * @since 0.1.0
 */
export * as Reliability from "./Reliability.js"

/**
 * Selection, retries, timeouts and failover.
 *
 * @since 0.1.0
 */
export * as Router from "./Router.js"

/**
 * How a whole request fails: every model failed, none was available, or the deadline passed.
 *
 * @since 0.1.0
 */
export * as RouteEvent from "./RouteEvent.js"

export * as RoutingError from "./RoutingError.js"

export * as Telemetry from "./Telemetry.js"
