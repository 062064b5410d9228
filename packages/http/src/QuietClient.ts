/**
 * The HTTP client a wire calls with: the platform's own span turned off
 * whenever a tracer would see it. The router makes each call's span
 * (`chat {model}`, with what is safe to say); the platform's span would keep
 * the request, key header included, in its exit.
 *
 * @example
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { QuietClient } from "@ironlabsai/http"
 *
 * const program = Effect.flatMap(HttpClient.HttpClient, (client) => {
 *   const withClient = QuietClient.make(client)
 *   return withClient((chosen) => chosen.get("http://127.0.0.1:8080/health"))
 * })
 *
 * @since 0.4.0
 */
import { HttpClient } from "@effect/platform"
import { Telemetry } from "@ironlabsai/core"
import { Effect } from "effect"

/**
 * Runs each call with `client`, or, when a tracer is installed and enabled,
 * with `client` minus its own span. Untraced calls keep `client` as it is:
 * turning its span off costs a step on every call, for nothing.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make =
  (client: HttpClient.HttpClient) =>
  <A, E, R>(use: (client: HttpClient.HttpClient) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime((fiber) => use(Telemetry.isTracing(fiber) ? always(client) : client))

/**
 * `client` with its own span always off, for a call that cannot choose per
 * call (a stream's body outlives the step that chose).
 *
 * @since 0.4.0
 * @category constructors
 */
export const always = (client: HttpClient.HttpClient): HttpClient.HttpClient => {
  let quiet = quietClients.get(client)
  if (quiet === undefined) {
    quiet = HttpClient.withTracerDisabledWhen(client, () => true)
    quietClients.set(client, quiet)
  }
  return quiet
}
const quietClients = new WeakMap<HttpClient.HttpClient, HttpClient.HttpClient>()
