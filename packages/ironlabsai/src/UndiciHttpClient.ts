/**
 * A lean `HttpClient` over `undici.request`: `@effect/platform`'s interface,
 * with a response body read as undici's async iterator. The platform's own
 * undici client reads bodies through a Node stream adapter that costs a few
 * milliseconds per request on loopback (docs/performance.md); this one keeps
 * the provider call close to raw undici. Any other `HttpClient` still works.
 *
 * It sends the bodies the providers send (JSON bytes or text); a form or a
 * streamed request body fails with an `Encode` error. Redirects are never
 * followed, and timeouts are left to `Effect.timeout`.
 *
 * @example
 * import { Layer } from "effect"
 * import { IronlabsClient, UndiciHttpClient } from "ironlabsai"
 *
 * const Client = IronlabsClient.layer({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }] }
 * }).pipe(Layer.provide(UndiciHttpClient.layer))
 *
 * @since 0.1.0
 */
import {
  Cookies,
  Headers,
  HttpClient,
  HttpClientError,
  type HttpClientRequest,
  HttpClientResponse,
  HttpIncomingMessage,
  UrlParams
} from "@effect/platform"
import { Provider, type ProviderReply } from "@ironlabsai/core"
import { NodeStream } from "@effect/platform-node"
import { Effect, FiberRef, Inspectable, Layer, Option, Stream } from "effect"
import { Agent, type Dispatcher } from "undici"

/**
 * A client over `dispatcher` (an undici `Agent` or `Pool`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (dispatcher: Dispatcher): HttpClient.HttpClient =>
  // `makeWith`, not `make`: no span (providers trace each call themselves, without headers), no
  // wrapper around each response, no finalization registry; interruption aborts through the signal.
  HttpClient.makeWith<HttpClientError.HttpClientError, never, HttpClientError.HttpClientError, never>(
    Effect.flatMap((request: HttpClientRequest.HttpClientRequest) => {
      const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
      if (url._tag === "Left") {
        return Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left }))
      }
      const body = bodyOf(request)
      if (body instanceof HttpClientError.RequestError) return Effect.fail(body)
      return Effect.flatMap(FiberRef.get(Provider.currentDeadline), (deadline) =>
        Effect.tryPromise({
          try: (interrupted) => {
            const guard = abortOn(interrupted, deadline)
            return dispatcher
              .request({
                origin: url.right.origin,
                path: url.right.pathname + url.right.search,
                method: request.method,
                headers: request.headers,
                body,
                signal: guard.signal,
                // Deadlines belong to the router (Effect.timeout, or the signal above); undici's own would race them.
                headersTimeout: 0,
                bodyTimeout: 0
              })
              .then(
                (source) => new UndiciResponse(request, source, guard.release),
                (error) => {
                  guard.release()
                  throw error
                }
              )
          },
          catch: (cause) => new HttpClientError.RequestError({ request, reason: "Transport", cause })
        })
      )
    }),
    Effect.succeed
  )

/**
 * The client over its own undici `Agent`, closed with the layer, and the
 * `NativeDeadlines` marker: it enforces `Provider.currentDeadline` itself.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient | Provider.NativeDeadlines> = Layer.merge(
  Layer.scoped(
    HttpClient.HttpClient,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => new Agent({ keepAliveTimeout: 4_000 })),
        (agent) => Effect.promise(() => agent.destroy())
      ),
      make
    )
  ),
  // This client enforces the attempt deadline itself: providers built on it tell the router so.
  Layer.succeed(Provider.NativeDeadlines, true)
)

/**
 * The signal that aborts a request, headers and body: interruption, or the
 * attempt's deadline when the router passed one down
 * (`Provider.currentDeadline`). One plain timer instead of a fiber and a timer
 * per attempt; `release` clears it once the body is read.
 */
