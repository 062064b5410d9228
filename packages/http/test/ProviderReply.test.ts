import { deflateSync, gzipSync } from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { ProviderError } from "@ironlabsai/core"
import { ProviderReply } from "@ironlabsai/http"
import { Duration, Effect, Redacted, Schema, Stream } from "effect"

const MODEL = "openai/gpt-4o"
const Body = Schema.Struct({ ok: Schema.Boolean })
const errorOf: ProviderReply.ErrorOf = (body) => {
  const error = (body as { error?: { type?: string; message?: string } }).error
  return { type: error?.type, message: error?.message }
}
const bytes = (text: string) => new TextEncoder().encode(text)

/** A reply as a client would hand it over, its body in `pieces`. */
const reply = (
  status: number,
  pieces: ReadonlyArray<Uint8Array>,
  headers: Record<string, string> = {}
): Effect.Effect<ProviderReply.RawReply<Error>, Error> =>
  Effect.succeed({ status, headers, stream: Stream.fromIterable(pieces) })

const decode = (call: Effect.Effect<ProviderReply.RawReply<Error>, Error>, maxBytes?: number) =>
  ProviderReply.decode(call, { model: MODEL, schema: Body, errorOf, maxBytes })

const failure = <A>(effect: Effect.Effect<A, ProviderError.ProviderError>) => Effect.flip(effect)

