/**
 * From a provider's raw reply (status, headers, a stream of body bytes) to a
 * decoded body or a classified `ProviderError`: the size cap, JSON, Schema and
 * the status table, written once for every wire format. It knows no HTTP
 * client: provider packages hand it what their client received.
 *
 * @example
 * import { Effect, Schema, Stream } from "effect"
 * import { ProviderReply } from "@ironlabsai/http"
 *
 * const body = Stream.make(new TextEncoder().encode('{"ok":true}'))
 * const decoded = ProviderReply.readText(body, { model: "openai/gpt-4o" }).pipe(
 *   Effect.flatMap((text) => ProviderReply.decodeJson(Schema.Struct({ ok: Schema.Boolean }), text, "openai/gpt-4o"))
 * )
 *
 * @since 0.1.0
 */
import {
  Clock,
  type Duration,
  Effect,
  Either,
  Option,
  ParseResult,
  Predicate,
  type Redacted,
  Schema,
  Sink,
  Stream
} from "effect"
import { dual, identity } from "effect/Function"
import { type ChatCompletion, Json, type Provider, ProviderError } from "@ironlabsai/core"
import * as Connection from "./Connection.js"
import * as Redaction from "./Redaction.js"
import * as Sse from "./Sse.js"

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
 * @since 0.2.0
 * @category type ids
 */
export const CappedReadTypeId: unique symbol = Symbol.for("@ironlabsai/http/ProviderReply/CappedRead")

/**
 * @since 0.2.0
 * @category type ids
 */
export type CappedReadTypeId = typeof CappedReadTypeId

/**
 * The contract of an HTTP client whose responses can be read whole faster than
 * through their byte stream (`UndiciHttpClient`'s can): at most `maxBytes`,
 * then reading stops and `truncated` is set. An Effect `Stream` costs a few
 * hundred microseconds per body; this costs one promise. A response declares
 * it by carrying the `CappedReadTypeId` key; `decode` uses it when it is there.
 *
 * @since 0.2.0
 * @category models
 */
export interface CappedRead<E> {
  readonly [CappedReadTypeId]: (maxBytes: number) => Effect.Effect<CappedBody, E>
}

/**
 * Whether a reply offers the capped read.
 *
 * @since 0.2.0
 * @category guards
 */
export const isCappedRead = <E>(reply: RawReply<E>): reply is RawReply<E> & CappedRead<E> =>
  Predicate.hasProperty(reply, CappedReadTypeId)

/**
 * A body read up to a cap.
 *
 * @since 0.1.0
 * @category models
 */
export interface CappedBody {
  readonly bytes: Uint8Array
  /** The body went on past the cap; only the first `maxBytes` were read. */
  readonly truncated: boolean
}

/**
 * How much of an error body is read: enough for the provider's message, never
 * a proxy's 64 MiB page. The rest is left unread and the connection closed.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxErrorBodyBytes = 64 * 1024

/**
 * What a wire says about its error bodies: the error type and message.
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorOf = (body: unknown) => { readonly type?: string | undefined; readonly message?: string | undefined }

/**
 * What a wire says about its rate-limit headers: how long until the limit
 * that was hit resets (OpenAI `x-ratelimit-reset-*`, Anthropic
 * `anthropic-ratelimit-*-reset`), given a header lookup by lower-case name and
 * the current time in epoch millis. Core only sees the duration.
 *
 * @since 0.2.0
 * @category models
 */
export type RateLimitResetOf = (
  header: (name: string) => string | undefined,
  now: number
) => Duration.Duration | undefined

/**
 * What a wire says about its rate-limit headers on a reply that succeeded:
 * the limit that has nothing left and how long until it resets, given a
 * header lookup by lower-case name and the current time in epoch millis;
 * `undefined` when every limit has something left or the headers do not say.
 *
 * @since 0.3.0
 * @category models
 */
export type LimitSpentOf = (
  header: (name: string) => string | undefined,
  now: number
) => Provider.LimitSpent | undefined

