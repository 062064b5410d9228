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
import type { Provider } from "@ironlabsai/core"
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
 * What makes connection options unusable: an empty key, or one with any
 * character outside printable ASCII (a control character would split
 * headers, a character above U+00FF cannot be sent at all, and a space or an
 * invisible character is a paste accident; the key is never echoed); or a
 * base URL that is not http(s) or carries `user:password@` (a credential in a
 * URL ends up in logs). A missing key is not a problem here: a provider made
 * without one fails each call, and the client, which knows which providers
 * its models use, refuses to start (`DefaultProviders.resolveChecked`).
 *
 * @since 0.2.0
 * @category validation
 */
export const problems = (options: Options): ReadonlyArray<Problem> => {
  const found: Array<Problem> = []
  if (options.apiKey !== undefined) {
    const key = Redacted.value(options.apiKey)
    // Keys are printable ASCII: anything else is a paste accident, and some of it cannot go in a header at all.
    const odd = /[^\x21-\x7e]/.exec(key)
    if (key.trim() === "") found.push({ field: "apiKey", message: "is empty" })
    else if (odd !== null) {
      found.push({
        field: "apiKey",
        message: `contains ${characterName(odd[0])}: a key is printable ASCII, sent in an HTTP header; the key is not shown`
      })
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

/** A character a key should not hold, named without showing the key: `a space`, `U+200B (invisible)`. */
const characterName = (character: string): string => {
  const code = character.codePointAt(0) ?? 0
  const names: Record<number, string> = {
    32: "a space",
    9: "a tab",
    10: "a line feed",
    13: "a carriage return",
    0: "a NUL"
  }
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`
  if (names[code] !== undefined) return names[code]
  if (code < 0x20 || code === 0x7f) return `a control character (${hex})`
  return code > 0xff ? `${hex}, which no HTTP header can carry` : `${hex}, outside printable ASCII`
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

/**
 * The host and port a URL calls, for telemetry's `server.address` and
 * `server.port` (the scheme's port when the URL names none).
 *
 * @since 0.4.0
 * @category utils
 */
export const serverOf = (url: string): Provider.Server | undefined => {
  if (!URL.canParse(url)) return undefined
  const parsed = new URL(url)
  const port = parsed.port === "" ? (parsed.protocol === "http:" ? 80 : 443) : Number(parsed.port)
  // An IPv6 host comes bracketed in a URL; the conventions want the address alone.
  return { address: parsed.hostname.replace(/^\[(.*)\]$/, "$1"), port }
}
