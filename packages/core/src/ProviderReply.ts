/**
 * From a provider's raw reply (status, headers, a stream of body bytes) to a
 * decoded body or a classified `ProviderError`: the size cap, JSON, Schema and
 * the status table, written once for every wire format. It knows no HTTP
 * client: provider packages hand it what their client received.
 *
 * @example
 * import { Effect, Schema, Stream } from "effect"
 * import { ProviderReply } from "@ironlabsai/core"
 *
 * const body = Stream.make(new TextEncoder().encode('{"ok":true}'))
 * const decoded = ProviderReply.readText(body, { model: "openai/gpt-4o" }).pipe(
 *   Effect.flatMap((text) => ProviderReply.decodeJson(Schema.Struct({ ok: Schema.Boolean }), text, "openai/gpt-4o"))
 * )
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option, ParseResult, Schema, Stream } from "effect"
import * as ProviderError from "./ProviderError.js"

/**
 * The default cap on a response body: 16 MiB, counted while reading.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxResponseBytes = 16 * 1024 * 1024

/**
 * What a provider's HTTP client received, before anything is decoded: the shape
 * of `@effect/platform`'s `HttpClientResponse`, without depending on it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawReply<E> {
  readonly status: number
  /** Headers by lower-case name. */
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly stream: Stream.Stream<Uint8Array, E>
}

/**
 * Decodes what a call returns: a 2xx body with `schema`, anything else
 * classified by status and the provider's error type (`errorOf`). A call that
 * fails before a reply, or a body that breaks off, is `Transport`.
 *
 * @since 0.1.0
 * @category reading
 */
export const decode = <A, I, E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
  call: Effect.Effect<RawReply<E2>, E1>,
  options: {
    readonly model: string
    readonly schema: Schema.Schema<A, I>
    readonly errorOf: (body: unknown) => { readonly type?: string | undefined; readonly message?: string | undefined }
    readonly maxBytes?: number | undefined
  }
): Effect.Effect<A, ProviderError.ProviderError> =>
  call.pipe(
    Effect.mapError((error) => transport(options.model, error.message)),
    Effect.flatMap((reply) => {
      const body = Stream.mapError(reply.stream, (error) => transport(options.model, `body cut off: ${error.message}`))
      return Effect.flatMap(readText(body, options), (text) =>
        reply.status >= 200 && reply.status < 300
          ? decodeJson(options.schema, text, options.model)
          : Effect.flip(failure({ ...options, status: reply.status, header: (name) => reply.headers[name], text }))
      )
    })
  )

/**
 * A call that cannot be made without a key: it fails with `Authentication`
 * and sends nothing.
 *
 * @since 0.1.0
 * @category classification
 */
export const missingKey = (model: string, variable: string): ProviderError.ProviderError =>
  ProviderError.ProviderError.fromReason({
    reason: "Authentication",
    model,
    description: `no API key: set ${variable} or pass apiKey in the options`
  })

/**
 * Reads a body as UTF-8 text, failing with `ResponseTooLarge` as soon as it
 * passes `maxBytes`, so memory stays bounded whatever the provider sends.
 *
 * @since 0.1.0
 * @category reading
 */
export const readText = <E>(
  body: Stream.Stream<Uint8Array, E>,
  options: { readonly model: string; readonly maxBytes?: number | undefined }
): Effect.Effect<string, E | ProviderError.ProviderError> =>
  Effect.suspend(() => {
    const maxBytes = options.maxBytes ?? defaultMaxResponseBytes
    const chunks: Array<Uint8Array> = []
    let size = 0
    return body.pipe(
      Stream.runForEach((chunk) => {
        size += chunk.byteLength
        if (size > maxBytes) {
          return Effect.fail(
            ProviderError.ProviderError.fromReason({
              reason: "ResponseTooLarge",
              model: options.model,
              description: `response body over ${maxBytes} bytes`
            })
          )
        }
        chunks.push(chunk)
        return Effect.void
      }),
      Effect.map(() => decodeUtf8(chunks, size))
    )
  })

/**
 * Parses JSON and decodes it with `schema`; anything else is a
 * `MalformedResponse` naming what was wrong, with a short excerpt.
 *
 * @since 0.1.0
 * @category reading
 */
export const decodeJson = <A, I>(
  schema: Schema.Schema<A, I>,
  text: string,
  model: string
): Effect.Effect<A, ProviderError.ProviderError> => {
  const malformed = (description: string) =>
    ProviderError.ProviderError.fromReason({ reason: "MalformedResponse", model, description })
  const json = parseJson(text)
  if (Option.isNone(json)) return Effect.fail(malformed(`body is not JSON: ${JSON.stringify(text.slice(0, 80))}`))
  return Schema.decodeUnknown(schema)(json.value).pipe(
    Effect.mapError((error) => {
      const [first] = ParseResult.ArrayFormatter.formatErrorSync(error)
      return malformed(`unexpected body: ${first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "?"}`)
    })
  )
}

/**
 * Parses JSON, or `None`.
 *
 * @since 0.1.0
 * @category reading
 */
export const parseJson = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.none()
  }
}

/**
 * Classifies a non-2xx reply. `errorOf` pulls the provider's error type and
 * message from the parsed body (each wire names them differently); a body that
 * is not JSON (a proxy's HTML page) becomes a short excerpt.
 *
 * @since 0.1.0
 * @category classification
 */
export const failure = (options: {
  readonly model: string
  readonly status: number
  readonly header: (name: string) => string | undefined
  readonly text: string
  readonly errorOf: (body: unknown) => { readonly type?: string | undefined; readonly message?: string | undefined }
}): Effect.Effect<ProviderError.ProviderError> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const body = parseJson(options.text)
    const error = Option.isSome(body) ? options.errorOf(body.value) : {}
    const excerpt = options.text.trim().replace(/\s+/g, " ").slice(0, 120)
    return ProviderError.ProviderError.fromStatus({
      model: options.model,
      status: options.status,
      errorType: error.type,
      retryAfter: Option.getOrUndefined(ProviderError.parseRetryAfter(options.header, now)),
      description: error.message ?? (excerpt === "" ? undefined : excerpt)
    })
  })

/**
 * A transport failure: refused, reset, DNS, a body cut off.
 *
 * @since 0.1.0
 * @category classification
 */
export const transport = (model: string, description: string): ProviderError.ProviderError =>
  ProviderError.ProviderError.fromReason({ reason: "Transport", model, description })

const decodeUtf8 = (chunks: ReadonlyArray<Uint8Array>, size: number): string => {
  if (chunks.length === 1) return new TextDecoder().decode(chunks[0])
  const all = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    all.set(chunk, offset)
    offset += chunk.byteLength
  }
  return new TextDecoder().decode(all)
}
