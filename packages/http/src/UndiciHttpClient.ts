/**
 * A lean `HttpClient` over undici's `dispatch`: `@effect/platform`'s
 * interface, with each request driven by one undici handler. There is no
 * AbortSignal, no Node stream and no promise between undici and the fiber:
 * the body arrives in the handler and goes straight to whoever reads it.
 * The platform's own clients cost several times more per request on loopback
 * (docs/performance.md). Any other `HttpClient` still works.
 *
 * It sends the bodies the providers send (JSON bytes or text); a form or a
 * streamed request body fails with an `Encode` error. Redirects are never
 * followed, and there is no span (providers trace each call themselves,
 * without headers). Read or discard each response's body, as with
 * `undici.request`: an unread body holds its connection.
 *
 * @example
 * import { Layer } from "effect"
 * import { UndiciHttpClient } from "@ironlabsai/http"
 * import { IronlabsClient } from "ironlabsai"
 *
 * const Client = IronlabsClient.layer({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }] }
 * }).pipe(Layer.provide(UndiciHttpClient.layer))
 *
 * @since 0.1.0
 */
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import { Deadline } from "@ironlabsai/core"
import * as Connection from "./Connection.js"
import * as ProviderReply from "./ProviderReply.js"
import { Chunk, Effect, Either, Inspectable, Layer, Option, Stream } from "effect"
import { createRequire } from "node:module"
import type { Agent, Dispatcher } from "undici"

/**
 * A client over `dispatcher` (an undici `Agent`, `Pool` or `Client`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (dispatcher: Dispatcher): HttpClient.HttpClient =>
  // `makeWith`, not `make`: no span, no wrapper around each response, no finalization registry.
  HttpClient.makeWith<HttpClientError.HttpClientError, never, HttpClientError.HttpClientError, never>(
    Effect.flatMap((request: HttpClientRequest.HttpClientRequest) => {
      const target = targetOf(request)
      if (Either.isLeft(target)) {
        return Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: target.left }))
      }
      const body = bodyOf(request)
      if (body instanceof HttpClientError.RequestError) return Effect.fail(body)
      return Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((fiber) => {
        const exchange = new Exchange(request, Deadline.remainingMillis(fiber))
        return Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
          exchange.onHead = resume
          dispatcher.dispatch(
            {
              origin: target.right.origin,
              path: target.right.path,
              method: request.method,
              headers: request.headers,
              body,
              // Deadlines belong to the router (Effect.timeout, or the exchange's timer); undici's would race them.
              headersTimeout: 0,
              bodyTimeout: 0
            },
            exchange
          )
          // Interrupted before the response started: abort, which closes the socket.
          return Effect.sync(() => exchange.abort())
        })
      })
    }),
    Effect.succeed
  )

/**
 * The client over its own undici `Agent`, closed with the layer, and two
 * markers: `Deadline.Cooperative` (it enforces `Deadline.current`
 * itself) and `Connection.NoRedirects` (it follows no redirect).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<HttpClient.HttpClient | Deadline.Cooperative | Connection.NoRedirects> = Layer.mergeAll(
  Layer.scoped(
    HttpClient.HttpClient,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => new (loadUndici().Agent)({ keepAliveTimeout: 4_000 })),
        (agent) => Effect.promise(() => agent.destroy())
      ),
      make
    )
  ),
  // This client enforces the attempt deadline itself: providers built on it tell the router so.
  Layer.succeed(Deadline.Cooperative, true),
  // It never follows a redirect: wires over it need not turn redirects off.
  Layer.succeed(Connection.NoRedirects, true)
)

/**
 * undici, loaded when the first layer is built rather than when this module is
 * imported: it is a sixth of a cold `import("ironlabsai")`, and a program that
 * provides another `HttpClient` never needs it. Synchronous (undici is
 * CommonJS), so that the layer stays synchronous.
 */
const loadUndici = (): { readonly Agent: typeof Agent } => createRequire(import.meta.url)("undici")

interface Target {
  readonly origin: string
  readonly path: string
}

/** Parsed URLs by their text: a provider sends every request to the same one or two. */
const targets = new Map<string, Target>()