/**
 * What `decode` and `stream` need to tell the router of a spent limit: the
 * wire's `limitSpentOf`, and the call's `onLimitSpent`
 * (`Provider.CallRequest`), run when a 2xx reply's headers say a limit is
 * spent, before the body is read. Without `onLimitSpent` the headers are not
 * read at all.
 *
 * @since 0.3.0
 * @category models
 */
export interface LimitSpentOptions {
  readonly limitSpentOf?: LimitSpentOf | undefined
  readonly onLimitSpent?: Provider.CallRequest["onLimitSpent"]
}

/**
 * Runs `onLimitSpent` when a 2xx reply's headers say a limit is spent, then
 * `next`; `next` alone when nothing is spent. One Effect step (the clock's
 * read), taken only when there is someone to tell.
 */
const tellingLimitSpent = <A, E>(
  headers: RawReply<unknown>["headers"],
  limitSpentOf: LimitSpentOf,
  onLimitSpent: (spent: Provider.LimitSpent) => Effect.Effect<void>,
  next: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.clockWith((clock) => {
    const spent = limitSpentOf((name) => headers[name], clock.unsafeCurrentTimeMillis())
    return spent === undefined ? next : Effect.zipRight(onLimitSpent(spent), next)
  })

/**
 * Decodes what a call returns: a 2xx body with `schema`, anything else
 * classified by status and the provider's error type (`errorOf`). A call that
 * fails before a reply, or a body that breaks off, is `Transport`, its cause's
 * kind (refused, reset, DNS, TLS) in the description. A gzip or deflate body
 * is decompressed, and the cap counts decompressed bytes. When a 2xx reply's
 * rate-limit headers say a limit is spent (`limitSpentOf`), `onLimitSpent`
 * runs before the body is read; the reply is decoded as any other.
 *
 * @since 0.1.0
 * @category reading
 */
export const decode: {
  <A, I>(
    options: DecodeOptions<A, I>
  ): <E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
    call: Effect.Effect<RawReply<E2>, E1>
  ) => Effect.Effect<A, ProviderError.ProviderError>
  <A, I, E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
    call: Effect.Effect<RawReply<E2>, E1>,
    options: DecodeOptions<A, I>
  ): Effect.Effect<A, ProviderError.ProviderError>
} = dual(
  2,
  <A, I, E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
    call: Effect.Effect<RawReply<E2>, E1>,
    options: DecodeOptions<A, I>
  ): Effect.Effect<A, ProviderError.ProviderError> =>
    // One `matchEffect` per step rather than `mapError` + `flatMap`: this runs on every call.
    Effect.matchEffect(call, {
      onFailure: (error) =>
        Effect.fail(transport(options.model, redactor(options.apiKey)(transportDescription(error)))),
      onSuccess: (reply) => {
        if (reply.status < 200 || reply.status >= 300) return rejected(reply, options)
        const decoded = Effect.flatMap(readBody(reply, options), (text) =>
          decodeSuccess(text, redactor(options.apiKey), options)
        )
        const { limitSpentOf, onLimitSpent } = options
        return limitSpentOf === undefined || onLimitSpent === undefined
          ? decoded
          : tellingLimitSpent(reply.headers, limitSpentOf, onLimitSpent, decoded)
      }
    })
)

/**
 * What `decode` needs of a wire.
 *
 * @since 0.2.0
 * @category models
 */
export interface DecodeOptions<A, I> extends LimitSpentOptions {
  readonly model: string
  readonly schema: Schema.Schema<A, I>
  readonly errorOf: ErrorOf
  readonly rateLimitResetOf?: RateLimitResetOf | undefined
  readonly maxBytes?: number | undefined
  /** The key the call was made with: a body that echoes it has it cut out before it reaches an error. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The messages sent: an error body that echoes their text has it cut out (`Redaction.promptRedactor`). */
  readonly messages?: ReadonlyArray<{ readonly content?: unknown }> | undefined
}

