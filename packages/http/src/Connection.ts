/**
 * How an HTTP provider reaches its API: its key, base URL and response cap,
 * from options or from `Config` (env), what makes them unusable, and the
 * `HttpClient` it calls through, one that follows no redirect.
 *
 * @example
 * import { Redacted } from "effect"
 * import { Connection } from "@ironlabsai/http"
 *
 * const problems = Connection.problems({ apiKey: Redacted.make("sk-..."), baseURL: "ftp://example.com" })
 * // [{ field: "baseURL", message: "must be http or https, not ftp:" }]
 *
 * @since 0.2.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { Config, Context, Effect, Option, Redacted } from "effect"

/**
 * How an HTTP provider reaches its API. Every wire package takes these.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The key; without one every call fails with `Authentication` and sends nothing. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The API's base URL; each wire has its official default. */
  readonly baseURL?: string | undefined
  /** The response size cap in bytes. Default 16 MiB. */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Connection options from `Config` (env by default): `<PREFIX>_API_KEY`, read
 * as `Redacted`, and `<PREFIX>_BASE_URL`, as the official SDKs name them.
 *
 * @since 0.2.0
 * @category config
 */
export const config = (prefix: string): Config.Config<Options> =>
  Config.all({
    apiKey: Config.option(Config.redacted(`${prefix}_API_KEY`)).pipe(Config.map(Option.getOrUndefined)),
    baseURL: Config.option(Config.string(`${prefix}_BASE_URL`)).pipe(Config.map(Option.getOrUndefined))
  })

/**
 * One thing wrong with connection options.
 *
 * @since 0.2.0
 * @category models
 */
export interface Problem {
  readonly field: "apiKey" | "baseURL"
  readonly message: string
}

/**
 * What makes connection options unusable: a key with a control character (it
 * would split headers; the key is never echoed), or a base URL that is not
 * http(s) or carries `user:password@` (a credential in a URL ends up in logs).
 * A missing key is not a problem here: the provider fails each call instead.
 *
 * @since 0.2.0
 * @category validation
 */
export const problems = (options: Options): ReadonlyArray<Problem> => {
  const found: Array<Problem> = []
  if (options.apiKey !== undefined) {
    const key = Redacted.value(options.apiKey)
    if (key.trim() === "") found.push({ field: "apiKey", message: "is empty" })
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    else if (/[\u0000-\u001f\u007f]/.test(key)) {
      found.push({ field: "apiKey", message: "contains a control character (CR, LF, NUL...); the key is not shown" })
    }
  }
  if (options.baseURL !== undefined) {
    const url = URL.canParse(options.baseURL) ? new URL(options.baseURL) : undefined
    if (url === undefined) found.push({ field: "baseURL", message: "is not a URL" })
    else if (url.protocol !== "http:" && url.protocol !== "https:") {
      found.push({ field: "baseURL", message: `must be http or https, not ${url.protocol.slice(0, 20)}` })
    } else if (url.username !== "" || url.password !== "") {
      found.push({ field: "baseURL", message: "must not carry user:password@ (the URL is not shown)" })
    }
  }
  return found
}

/**
 * Provided by an `HttpClient` layer that never follows a redirect (as
 * `UndiciHttpClient.layer` does): wires over it have nothing to turn off, and
 * skip `withoutRedirects`.
 *
 * @since 0.2.0
 * @category redirects
 */
export class NoRedirects extends Context.Tag("ironlabsai/Connection/NoRedirects")<NoRedirects, true>() {}

/**
 * A client that never follows a redirect, whatever client the user provides
 * (DESIGN §6: a key never goes to another origin). `UndiciHttpClient` and
 * `NodeHttpClient.layerUndici` follow none; `FetchHttpClient` follows them by
 * default (a 301, 302 or 303 becomes a GET to the `location`, on any origin,
 * with every header but `authorization`, `x-api-key` included), so each
 * request is sent with `redirect: "manual"` added to the
 * `FetchHttpClient.RequestInit` the wire can see. A redirect then reaches the
 * wire as the 3xx it is, and fails the call.
 *
 * A `RequestInit` provided only to the `FetchHttpClient` layer (not where the
 * provider runs) is replaced by this one: provide it with `Layer.provideMerge`
 * or around the program to keep it.
 *
 * @since 0.2.0
 * @category redirects
 */
export const withoutRedirects = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.transform(client, (effect) =>
    Effect.contextWithEffect((context: Context.Context<never>) => {
      const init = Context.getOption(context, FetchHttpClient.RequestInit)
      return Effect.provideService(
        effect,
        FetchHttpClient.RequestInit,
        Option.isNone(init) ? manual : { ...init.value, redirect: "manual" }
      )
    })
  )

const manual: RequestInit = { redirect: "manual" }

/**
 * The `HttpClient` in context as a wire uses it: as it is when its layer
 * provides `NoRedirects`, else through `withoutRedirects` (which costs a few
 * microseconds a call).
 *
 * @since 0.2.0
 * @category redirects
 */
export const httpClient: Effect.Effect<HttpClient.HttpClient, never, HttpClient.HttpClient> = Effect.map(
  Effect.zip(HttpClient.HttpClient, Effect.serviceOption(NoRedirects)),
  ([client, declared]) => (Option.isSome(declared) ? client : withoutRedirects(client))
)