const abortOn = (
  interrupted: AbortSignal,
  deadline: number | undefined
): { readonly signal: AbortSignal; readonly release: () => void } => {
  if (deadline === undefined) return { signal: interrupted, release: () => {} }
  const controller = new AbortController()
  const abort = () => controller.abort()
  const timer = setTimeout(abort, Math.max(0, deadline - Date.now()))
  // A body nobody reads must not keep the process alive until the deadline.
  timer.unref()
  interrupted.addEventListener("abort", abort, { once: true })
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer)
      interrupted.removeEventListener("abort", abort)
    }
  }
}

const bodyOf = (
  request: HttpClientRequest.HttpClientRequest
): string | Uint8Array | null | HttpClientError.RequestError => {
  switch (request.body._tag) {
    case "Empty":
      return null
    case "Uint8Array":
      return request.body.body
    case "Raw":
      if (typeof request.body.body === "string" || request.body.body instanceof Uint8Array) return request.body.body
      break
  }
  return new HttpClientError.RequestError({
    request,
    reason: "Encode",
    description: `UndiciHttpClient sends text and byte bodies, not ${request.body._tag}`
  })
}

class UndiciResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    private readonly source: Dispatcher.ResponseData,
    /** Clears the attempt's deadline timer, once the body has been read or given up. */
    private readonly release: () => void
  ) {
    super()
    // An error after the consumer stopped reading must not become an uncaught exception.
    source.body.on("error", () => {})
  }

  get status(): number {
    return this.source.statusCode
  }

  get headers(): Headers.Headers {
    return Headers.fromInput(this.source.headers as Record<string, string | ReadonlyArray<string>>)
  }

  get cookies(): Cookies.Cookies {
    const header = this.source.headers["set-cookie"]
    return header === undefined ? Cookies.empty : Cookies.fromSetCookie(Array.isArray(header) ? header : [header])
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  /**
   * The body as a stream (server-sent events, compressed bodies), through the
   * platform's Node stream adapter: closing the stream destroys the body even
   * while a read is pending (an async iterator's `return()` would wait for it).
   */
  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return NodeStream.fromReadable(
      () => this.source.body,
      (cause) => this.decodeError(cause)
    ).pipe(Stream.ensuring(Effect.sync(this.release)))
  }

  /**
   * The body up to `maxBytes`, read straight from undici's iterator: the fast
   * path `ProviderReply` takes for whole bodies. Past the cap, reading stops and
   * the body (and its socket) is destroyed.
   */
  readCapped(maxBytes: number): Effect.Effect<ProviderReply.CappedBody, HttpClientError.ResponseError> {
    const body = this.source.body
    return Effect.tryPromise({
      try: async (signal) => {
        const destroy = () => body.destroy()
        signal.addEventListener("abort", destroy, { once: true })
        try {
          const chunks: Array<Uint8Array> = []
          let size = 0
          for await (const chunk of body as AsyncIterable<Uint8Array>) {
            if (size + chunk.byteLength > maxBytes) {
              chunks.push(chunk.subarray(0, maxBytes - size))
              return { bytes: Buffer.concat(chunks), truncated: true }
            }
            chunks.push(chunk)
            size += chunk.byteLength
          }
          return { bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), truncated: false }
        } finally {
          signal.removeEventListener("abort", destroy)
          this.release()
        }
      },
      catch: (cause) => this.decodeError(cause)
    })
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.tryPromise({ try: () => this.source.body.text(), catch: (cause) => this.decodeError(cause) }).pipe(
      Effect.ensuring(Effect.sync(this.release))
    )
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({ try: () => (text === "" ? null : JSON.parse(text)), catch: (cause) => this.decodeError(cause) })
    )
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.tryPromise({
      try: () => this.source.body.arrayBuffer(),
      catch: (cause) => this.decodeError(cause)
    }).pipe(Effect.ensuring(Effect.sync(this.release)))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.map(this.text, (text) => UrlParams.fromInput(new URLSearchParams(text)))
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.tryPromise({
      try: () => this.source.body.formData() as Promise<FormData>,
      catch: (cause) => this.decodeError(cause)
    })
  }

  toJSON(): unknown {
    // Never the request's headers: they hold the key.
    return { _id: "UndiciHttpClient/Response", status: this.status, url: this.request.url }
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }
}