/**
 * A non-2xx reply as the error it means: the first 64 KiB of its body, with
 * any echoed key cut out, classified by status and error type.
 */
const rejected = <E extends { readonly message: string }>(
  reply: RawReply<E>,
  options: {
    readonly model: string
    readonly errorOf: ErrorOf
    readonly rateLimitResetOf?: RateLimitResetOf | undefined
    readonly apiKey?: Redacted.Redacted<string> | undefined
    readonly messages?: ReadonlyArray<{ readonly content?: unknown }> | undefined
  }
): Effect.Effect<never, ProviderError.ProviderError> =>
  readBody(reply, { model: options.model, maxBytes: maxErrorBodyBytes, truncate: true, apiKey: options.apiKey }).pipe(
    Effect.flatMap((text) => {
      const withoutKey = redactor(options.apiKey)
      // Made only here, on the error path: a success never walks the messages.
      const withoutPrompt = Redaction.promptRedactor(Redaction.messageTexts(options.messages ?? []))
      const redact = (value: string) => withoutPrompt(withoutKey(value))
      return Effect.flip(
        failure({
          ...options,
          status: reply.status,
          header: (name) => {
            const value = reply.headers[name]
            return value === undefined ? undefined : redact(value)
          },
          text: redact(text)
        })
      )
    })
  )

/**
 * The body as text, within the cap: through the client's `CappedRead` when it
 * has one and the body is not compressed, else through the byte stream.
 */
const readBody = <E extends { readonly message: string }>(
  reply: RawReply<E>,
  options: {
    readonly model: string
    readonly maxBytes?: number | undefined
    readonly truncate?: boolean | undefined
    /** Cut out of a transport error's description. */
    readonly apiKey?: Redacted.Redacted<string> | undefined
  }
): Effect.Effect<string, ProviderError.ProviderError> => {
  const encoding = reply.headers["content-encoding"]
  if (!isCappedRead(reply) || (encoding !== undefined && encoding !== "identity")) {
    return readText(decompress(reply, options.model, options.apiKey), options)
  }
  const maxBytes = options.maxBytes ?? defaultMaxResponseBytes
  return Effect.matchEffect(reply[CappedReadTypeId](maxBytes), {
    onFailure: (error) => Effect.fail(bodyCutOff(options.model, error, options.apiKey)),
    onSuccess: ({ bytes, truncated }) =>
      truncated && !options.truncate
        ? Effect.fail(
            ProviderError.ProviderError.fromReason({
              reason: "ResponseTooLarge",
              model: options.model,
              description: `response body over ${maxBytes} bytes`
            })
          )
        : Effect.succeed(utf8.decode(bytes))
  })
}

const preserve = { onExcessProperty: "preserve" } as const

/** Stateless without `{ stream: true }`, so one serves every body. */
const utf8 = new TextDecoder()

/** The redactor of the one key a call was made with: made once per key, as every reply asks for it. */
const redactor = (secret: Redacted.Redacted<string> | undefined): ((text: string) => string) => {
  if (secret === undefined) return identity
  let known = redactors.get(secret)
  if (known === undefined) {
    known = Redaction.redactor([secret])
    redactors.set(secret, known)
  }
  return known
}
const redactors = new WeakMap<Redacted.Redacted<string>, (text: string) => string>()

/**
 * A 2xx body: the schema's value, or, when the body is an error object (some
 * proxies answer 200 with `{"error": ...}`), that error classified by its type.
 */