describe("ProviderReply", () => {
  it.effect("decode and stream are data-last too: they pipe", () =>
    Effect.gen(function* () {
      const value = yield* reply(200, [bytes('{"ok":true}')]).pipe(
        ProviderReply.decode({ model: MODEL, schema: Body, errorOf })
      )
      assert.deepStrictEqual(value, { ok: true })
      const error = yield* reply(429, [bytes("{}")]).pipe(
        ProviderReply.stream({ model: MODEL, errorOf, parser: () => () => ProviderReply.Done }),
        Stream.runDrain,
        Effect.flip
      )
      assert.strictEqual(error.reason, "RateLimited")
    })
  )

  it.effect("decodes a 2xx body that arrives in pieces", () =>
    Effect.gen(function* () {
      const value = yield* decode(reply(200, [bytes('{"o'), bytes('k":tr'), bytes("ue}")]))
      assert.deepStrictEqual(value, { ok: true })
    })
  )

  it.effect("a UTF-8 character split across pieces survives", () =>
    Effect.gen(function* () {
      const Text = Schema.Struct({ text: Schema.String })
      const all = bytes('{"text":"caf\u00e9 \u6d77"}')
      const pieces = Array.from(all, (byte) => Uint8Array.of(byte))
      const value = yield* ProviderReply.decode(reply(200, pieces), { model: MODEL, schema: Text, errorOf })
      assert.strictEqual(value.text, "caf\u00e9 \u6d77")
    })
  )

  it.effect("a body over the cap fails with ResponseTooLarge as soon as it passes it", () =>
    Effect.gen(function* () {
      let pulled = 0
      const chunk = new Uint8Array(1024)
      const stream = Stream.repeatEffect(
        Effect.sync(() => {
          pulled++
          return chunk
        })
      ).pipe(Stream.take(1000))
      const error = yield* failure(
        ProviderReply.decode(Effect.succeed({ status: 200, headers: {}, stream }), {
          model: MODEL,
          schema: Body,
          errorOf,
          maxBytes: 10 * 1024
        })
      )
      assert.strictEqual(error.reason, "ResponseTooLarge")
      assert.isAtMost(pulled, 12)
    })
  )

  it.effect("the cap counts decompressed bytes of a gzip body", () =>
    Effect.gen(function* () {
      const big = JSON.stringify({ ok: true, pad: "x".repeat(100_000) })
      const gz = gzipSync(big)
      assert.isBelow(gz.byteLength, 2000)
      const error = yield* failure(decode(reply(200, [gz], { "content-encoding": "gzip" }), 50_000))
      assert.strictEqual(error.reason, "ResponseTooLarge")
      const value = yield* decode(reply(200, [gz], { "content-encoding": "gzip" }), 200_000)
      // What the schema does not name is kept, as a reply is passed back whole.
      assert.deepStrictEqual(value, JSON.parse(big))
    })
  )

  it.effect("a gzip body that breaks off inside, or an unknown encoding, is MalformedResponse", () =>
    Effect.gen(function* () {
      const gz = gzipSync(JSON.stringify({ ok: true, pad: "x".repeat(10_000) }))
      const cut = gz.subarray(0, gz.byteLength - 20)
      const bad = yield* failure(decode(reply(200, [cut], { "content-encoding": "gzip" })))
      assert.strictEqual(bad.reason, "MalformedResponse")
      assert.strictEqual(bad.description, "body does not decompress as gzip")
      const br = yield* failure(decode(reply(200, [bytes("{}")], { "content-encoding": "br" })))
      assert.strictEqual(br.reason, "MalformedResponse")
      assert.include(br.description, "unsupported content-encoding: br")
    })
  )

  it.effect("gzip and deflate bodies are decompressed, their magic bytes split across pieces or not", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ ok: true })
      for (const [encoding, compressed] of [
        ["gzip", gzipSync(body)],
        ["deflate", deflateSync(body)]
      ] as const) {
        const whole = yield* decode(reply(200, [compressed], { "content-encoding": encoding }))
        assert.deepStrictEqual(whole, { ok: true }, encoding)
        const pieces = Array.from(compressed, (byte) => Uint8Array.of(byte))
        const split = yield* decode(reply(200, [new Uint8Array(0), ...pieces], { "content-encoding": encoding }))
        assert.deepStrictEqual(split, { ok: true }, `${encoding}, byte by byte`)
      }
    })
  )

  it.effect("a body its client decompressed already, the header kept (as fetch does), passes as it is", () =>
    Effect.gen(function* () {
      for (const encoding of ["gzip", "x-gzip", "deflate"]) {
        const value = yield* decode(reply(200, [bytes('{"ok":'), bytes("true}")], { "content-encoding": encoding }))
        assert.deepStrictEqual(value, { ok: true }, encoding)
      }
      const error = yield* failure(
        decode(
          reply(429, [bytes('{"error":{"type":"rate_limit_error","message":"slow down"}}')], {
            "content-encoding": "gzip"
          })
        )
      )
      assert.deepStrictEqual([error.reason, error.description], ["RateLimited", "slow down"])
    })
  )

  it.effect("an error body is read only up to 64 KiB, and still classified by its status", () =>
    Effect.gen(function* () {
      let pulled = 0
      const chunk = bytes("<html>".padEnd(1024, "x"))
      const stream = Stream.repeatEffect(
        Effect.sync(() => {
          pulled++
          return chunk
        })
      ).pipe(Stream.take(64 * 1024))
      const error = yield* failure(
        ProviderReply.decode(Effect.succeed({ status: 503, headers: {}, stream }), {
          model: MODEL,
          schema: Body,
          errorOf
        })
      )
      assert.strictEqual(error.reason, "Overloaded")
      assert.strictEqual(error.status, 503)
      assert.isAtMost(pulled, 66)
      assert.isBelow(error.description!.length, 250)
    })
  )

  it.effect("a 200 carrying an error object is classified by its type", () =>
    Effect.gen(function* () {
      const limited = yield* failure(
        decode(reply(200, [bytes('{"error":{"type":"rate_limit_error","message":"slow down"}}')]))
      )
      assert.strictEqual(limited.reason, "RateLimited")
      assert.include(limited.description, "slow down")
      const unknown = yield* failure(decode(reply(200, [bytes('{"error":{"type":"mystery","message":"?"}}')])))
      assert.strictEqual(unknown.reason, "ServerError")
    })
  )

  it.effect("x-should-retry overrides the reason's verdict, both ways", () =>
    Effect.gen(function* () {
      const no = yield* failure(decode(reply(500, [bytes("{}")], { "x-should-retry": "false" })))
      assert.strictEqual(no.reason, "ServerError")
      assert.isFalse(ProviderError.isRetryable(no))
      const yes = yield* failure(decode(reply(400, [bytes("{}")], { "x-should-retry": "true" })))
      assert.isTrue(ProviderError.isRetryable(yes))
      const garbage = yield* failure(decode(reply(500, [bytes("{}")], { "x-should-retry": "maybe" })))
      assert.isTrue(ProviderError.isRetryable(garbage))
    })
  )

  it.effect("a call that fails before a reply, or a body cut off, is Transport", () =>
    Effect.gen(function* () {
      const refused = yield* failure(decode(Effect.fail(new Error("connect ECONNREFUSED"))))
      assert.strictEqual(refused.reason, "Transport")
      const cut = yield* failure(
        decode(
          Effect.succeed({
            status: 200,
            headers: {},
            stream: Stream.concat(Stream.make(bytes('{"ok":')), Stream.fail(new Error("socket hang up")))
          })
        )
      )
      assert.strictEqual(cut.reason, "Transport")
      assert.include(cut.description, "body cut off")
    })
  )

  it.effect("a transport failure leads with its cause's kind, found anywhere in the cause chain", () =>
    Effect.gen(function* () {
      const coded = (code: string) => Object.assign(new Error(`${code} happened`), { code })
      const rows: ReadonlyArray<readonly [unknown, string]> = [
        // undici hands over the socket's error; fetch wraps it in a TypeError
        [coded("ECONNREFUSED"), "connection refused (ECONNREFUSED)"],
        [new TypeError("fetch failed", { cause: coded("ECONNREFUSED") }), "connection refused (ECONNREFUSED)"],
        [new TypeError("fetch failed", { cause: coded("UND_ERR_SOCKET") }), "connection reset (UND_ERR_SOCKET)"],
        [coded("ECONNRESET"), "connection reset (ECONNRESET)"],
        [coded("ENOTFOUND"), "DNS lookup failed (ENOTFOUND)"],
        [coded("EAI_AGAIN"), "DNS lookup failed (EAI_AGAIN)"],
        [coded("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "TLS failure (UNABLE_TO_VERIFY_LEAF_SIGNATURE)"],
        [coded("ERR_TLS_CERT_ALTNAME_INVALID"), "TLS failure (ERR_TLS_CERT_ALTNAME_INVALID)"],
        [coded("EWHATEVER"), "failed (EWHATEVER)"]
      ]
      for (const [cause, kind] of rows) {
        const error = yield* failure(
          decode(Effect.fail(Object.assign(new Error("Transport error (POST u)"), { cause })))
        )
        assert.strictEqual(error.reason, "Transport")
        assert.strictEqual(error.description, `${kind}: Transport error (POST u)`)
      }
      const plain = yield* failure(decode(Effect.fail(new Error("aborted"))))
      assert.strictEqual(plain.description, "aborted")
      const cut = yield* failure(
        decode(
          Effect.succeed({
            status: 200,
            headers: {},
            stream: Stream.fail(Object.assign(new Error("Decode error"), { cause: coded("UND_ERR_SOCKET") }))
          })
        )
      )
      assert.strictEqual(cut.description, "body cut off: connection reset (UND_ERR_SOCKET): Decode error")
    })
  )

  it.effect("a key echoed verbatim, JSON-escaped or URL-encoded is cut out of an error body", () =>
    Effect.gen(function* () {
      const key = "sk-a/b+c"
      for (const echoed of [key, "sk-a\\/b+c", "sk-a%2Fb%2Bc", "sk-a%2fb%2bc"]) {
        const body = `{"error":{"type":"authentication_error","message":"bad key ${echoed}"}}`
        const error = yield* failure(
          ProviderReply.decode(reply(401, [bytes(body)]), {
            model: MODEL,
            schema: Body,
            errorOf,
            apiKey: Redacted.make(key)
          })
        )
        assert.strictEqual(error.description, "bad key [redacted]", echoed)
      }
    })
  )

  it.effect("a 3xx is not followed: InvalidRequest, saying where it pointed, without its query", () =>
    Effect.gen(function* () {
      const moved = yield* failure(decode(reply(301, [], { location: "https://user:pw@example.com/v1/x?token=1#f" })))
      assert.deepStrictEqual(
        [moved.reason, moved.status, moved.description],
        ["InvalidRequest", 301, "redirect to https://example.com/v1/x not followed"]
      )
      assert.isFalse(ProviderError.isRetryable(moved))
      const relative = yield* failure(decode(reply(307, [], { location: "/v2/chat?key=1" })))
      assert.strictEqual(relative.description, "redirect to /v2/chat not followed")
      const nowhere = yield* failure(decode(reply(308, [])))
      assert.strictEqual(nowhere.description, "redirect not followed")
    })
  )

  it.effect("deeply nested JSON does not crash the decoder", () =>
    Effect.gen(function* () {
      const depth = 100_000
      const nested = `{"ok":true,"x":${"[".repeat(depth)}${"]".repeat(depth)}}`
      const result = yield* Effect.either(decode(reply(200, [bytes(nested)])))
      assert.isTrue(result._tag === "Right" || result.left.reason === "MalformedResponse")
    })
  )
})