const targetOf = (request: HttpClientRequest.HttpClientRequest): Either.Either<Target, Error> => {
  const plain = request.urlParams.length === 0 && Option.isNone(request.hash)
  const known = plain ? targets.get(request.url) : undefined
  if (known !== undefined) return Either.right(known)
  const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
  if (Either.isLeft(url)) return Either.left(url.left)
  const target = { origin: url.right.origin, path: url.right.pathname + url.right.search }
  if (plain) {
    if (targets.size >= 256) targets.clear()
    targets.set(request.url, target)
  }
  return Either.right(target)
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

const maxTimerMillis = 2 ** 31 - 1

/** Body bytes held for a reader that has not come yet; past this, the socket is paused. */
const highWaterMark = 64 * 1024

/** How a body read ends: every byte, or an error. */
type Settled = { readonly _tag: "End" } | { readonly _tag: "Error"; readonly cause: unknown }

/**
 * One request and its response, as undici's handler: the head resumes the
 * fiber waiting in `execute`, body chunks are queued for (or handed straight
 * to) the one reader of the body, and the attempt's deadline is one timer.
 */
class Exchange implements Dispatcher.DispatchHandler {
  /** Resumes `execute` with the response, or with the failure before one. */
  onHead:
    | ((effect: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>) => void)
    | undefined
  response: UndiciResponse | undefined
  private controller: Dispatcher.DispatchController | undefined
  private abortedBeforeStart = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly chunks: Array<Uint8Array> = []
  private buffered = 0
  settled: Settled | undefined
  /** The reader waiting for more; called on each chunk and at the end. */
  private wake: (() => void) | undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    /** The time left before the attempt's deadline, on the Effect clock that set it. */
    remainingMillis: number | undefined
  ) {
    // Past 2^31-1 ms a Node timer fires at once; a deadline that far away is no deadline, as for Effect's clock.
    if (remainingMillis !== undefined && remainingMillis <= maxTimerMillis) {
      this.timer = setTimeout(() => this.abort(), Math.max(0, remainingMillis))
      // A body nobody reads must not keep the process alive until the deadline.
      this.timer.unref()
    }
  }

  /** Aborts the request (headers or body): its reader fails at once, and undici destroys the socket. */
  abort(): void {
    if (this.settled !== undefined) return
    // Not waiting for undici to report the destroyed socket, a loop turn or more later: after a
    // deadline, this is how soon the router can fail over.
    this.onResponseError(undefined, new Error(this.controller === undefined ? "aborted before it was sent" : "aborted"))
    // Still queued in undici: abort it the moment undici starts it.
    if (this.controller === undefined) this.abortedBeforeStart = true
    else this.controller.abort(new Error("aborted"))
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.abortedBeforeStart) controller.abort(new Error("aborted"))
  }

  onResponseStart(_: Dispatcher.DispatchController, statusCode: number, headers: Record<string, unknown>): void {
    // 1xx informational responses come first; the final one is what counts.
    if (statusCode < 200) return
    this.response = new UndiciResponse(this, statusCode, headers)
    this.onHead?.(Effect.succeed(this.response))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Uint8Array): void {
    this.chunks.push(chunk)
    this.buffered += chunk.byteLength
    this.wake?.()
    if (this.buffered > highWaterMark) controller.pause()
  }

  onResponseEnd(): void {
    this.settle({ _tag: "End" })
  }

  onResponseError(_: Dispatcher.DispatchController | undefined, cause: Error): void {
    if (this.settled !== undefined) return
    if (this.response === undefined) {
      this.onHead?.(
        Effect.fail(new HttpClientError.RequestError({ request: this.request, reason: "Transport", cause }))
      )
    }
    this.settle({ _tag: "Error", cause })
  }

  private settle(settled: Settled): void {
    if (this.settled !== undefined) return
    this.settled = settled
    clearTimeout(this.timer)
    this.wake?.()
  }

  /** Everything queued so far, emptying the queue. */
  take(): Array<Uint8Array> {
    const taken = this.chunks.splice(0)
    this.buffered = 0
    return taken
  }

  /**
   * Lets a paused socket flow again. undici may deliver what it holds before
   * this returns, waking the reader again: readers call it last, once they
   * are done with what they took.
   */
  flow(): void {
    if (this.controller?.paused) this.controller.resume()
  }

  /** Calls `wake` on the next chunk or at the end, until `unwait`. */
  wait(wake: () => void): void {
    this.wake = wake
  }

  unwait(): void {
    this.wake = undefined
  }
}

/** The first `maxBytes` of a body's chunks, and whether there was more. */
const capped = (chunks: ReadonlyArray<Uint8Array>, maxBytes: number): ProviderReply.CappedBody => {
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
  return bytes.byteLength > maxBytes
    ? { bytes: bytes.subarray(0, maxBytes), truncated: true }
    : { bytes, truncated: false }
}

class UndiciResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId

  constructor(
    private readonly exchange: Exchange,
    readonly status: number,
    private readonly rawHeaders: Record<string, unknown>
  ) {
    super()
  }

  get request(): HttpClientRequest.HttpClientRequest {
    return this.exchange.request
  }

  private parsedHeaders: Headers.Headers | undefined

  get headers(): Headers.Headers {
    this.parsedHeaders ??= Headers.fromInput(this.rawHeaders as Record<string, string | ReadonlyArray<string>>)
    return this.parsedHeaders
  }

  get cookies(): Cookies.Cookies {
    const header = this.rawHeaders["set-cookie"]
    if (typeof header === "string") return Cookies.fromSetCookie([header])
    return Array.isArray(header) ? Cookies.fromSetCookie(header) : Cookies.empty
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  /**
   * The body as chunks, as they arrive (server-sent events, compressed
   * bodies). Closing the stream before the end aborts the request.
   */
  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    const exchange = this.exchange
    const pull = Effect.async<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>((resume) => {
      const next = () => {
        const taken = exchange.take()
        if (taken.length > 0) resume(Effect.succeed(Chunk.unsafeFromArray(taken)))
        else if (exchange.settled?._tag === "End") resume(Effect.fail(Option.none()))
        else if (exchange.settled?._tag === "Error") {
          resume(Effect.fail(Option.some(this.decodeError(exchange.settled.cause))))
        } else return false
        exchange.unwait()
        exchange.flow()
        return true
      }
      if (!next()) exchange.wait(next)
      return Effect.sync(() => exchange.unwait())
    })
    return Stream.repeatEffectChunkOption(pull).pipe(Stream.ensuring(Effect.sync(() => exchange.abort())))
  }

  /**
   * The body up to `maxBytes`: the fast path `ProviderReply` takes for whole
   * bodies. Past the cap, reading stops and the request (and its socket) is
   * aborted; so is it when the read is interrupted.
   */
  [ProviderReply.CappedReadTypeId](
    maxBytes: number
  ): Effect.Effect<ProviderReply.CappedBody, HttpClientError.ResponseError> {
    const exchange = this.exchange
    return Effect.suspend(() => {
      // A small body has usually arrived with its headers: then there is nothing to wait for.
      if (exchange.settled?._tag === "End") return Effect.succeed(capped(exchange.take(), maxBytes))
      return Effect.async((resume) => {
        const chunks: Array<Uint8Array> = []
        let size = 0
        const next = () => {
          for (const chunk of exchange.take()) {
            chunks.push(chunk)
            size += chunk.byteLength
            if (size > maxBytes) {
              exchange.unwait()
              exchange.abort()
              return resume(Effect.succeed(capped(chunks, maxBytes)))
            }
          }
          // Last: it may call `next` again at once with what undici held back.
          if (exchange.settled === undefined) return exchange.flow()
          exchange.unwait()
          if (exchange.settled._tag === "Error") return resume(Effect.fail(this.decodeError(exchange.settled.cause)))
          resume(Effect.succeed(capped(chunks, maxBytes)))
        }
        exchange.wait(next)
        next()
        return Effect.sync(() => {
          exchange.unwait()
          exchange.abort()
        })
      })
    })
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.map(this[ProviderReply.CappedReadTypeId](Number.POSITIVE_INFINITY), ({ bytes }) => {
      const copy = new Uint8Array(bytes.byteLength)
      copy.set(bytes)
      return copy.buffer
    })
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.map(this[ProviderReply.CappedReadTypeId](Number.POSITIVE_INFINITY), ({ bytes }) =>
      new TextDecoder().decode(bytes)
    )
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({ try: () => (text === "" ? null : JSON.parse(text)), catch: (cause) => this.decodeError(cause) })
    )
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.map(this.text, (text) => UrlParams.fromInput(new URLSearchParams(text)))
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.flatMap(this.arrayBuffer, (bytes) =>
      Effect.tryPromise({
        try: () => new Response(bytes, { headers: this.headers }).formData(),
        catch: (cause) => this.decodeError(cause)
      })
    )
  }

  toJSON(): unknown {
    // Never the request's headers: they hold the key.
    return { _id: "UndiciHttpClient/Response", status: this.status, url: this.request.url }
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }
}