const decodeSuccess = <A, I>(
  raw: string,
  redact: (text: string) => string,
  options: { readonly model: string; readonly schema: Schema.Schema<A, I>; readonly errorOf: ErrorOf }
): Effect.Effect<A, ProviderError.ProviderError> => {
  // Parsed once, whatever comes of it: a large malformed body costs one parse.
  const json = Json.parseBounded(raw)
  // Only the start is redacted (the excerpt is its first 80 characters): a large body costs no scan of it all.
  if (Either.isLeft(json)) return Effect.fail(unparsable(json.left, redact(raw.slice(0, 4096)), options.model))
  const decoded = decodeValue(options.schema, json.right, options.model, redact)
  if (Either.isRight(decoded)) return Effect.succeed(decoded.right)
  const embedded = typeof json.right === "object" && json.right !== null ? options.errorOf(json.right) : {}
  if (embedded.type === undefined && embedded.message === undefined) return Effect.fail(decoded.left)
  const quoted = (text: string | undefined) => (text === undefined ? undefined : redact(text))
  return Effect.fail(
    embeddedError(options.model, { type: quoted(embedded.type), message: quoted(embedded.message) }, "in a 2xx body")
  )
}

/**
 * What a wire makes of one server-sent event: chunks to pass on, `Done` for
 * the event that ends the stream (`[DONE]`, `message_stop`), or the error an
 * error event names. Made fresh for each stream, so it may keep state.
 *
 * @since 0.1.0
 * @category models
 */
export type EventParser = (
  event: Sse.Event
) => ReadonlyArray<ChatCompletion.ChatCompletionChunk> | typeof Done | ProviderError.ProviderError

/**
 * Marks the event that ends a stream.
 *
 * @since 0.1.0
 * @category constants
 */
export const Done: unique symbol = Symbol.for("ironlabsai/ProviderReply/Done")

/**
 * Streams what a call returns: a 2xx body parsed as server-sent events and
 * mapped to chunks by the wire's `parser`; anything else fails before the
 * first chunk, classified as in `decode`. The stream ends at the wire's end
 * event even if the server keeps the connection open (the body is then
 * closed); a stream that stops before it is a `Transport` error, never a
 * clean end. When a 2xx reply's rate-limit headers say a limit is spent
 * (`limitSpentOf`), `onLimitSpent` runs before the first event is read.
 *
 * @since 0.1.0
 * @category reading
 */
export const stream: {
  (
    options: StreamOptions
  ): <E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
    call: Effect.Effect<RawReply<E2>, E1>
  ) => Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>
  <E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
    call: Effect.Effect<RawReply<E2>, E1>,
    options: StreamOptions
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>
} = dual(
  2,
  <E1 extends { readonly message: string }, E2 extends { readonly message: string }>(
    call: Effect.Effect<RawReply<E2>, E1>,
    options: StreamOptions
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError> =>
    Stream.unwrap(
      call.pipe(
        Effect.mapError((error) => transport(options.model, redactor(options.apiKey)(transportDescription(error)))),
        Effect.flatMap((reply) => {
          if (reply.status < 200 || reply.status >= 300) return rejected(reply, options)
          const body = decompress(reply, options.model, options.apiKey)
          const redact = redactor(options.apiKey)
          const events = Effect.succeed(
            Stream.suspend(() => {
              const parse = options.parser()
              let ended = false
              const sse = Sse.events(body, {
                model: options.model,
                maxBytes: options.maxBytes ?? defaultMaxResponseBytes,
                maxEventBytes: options.maxEventBytes
              })
              return sse.pipe(
                Stream.mapConcatEffect(
                  (
                    event
                  ): Effect.Effect<
                    ReadonlyArray<ChatCompletion.ChatCompletionChunk | typeof Done>,
                    ProviderError.ProviderError
                  > => {
                    const parsed = parse({ ...event, data: redact(event.data) })
                    if (parsed === Done) return Effect.succeed([Done] as const)
                    return ProviderError.isProviderError(parsed) ? Effect.fail(parsed) : Effect.succeed(parsed)
                  }
                ),
                Stream.takeWhile((item) => {
                  ended = item === Done
                  return !ended
                }),
                Stream.filter((item): item is ChatCompletion.ChatCompletionChunk => item !== Done),
                Stream.concat(
                  Stream.suspend(() =>
                    ended ? Stream.empty : Stream.fail(transport(options.model, "stream ended before its end event"))
                  )
                )
              )
            })
          )
          const { limitSpentOf, onLimitSpent } = options
          return limitSpentOf === undefined || onLimitSpent === undefined
            ? events
            : tellingLimitSpent(reply.headers, limitSpentOf, onLimitSpent, events)
        })
      )
    )
)

/**
 * What `stream` needs of a wire.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamOptions extends LimitSpentOptions {
  readonly model: string
  readonly errorOf: ErrorOf
  readonly rateLimitResetOf?: RateLimitResetOf | undefined
  /** A fresh parser of the wire's events, one per stream. */
  readonly parser: () => EventParser
  readonly maxBytes?: number | undefined
  readonly maxEventBytes?: number | undefined
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The messages sent: an error body that echoes their text has it cut out. */
  readonly messages?: ReadonlyArray<{ readonly content?: unknown }> | undefined
}