describe("ProviderError: classification", () => {
  const table: ReadonlyArray<[number, ProviderError.Reason, boolean]> = [
    [400, "InvalidRequest", false],
    [401, "Authentication", false],
    [403, "PermissionDenied", false],
    [404, "NotFound", false],
    [408, "Timeout", true],
    [409, "ServerError", true],
    [413, "InvalidRequest", false],
    [422, "InvalidRequest", false],
    [429, "RateLimited", true],
    [500, "ServerError", true],
    [502, "ServerError", true],
    [503, "Overloaded", true],
    [504, "ServerError", true],
    [529, "Overloaded", true],
    [599, "ServerError", true]
  ]
  for (const [status, reason, retryable] of table) {
    it(`${status} is ${reason}, ${retryable ? "retried" : "not retried"}`, () => {
      const error = ProviderError.ProviderError.fromStatus({ model: MODEL, status })
      assert.strictEqual(error.reason, reason)
      assert.strictEqual(ProviderError.isRetryable(error), retryable)
    })
  }
  it("429 insufficient_quota is QuotaExceeded, not retried", () => {
    const error = ProviderError.ProviderError.fromStatus({ model: MODEL, status: 429, errorType: "insufficient_quota" })
    assert.strictEqual(error.reason, "QuotaExceeded")
    assert.isFalse(ProviderError.isRetryable(error))
  })

  const now = Date.parse("2026-01-01T00:00:00Z")
  const retryAfter = (headers: Record<string, string>) =>
    ProviderError.parseRetryAfter((name) => headers[name], now).pipe((o) =>
      o._tag === "Some" ? Duration.toMillis(o.value) : undefined
    )
  it("parses retry-after-ms, Retry-After seconds and HTTP-dates; ignores garbage", () => {
    assert.strictEqual(retryAfter({ "retry-after-ms": "1500" }), 1500)
    assert.strictEqual(retryAfter({ "retry-after-ms": "1500", "retry-after": "9" }), 1500)
    assert.strictEqual(retryAfter({ "retry-after": "3" }), 3000)
    assert.strictEqual(retryAfter({ "retry-after": "0.5" }), 500)
    assert.strictEqual(retryAfter({ "retry-after": "Thu, 01 Jan 2026 00:00:10 GMT" }), 10_000)
    for (const garbage of ["soon", "-5", "NaN", "1e3", "", "Infinity", "Wed, 31 Dec 2025 23:59:00 GMT"]) {
      assert.strictEqual(retryAfter({ "retry-after": garbage }), undefined, garbage)
    }
    assert.strictEqual(retryAfter({ "retry-after-ms": "-1", "retry-after": "2" }), 2000)
  })
  it("a huge retry-after is kept as is (the router fails over when it passes the cap)", () => {
    assert.strictEqual(retryAfter({ "retry-after": "86400" }), 86_400_000)
  })
  it("a description is truncated, never a whole body", () => {
    const error = ProviderError.ProviderError.fromReason({
      reason: "ServerError",
      model: MODEL,
      description: "x".repeat(10_000)
    })
    assert.isBelow(error.description!.length, 250)
  })
})
