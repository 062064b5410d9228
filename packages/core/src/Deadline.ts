/**
 * The deadline of one attempt, in one place and on one clock. The router
 * computes it from the Effect `Clock` (the attempt's start plus the model's
 * `timeout`) and it is enforced in one of two ways, which cockatiel names:
 *
 * - **cooperative**: the provider's HTTP client reads `current` and aborts the
 *   request itself when the time left (`remainingMillis`, on the same Effect
 *   clock) runs out; an HTTP client layer that does so provides `Cooperative`,
 *   and a provider over it declares `deadline: "cooperative"`. No fiber and no
 *   Effect timer per attempt.
 * - **aggressive** (the default): the router interrupts the call with
 *   `Effect.timeout`, which any provider supports.
 *
 * @example
 * import { Effect } from "effect"
 * import { Deadline } from "@ironlabsai/core"
 *
 * // What a provider declares to the router, from the HttpClient layer it runs over.
 * const declared: Effect.Effect<Deadline.Strategy> = Deadline.strategy
 *
 * @since 0.2.0
 */
import { Clock, Context, Effect, type Fiber, FiberRef, Option } from "effect"
import { globalValue } from "effect/GlobalValue"

/**
 * How an attempt's deadline is enforced.
 *
 * @since 0.2.0
 * @category models
 */
export type Strategy = "cooperative" | "aggressive"

/**
 * The deadline of the attempt in flight, in epoch millis on the Effect
 * `Clock`; `undefined` outside an attempt with a cooperative deadline. The
 * router sets it around the provider call.
 *
 * @since 0.2.0
 * @category fiber refs
 */
export const current: FiberRef.FiberRef<number | undefined> = globalValue("ironlabsai/Deadline/current", () =>
  FiberRef.unsafeMake<number | undefined>(undefined)
)

/**
 * Provided by an HTTP client layer that enforces `current` itself (as
 * `UndiciHttpClient.layer` of `@ironlabsai/http` does).
 *
 * @since 0.2.0
 * @category tags
 */
export class Cooperative extends Context.Tag("ironlabsai/Deadline/Cooperative")<Cooperative, true>() {}

/**
 * The strategy over the HTTP client in context: `"cooperative"` when its
 * layer provides `Cooperative`, else `"aggressive"`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const strategy: Effect.Effect<Strategy> = Effect.map(Effect.serviceOption(Cooperative), (cooperative) =>
  Option.isSome(cooperative) ? "cooperative" : "aggressive"
)

/**
 * The time left before `fiber`'s current deadline, in millis, read on the
 * fiber's own `Clock` (so `TestClock` drives it too); `undefined` when there
 * is no deadline. Synchronous: an HTTP client calls it as it starts a request.
 *
 * @since 0.2.0
 * @category getters
 */
export const remainingMillis = (fiber: Fiber.RuntimeFiber<unknown, unknown>): number | undefined => {
  const deadline = fiber.getFiberRef(current)
  if (deadline === undefined) return undefined
  return deadline - Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
}