/**
 * The body as bytes, decompressed when the provider compressed it (we never
 * ask for compression, but a proxy may send it anyway). A client may have
 * decompressed it already and kept the `content-encoding` header (`fetch`
 * does): the first bytes tell, since a gzip or zlib stream starts with its
 * magic number and a JSON or event-stream body never does. Uses the web
 * `DecompressionStream`, so this package stays free of Node.
 */
const decompress = <E extends { readonly message: string }>(
  reply: RawReply<E>,
  model: string,
  apiKey: Redacted.Redacted<string> | undefined
): Stream.Stream<Uint8Array, ProviderError.ProviderError> => {
  const raw = Stream.mapError(reply.stream, (error) => bodyCutOff(model, error, apiKey))
  const encoding = reply.headers["content-encoding"]?.trim().toLowerCase()
  if (encoding === undefined || encoding === "" || encoding === "identity") return raw
  const malformed = (description: string) =>
    ProviderError.ProviderError.fromReason({ reason: "MalformedResponse", model, description })
  const format = encoding === "gzip" || encoding === "x-gzip" ? "gzip" : encoding === "deflate" ? "deflate" : undefined
  if (format === undefined) return Stream.fail(malformed(`unsupported content-encoding: ${encoding.slice(0, 40)}`))
  return Stream.unwrapScoped(
    Effect.gen(function* () {
      // The first two bytes, which may come in more than one chunk; the rest follows unread.
      const [head, rest] = yield* Stream.peel(
        raw,
        Sink.fold(empty, (bytes) => bytes.byteLength < 2, concatBytes)
      )
      const body = head.byteLength === 0 ? rest : Stream.concat(Stream.succeed(head), rest)
      if (!(format === "gzip" ? isGzip(head) : isZlib(head))) return body
      const readable = yield* Stream.toReadableStreamEffect(body)
      return Stream.fromReadableStream({
        // A Uint8Array is a BufferSource: the widening only satisfies lib.dom.d.ts.
        evaluate: () => (readable as ReadableStream<BufferSource>).pipeThrough(new DecompressionStream(format)),
        onError: (error) =>
          ProviderError.isProviderError(error) ? error : malformed(`body does not decompress as ${format}`)
      })
    })
  )
}

const empty = new Uint8Array(0)

const concatBytes = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  if (a.byteLength === 0) return b
  const all = new Uint8Array(a.byteLength + b.byteLength)
  all.set(a)
  all.set(b, a.byteLength)
  return all
}

/** RFC 1952: a gzip member starts with 0x1f 0x8b. */
const isGzip = (head: Uint8Array): boolean => head[0] === 0x1f && head[1] === 0x8b

/** RFC 1950: a zlib stream starts with CMF (method 8, deflate) and FLG, together a multiple of 31. */
const isZlib = (head: Uint8Array): boolean =>
  head.byteLength >= 2 && (head[0]! & 0x0f) === 8 && head[0]! >> 4 <= 7 && ((head[0]! << 8) | head[1]!) % 31 === 0

/**
 * An error object inside a successful reply (a 200 body, or an error event in
 * a stream), classified like the HTTP error its type names; an unknown type
 * is a `ServerError`, since the provider did say it failed.
 *
 * @since 0.1.0
 * @category classification
 */
export const embeddedError = (
  model: string,
  error: { readonly type?: string | undefined; readonly message?: string | undefined },
  where: string
): ProviderError.ProviderError =>
  ProviderError.ProviderError.fromReason({
    reason: (error.type && ProviderError.reasonFromErrorType(error.type)) || "ServerError",
    model,
    description: `error ${where}: ${error.type ?? "?"}: ${error.message ?? ""}`
  })

/**
 * The key to call with, or, when calls over these connection options cannot
 * be made (no key, or a problem of `Connection.problems`), the error
 * each call fails with, sending nothing. Computed once per provider.
 *
 * @since 0.1.0
 * @category classification
 */
export const usableKey = (
  options: Connection.Options,
  keyVariable: string
): Either.Either<Redacted.Redacted<string>, (model: string) => ProviderError.ProviderError> => {
  const [problem] = Connection.problems(options)
  if (problem === undefined && options.apiKey !== undefined) return Either.right(options.apiKey)
  const description =
    problem === undefined
      ? `no API key: set ${keyVariable} or pass apiKey in the options`
      : `${problem.field} ${problem.message}`
  const reason = problem?.field === "baseURL" ? "InvalidRequest" : "Authentication"
  return Either.left((model) => ProviderError.ProviderError.fromReason({ reason, model, description }))
}

/**
 * Reads a body as UTF-8 text. Past `maxBytes` it fails with
 * `ResponseTooLarge` at once, or with `truncate` stops reading and keeps what
 * it has; either way memory stays bounded whatever the provider sends.
 *
 * @since 0.1.0
 * @category reading
 */
export const readText = <E>(
  body: Stream.Stream<Uint8Array, E>,
  options: { readonly model: string; readonly maxBytes?: number | undefined; readonly truncate?: boolean | undefined }
): Effect.Effect<string, E | ProviderError.ProviderError> =>
  Effect.suspend(() => {
    const maxBytes = options.maxBytes ?? defaultMaxResponseBytes
    const chunks: Array<Uint8Array> = []
    let size = 0
    let full = false
    return body.pipe(
      Stream.takeWhile(() => !full),
      Stream.runForEach((chunk) => {
        if (size + chunk.byteLength > maxBytes) {
          if (!options.truncate) {
            return Effect.fail(
              ProviderError.ProviderError.fromReason({
                reason: "ResponseTooLarge",
                model: options.model,
                description: `response body over ${maxBytes} bytes`
              })
            )
          }
          full = true
          chunk = chunk.subarray(0, maxBytes - size)
        }
        size += chunk.byteLength
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
): Effect.Effect<A, ProviderError.ProviderError> => decodeJsonEither(schema, text, model)

/** `decodeJson`, synchronously. */
const decodeJsonEither = <A, I>(
  schema: Schema.Schema<A, I>,
  text: string,
  model: string
): Either.Either<A, ProviderError.ProviderError> => {
  const json = Json.parseBounded(text)
  if (Either.isLeft(json)) return Either.left(unparsable(json.left, text, model))
  return decodeValue(schema, json.right, model)
}

/** A body that is not JSON or nests too deep (`why`), quoted briefly. */
const unparsable = (why: string, text: string, model: string) =>
  ProviderError.ProviderError.fromReason({
    reason: "MalformedResponse",
    model,
    description: `body is ${why}: ${JSON.stringify(text.slice(0, 80))}`
  })

/**
 * A parsed body decoded with `schema`; a complaint names the first problem's
 * path, with `redact` applied (it may quote a value of the body).
 */
const decodeValue = <A, I>(
  schema: Schema.Schema<A, I>,
  value: unknown,
  model: string,
  redact: (text: string) => string = identity
): Either.Either<A, ProviderError.ProviderError> =>
  // What the schema does not name is kept: an OpenAI reply comes back whole (annotations, usage details...).
  Either.mapLeft(Schema.decodeUnknownEither(schema)(value, preserve), (error) => {
    const [first] = ParseResult.ArrayFormatter.formatErrorSync(error)
    const problem = first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "?"
    return ProviderError.ProviderError.fromReason({
      reason: "MalformedResponse",
      model,
      description: redact(`unexpected body: ${problem}`)
    })
  })

/**
 * Parses JSON, or `None` for text that is not JSON or nests deeper than
 * `Json.maxDepth` (a reply no later walk of it could survive).
 *
 * @since 0.1.0
 * @category reading
 */
export const parseJson = (text: string): Option.Option<unknown> => Either.getRight(Json.parseBounded(text))

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
  readonly errorOf: ErrorOf
  readonly rateLimitResetOf?: RateLimitResetOf | undefined
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
      rateLimitReset: options.status === 429 ? options.rateLimitResetOf?.(options.header, now) : undefined,
      description:
        options.status >= 300 && options.status < 400
          ? redirectDescription(options.header("location"))
          : (error.message ?? (excerpt === "" ? undefined : excerpt)),
      shouldRetry: shouldRetryHeader(options.header("x-should-retry"))
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

/** A body that broke off while it was read: `Transport`, saying so and why. */
const bodyCutOff = (
  model: string,
  error: { readonly message: string },
  apiKey: Redacted.Redacted<string> | undefined
): ProviderError.ProviderError => transport(model, redactor(apiKey)(`body cut off: ${transportDescription(error)}`))

/**
 * What an HTTP client's failure says, led by its cause's kind when a cause in
 * its chain has a Node or undici error code: `connection refused
 * (ECONNREFUSED): ...` (DESIGN §5: a Transport error keeps its cause's kind).
 * Clients wrap the same cause differently (`fetch` in a `TypeError: fetch
 * failed`, undici directly), so the chain is searched.
 */
const transportDescription = (error: { readonly message: string }): string => {
  const code = causeCode(error)
  return code === undefined ? error.message : `${transportKind(code)} (${code}): ${error.message}`
}

/** The first string `code` in an error's `cause` chain. */
const causeCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { readonly code?: unknown }).code
    if (typeof code === "string" && code !== "") return code.slice(0, 40)
    current = (current as { readonly cause?: unknown }).cause
  }
  return undefined
}

const transportKind = (code: string): string => {
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ECONNRESET":
    case "EPIPE":
    case "ECONNABORTED":
    case "UND_ERR_SOCKET":
      return "connection reset"
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_FAIL":
    case "EAI_NONAME":
    case "EAI_NODATA":
      return "DNS lookup failed"
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connect timed out"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable"
  }
  return /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code)
    ? "TLS failure"
    : "failed"
}

/**
 * A 3xx, which no wire follows (DESIGN §6: a key never goes to another
 * origin): where it pointed, without its query or fragment (which may carry
 * a token), so that a base URL that redirects (http to https, a moved host)
 * is easy to fix.
 */
const redirectDescription = (location: string | undefined): string => {
  const target = location?.trim()
  if (target === undefined || target === "") return "redirect not followed"
  const url = URL.canParse(target) ? new URL(target) : undefined
  const where = url === undefined ? (target.split(/[?#]/)[0] ?? "") : `${url.origin}${url.pathname}`
  return `redirect to ${where.slice(0, 120)} not followed`
}

/** `x-should-retry: true | false`, the provider's explicit verdict; anything else is no verdict. */
const shouldRetryHeader = (value: string | undefined): boolean | undefined => {
  const verdict = value?.trim().toLowerCase()
  return verdict === "true" ? true : verdict === "false" ? false : undefined
}

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
