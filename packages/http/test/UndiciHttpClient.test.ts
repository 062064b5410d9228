/**
 * `UndiciHttpClient` against a real `node:http` server on loopback: what goes
 * on the wire, how each body reader ends (whole, capped, streamed, cut short),
 * that every early end closes the socket, the cooperative deadline, the typed
 * errors, and that a response never shows the request's key.
 */
import { randomBytes } from "node:crypto"
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import { HttpClient, HttpClientRequest, type HttpClientError, type HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Deadline } from "@ironlabsai/core"
import { ProviderReply, UndiciHttpClient } from "@ironlabsai/http"
import { Cause, Chunk, Effect, Exit, Fiber, Option, Stream } from "effect"
import { Agent } from "undici"

/** One request as the server saw it. */
interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  /** The client's port: the same for two requests on one kept-alive connection. */
  readonly remotePort: number
  /** Resolves when the response closes: true when the client closed the socket before the response finished. */
  readonly closedEarly: Promise<boolean>
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface TestServer {
  readonly url: string
  readonly seen: Array<Seen>
}

/** A loopback server answering with `handler` (after reading the whole request body), closed with the scope. */
const serve = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: ReturnType<typeof createServer>; readonly test: TestServer }>((resume) => {
      const seen: Array<Seen> = []
      const server = createServer((req, res) => {
        const closedEarly = new Promise<boolean>((resolve) => res.on("close", () => resolve(!res.writableFinished)))
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          seen.push({
            method: req.method!,
            url: req.url!,
            headers: req.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            remotePort: req.socket.remotePort!,
            closedEarly
          })
          handler(req, res)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ server, test: { url: `http://127.0.0.1:${port}`, seen } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ test }) => test))

/** The client over its own agent, destroyed with the scope. */
const clientWith = (options?: Agent.Options) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new Agent(options)),
      (agent) => Effect.promise(() => agent.destroy())
    ),
    UndiciHttpClient.make
  )

const client = clientWith()

/** A server and a client for one test. */
const setup = (handler: Handler) => Effect.all([serve(handler), client])

/** Whether the client closed the socket before the response finished; fails if the server never sees a close. */
const closedEarly = (seen: Seen | undefined) => Effect.promise(() => seen!.closedEarly).pipe(Effect.timeout("1 second"))

/** A request under a 150 ms deadline from `start` failed with `expected` about then, and its socket was closed. */
const endedAtDeadline = (
  error: HttpClientError.HttpClientError,
  start: number,
  seen: Seen | undefined,
  expected: readonly [HttpClientError.HttpClientError["_tag"], string]
) =>
  Effect.gen(function* () {
    const elapsed = Date.now() - start
    assert.deepStrictEqual([error._tag, error.reason], expected)
    assert.isAtLeast(elapsed, 140)
    assert.isBelow(elapsed, 500)
    assert.isTrue(yield* closedEarly(seen))
  })

/** The response, with its capped read (declared through `ProviderReply.CappedRead`) at hand as `readCapped`. */
const capped = (response: HttpClientResponse.HttpClientResponse) => {
  assert.isTrue(ProviderReply.isCappedRead(response), "the response declares CappedRead")
  const read = (response as unknown as ProviderReply.CappedRead<HttpClientError.ResponseError>)[
    ProviderReply.CappedReadTypeId
  ]
  return Object.assign(response, { readCapped: (maxBytes: number) => read.call(response, maxBytes) })
}

const concat = (chunks: Chunk.Chunk<Uint8Array>) => Buffer.concat(Chunk.toReadonlyArray(chunks))

/** Random bytes, so any lost, repeated or reordered chunk shows. */
const pattern = randomBytes(4 * 1024 * 1024)

/** Writes `body` in `size`-byte chunks, waiting for drain; stops when the socket closes. */
const pump = async (res: ServerResponse, body: Uint8Array, size: number) => {
  for (let at = 0; at < body.byteLength && !res.destroyed; at += size) {
    if (!res.write(body.subarray(at, at + size))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done)
          res.off("close", done)
          resolve()
        }
        res.on("drain", done)
        res.on("close", done)
      })
    }
  }
}

/** Sends headers, then one byte every 20 ms until the client goes. */
const drip: Handler = (_, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.flushHeaders()
  const timer = setInterval(() => res.write("x"), 20)
  res.on("close", () => clearInterval(timer))
}

/** Never answers. */
const silent: Handler = () => {}

describe("UndiciHttpClient", () => {
  describe("the wire", () => {
    it.live("a JSON POST arrives with its method, path, query, content type and body; the reply reads back", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(201, { "content-type": "application/json", "x-custom": "custom-value" })
          res.end(JSON.stringify({ ok: true, n: 42 }))
        })
        const request = HttpClientRequest.post(`${server.url}/v1/chat?a=1`).pipe(
          HttpClientRequest.setUrlParam("b", "two words"),
          HttpClientRequest.bodyUnsafeJson({ model: "gpt-4o", messages: [{ role: "user", content: "héllo" }] })
        )
        const response = yield* http.execute(request)
        assert.strictEqual(response.status, 201)
        assert.strictEqual(response.headers["x-custom"], "custom-value")
        assert.strictEqual(response.headers["content-type"], "application/json")
        assert.deepStrictEqual(yield* response.json, { ok: true, n: 42 })

        const seen = server.seen[0]!
        assert.strictEqual(server.seen.length, 1)
        assert.strictEqual(seen.method, "POST")
        assert.strictEqual(seen.url, "/v1/chat?a=1&b=two+words")
        assert.strictEqual(seen.headers["content-type"], "application/json")
        assert.strictEqual(seen.body, `{"model":"gpt-4o","messages":[{"role":"user","content":"héllo"}]}`)
        assert.strictEqual(seen.headers["content-length"], String(Buffer.byteLength(seen.body)))
        assert.isFalse(yield* closedEarly(seen))

        // undici's pool takes the connection back on the next macrotask; a request sooner opens another.
        yield* Effect.sleep("10 millis")
        const again = yield* http.execute(HttpClientRequest.get(`${server.url}/v1/chat?a=1`))
        assert.strictEqual(yield* again.text, `{"ok":true,"n":42}`)
        assert.strictEqual(server.seen[1]!.method, "GET")
        assert.strictEqual(server.seen[1]!.url, "/v1/chat?a=1")
        assert.strictEqual(server.seen[1]!.body, "")
        // Both bodies were read to the end: the second request went on the same kept-alive connection.
        assert.strictEqual(server.seen[1]!.remotePort, seen.remotePort)
      }).pipe(Effect.scoped)
    )

    it.live("the same URL text with different url params (and a hash) goes to the right paths each time", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((req, res) => res.end(req.url))
        const url = `${server.url}/p?a=1`
        const paths: Array<string> = []
        for (const request of [
          HttpClientRequest.get(url),
          HttpClientRequest.get(url).pipe(HttpClientRequest.setUrlParam("b", "2")),
          HttpClientRequest.get(url).pipe(HttpClientRequest.setUrlParam("b", "3")),
          HttpClientRequest.get(url),
          HttpClientRequest.get(url).pipe(HttpClientRequest.setHash("frag")),
          HttpClientRequest.get(`${server.url}/p`).pipe(HttpClientRequest.setUrlParams({ c: "x", d: "y" })),
          HttpClientRequest.get(`${server.url}/p`)
        ]) {
          paths.push(yield* Effect.flatMap(http.execute(request), (response) => response.text))
        }
        const expected = ["/p?a=1", "/p?a=1&b=2", "/p?a=1&b=3", "/p?a=1", "/p?a=1", "/p?c=x&d=y", "/p"]
        assert.deepStrictEqual(paths, expected)
        assert.deepStrictEqual(
          server.seen.map((s) => s.url),
          expected
        )
      }).pipe(Effect.scoped)
    )

    it.live("two set-cookie headers give two cookies", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.setHeader("set-cookie", ["session=abc123; Path=/; HttpOnly", "theme=dark; Max-Age=60"])
          res.end("ok")
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        const cookies = response.cookies.cookies
        assert.deepStrictEqual(Object.keys(cookies).sort(), ["session", "theme"])
        assert.strictEqual(cookies.session!.value, "abc123")
        assert.strictEqual(cookies.session!.options?.path, "/")
        assert.strictEqual(cookies.session!.options?.httpOnly, true)
        assert.strictEqual(cookies.theme!.value, "dark")
        assert.strictEqual(yield* response.text, "ok")
      }).pipe(Effect.scoped)
    )

    it.live("1xx informational responses before the final one are skipped: the 200 and its body arrive", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.writeProcessing()
          res.writeEarlyHints({ link: "</x>; rel=preload" }, () => {
            setTimeout(() => {
              res.writeHead(200, { "x-final": "yes" })
              res.end("final body")
            }, 10)
          })
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers["x-final"], "yes")
        assert.isUndefined(response.headers.link)
        assert.strictEqual(yield* response.text, "final body")
      }).pipe(Effect.scoped)
    )
  })

  describe("readCapped", () => {
    it.live("past the cap: exactly the first n bytes, truncated, and the socket closed", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-type": "application/octet-stream" })
          // 1 MiB in 16 KiB chunks, then on and on until the client goes.
          void pump(res, pattern.subarray(0, 1024 * 1024), 16 * 1024).then(async () => {
            while (!res.destroyed) await pump(res, pattern, 16 * 1024)
          })
        })
        const response = capped(yield* http.execute(HttpClientRequest.get(server.url)))
        const n = 200_003
        const body = yield* response.readCapped(n)
        assert.isTrue(body.truncated)
        assert.strictEqual(body.bytes.byteLength, n)
        assert.isTrue(Buffer.from(body.bytes).equals(pattern.subarray(0, n)))
        assert.isTrue(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("a body under the cap comes whole, not truncated; one exactly at the cap too", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.write("hello, ")
          setTimeout(() => res.end("world"), 10)
        })
        const small = yield* Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (r) =>
          capped(r).readCapped(1024)
        )
        assert.isFalse(small.truncated)
        assert.strictEqual(Buffer.from(small.bytes).toString(), "hello, world")
        const exact = yield* Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (r) =>
          capped(r).readCapped(12)
        )
        assert.isFalse(exact.truncated)
        assert.strictEqual(Buffer.from(exact.bytes).toString(), "hello, world")
        assert.isFalse(yield* closedEarly(server.seen[0]))
        assert.isFalse(yield* closedEarly(server.seen[1]))
      }).pipe(Effect.scoped)
    )
  })

  describe("readCapped, more", () => {
    it.live("a 1 MiB body read late, after the socket paused, comes whole", () =>
      Effect.gen(function* () {
        const body = pattern.subarray(0, 1024 * 1024)
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-length": body.byteLength })
          void pump(res, body, 16 * 1024).then(() => res.end())
        })
        const response = capped(yield* http.execute(HttpClientRequest.get(server.url)))
        yield* Effect.sleep("50 millis")
        const read = yield* response.readCapped(body.byteLength)
        assert.isFalse(read.truncated)
        assert.strictEqual(read.bytes.byteLength, body.byteLength)
        // The first bytes first: a mismatch here means chunks came back out of order.
        assert.strictEqual(
          Buffer.from(read.bytes.subarray(0, 16)).toString("hex"),
          body.subarray(0, 16).toString("hex")
        )
        assert.isTrue(Buffer.from(read.bytes).equals(body))
        assert.isFalse(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("a large JSON body parsed late, after the socket paused, is the JSON sent", () =>
      Effect.gen(function* () {
        const value = { items: Array.from({ length: 20_000 }, (_, i) => ({ i, text: `item number ${i}` })) }
        const json = Buffer.from(JSON.stringify(value))
        assert.isAbove(json.byteLength, 256 * 1024)
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": json.byteLength })
          void pump(res, json, 16 * 1024).then(() => res.end())
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        yield* Effect.sleep("50 millis")
        assert.deepStrictEqual(yield* response.json, value)
      }).pipe(Effect.scoped)
    )

    it.live("interrupting readCapped closes the socket", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(drip)
        const response = capped(yield* http.execute(HttpClientRequest.get(server.url)))
        const error = yield* Effect.flip(response.readCapped(1_000_000).pipe(Effect.timeout("60 millis")))
        assert.strictEqual(error._tag, "TimeoutException")
        assert.isTrue(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )
  })

  describe("stream", () => {
    it.live("a body written in chunks with pauses arrives whole and in order, in several chunks", () =>
      Effect.gen(function* () {
        const parts = ["data: one\n\n", "data: two\n\n", "data: three\n\n", "data: [DONE]\n\n"]
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-type": "text/event-stream" })
          let i = 0
          const next = () => {
            res.write(parts[i++])
            if (i < parts.length) setTimeout(next, 20)
            else res.end()
          }
          next()
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        const chunks = yield* Stream.runCollect(response.stream)
        assert.strictEqual(concat(chunks).toString(), parts.join(""))
        assert.isAtLeast(Chunk.size(chunks), 2)
        assert.isFalse(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("taking only the first chunk closes the socket", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200)
          res.write("first")
          const timer = setInterval(() => res.write("more"), 20)
          res.on("close", () => clearInterval(timer))
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        const chunks = yield* Stream.runCollect(Stream.take(response.stream, 1))
        assert.strictEqual(Chunk.size(chunks), 1)
        assert.strictEqual(Buffer.from(Chunk.unsafeGet(chunks, 0)).toString(), "first")
        assert.isTrue(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("a 1 MiB body streamed late, after the socket paused, arrives intact", () =>
      Effect.gen(function* () {
        const body = pattern.subarray(0, 1024 * 1024)
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-length": body.byteLength })
          void pump(res, body, 16 * 1024).then(() => res.end())
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        yield* Effect.sleep("50 millis")
        const streamed = concat(yield* Stream.runCollect(response.stream))
        assert.strictEqual(streamed.byteLength, body.byteLength)
        assert.isTrue(streamed.equals(body))
        assert.isFalse(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("a 4 MiB body read slowly arrives intact (pause and resume lose and reorder nothing)", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-length": pattern.byteLength })
          void pump(res, pattern, 16 * 1024).then(() => res.end())
        })
        const response = yield* http.execute(HttpClientRequest.get(server.url))
        let count = 0
        const chunks = yield* response.stream.pipe(
          Stream.mapEffect((chunk) =>
            ++count % 8 === 0 ? Effect.as(Effect.sleep("1 millis"), chunk) : Effect.succeed(chunk)
          ),
          Stream.runCollect
        )
        const body = concat(chunks)
        assert.strictEqual(body.byteLength, pattern.byteLength)
        assert.isTrue(body.equals(pattern))
        assert.isFalse(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )
  })

  describe("interruption and deadlines", () => {
    it.live("interrupting execute before the server answers ends promptly and closes the socket", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(silent)
        const start = Date.now()
        const error = yield* Effect.flip(
          http.execute(HttpClientRequest.get(server.url)).pipe(Effect.timeout("100 millis"))
        )
        const elapsed = Date.now() - start
        assert.strictEqual(error._tag, "TimeoutException")
        assert.isAtLeast(elapsed, 95)
        assert.isBelow(elapsed, 400)
        assert.strictEqual(server.seen.length, 1)
        assert.isTrue(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("Fiber.interrupt of a waiting execute returns promptly and closes the socket", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(silent)
        const fiber = yield* Effect.fork(http.execute(HttpClientRequest.get(server.url)))
        yield* Effect.sleep("50 millis")
        const start = Date.now()
        const exit = yield* Fiber.interrupt(fiber)
        assert.isBelow(Date.now() - start, 200)
        assert.isTrue(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause))
        assert.isTrue(yield* closedEarly(server.seen[0]))
      }).pipe(Effect.scoped)
    )

    it.live("the deadline fails a request the server never answers with RequestError Transport, on time", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(silent)
        const start = Date.now()
        const error = yield* Effect.flip(
          http.execute(HttpClientRequest.get(server.url)).pipe(Effect.locally(Deadline.current, start + 150))
        )
        yield* endedAtDeadline(error, start, server.seen[0], ["RequestError", "Transport"])
      }).pipe(Effect.scoped)
    )

    it.live("the deadline covers the body: a body that drips forever fails readCapped with ResponseError Decode", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(drip)
        const start = Date.now()
        const error = yield* Effect.flip(
          Effect.gen(function* () {
            const response = capped(yield* http.execute(HttpClientRequest.get(server.url)))
            assert.strictEqual(response.status, 200)
            return yield* response.readCapped(1_000_000)
          }).pipe(Effect.locally(Deadline.current, start + 150))
        )
        yield* endedAtDeadline(error, start, server.seen[0], ["ResponseError", "Decode"])
      }).pipe(Effect.scoped)
    )

    it.live("the deadline covers a streamed body too: the stream fails with ResponseError Decode", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(drip)
        const start = Date.now()
        const error = yield* Effect.flip(
          Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (response) =>
            Stream.runDrain(response.stream)
          ).pipe(Effect.locally(Deadline.current, start + 150))
        )
        yield* endedAtDeadline(error, start, server.seen[0], ["ResponseError", "Decode"])
      }).pipe(Effect.scoped)
    )

    it.live("a deadline already past fails at once with Transport", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup(silent)
        const start = Date.now()
        const error = yield* Effect.flip(
          http.execute(HttpClientRequest.get(server.url)).pipe(Effect.locally(Deadline.current, start - 1_000))
        )
        assert.strictEqual(error._tag, "RequestError")
        assert.strictEqual(error.reason, "Transport")
        assert.isBelow(Date.now() - start, 200)
      }).pipe(Effect.scoped)
    )

    it.live("a response that ends before its deadline is not cut short, even when its body is read after it", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => setTimeout(() => res.end("in time"), 20))
        const response = yield* http
          .execute(HttpClientRequest.get(server.url))
          .pipe(Effect.locally(Deadline.current, Date.now() + 100))
        assert.isFalse(yield* closedEarly(server.seen[0]))
        yield* Effect.sleep("150 millis")
        assert.strictEqual(yield* response.text, "in time")
      }).pipe(Effect.scoped)
    )

    it.live("a deadline beyond setTimeout's 2^31-1 ms range does not abort the request", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => setTimeout(() => res.end("in time"), 50))
        // About 25 days away (a `timeout` of 2_200_000 seconds in the reliability config is valid).
        const exit = yield* Effect.exit(
          Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (r) => r.text).pipe(
            Effect.locally(Deadline.current, Date.now() + 2_200_000_000)
          )
        )
        assert.deepStrictEqual(exit, Exit.succeed("in time"))
      }).pipe(Effect.scoped)
    )

    it.live("a request queued behind a busy connection fails at its deadline, and is never sent", () =>
      Effect.gen(function* () {
        const [server, http] = yield* Effect.all([
          serve((req, res) => {
            if (req.url !== "/hang") res.end(`ok ${req.url}`)
          }),
          clientWith({ connections: 1 })
        ])
        const hang = yield* Effect.fork(http.execute(HttpClientRequest.get(`${server.url}/hang`)))
        yield* Effect.sleep("30 millis")
        assert.deepStrictEqual(
          server.seen.map((s) => s.url),
          ["/hang"]
        )
        const start = Date.now()
        const error = yield* Effect.flip(
          http.execute(HttpClientRequest.get(`${server.url}/queued`)).pipe(Effect.locally(Deadline.current, start + 80))
        )
        const elapsed = Date.now() - start
        assert.strictEqual(error._tag, "RequestError")
        assert.strictEqual(error.reason, "Transport")
        assert.isAtLeast(elapsed, 70)
        assert.isBelow(elapsed, 400)
        yield* Fiber.interrupt(hang)
        assert.isTrue(yield* closedEarly(server.seen[0]))
        const after = yield* Effect.flatMap(http.execute(HttpClientRequest.get(`${server.url}/after`)), (r) => r.text)
        assert.strictEqual(after, "ok /after")
        assert.deepStrictEqual(
          server.seen.map((s) => s.url),
          ["/hang", "/after"]
        )
      }).pipe(Effect.scoped)
    )

    it.live("interrupting a request queued behind a busy connection is prompt, and it is never sent", () =>
      Effect.gen(function* () {
        const [server, http] = yield* Effect.all([
          serve((req, res) => {
            if (req.url === "/slow") setTimeout(() => res.end("slow"), 100)
            else res.end(`ok ${req.url}`)
          }),
          clientWith({ connections: 1 })
        ])
        const slow = yield* Effect.fork(
          Effect.flatMap(http.execute(HttpClientRequest.get(`${server.url}/slow`)), (r) => r.text)
        )
        yield* Effect.sleep("20 millis")
        const start = Date.now()
        const error = yield* Effect.flip(
          http.execute(HttpClientRequest.get(`${server.url}/queued`)).pipe(Effect.timeout("30 millis"))
        )
        assert.strictEqual(error._tag, "TimeoutException")
        assert.isBelow(Date.now() - start, 200)
        assert.strictEqual(yield* Fiber.join(slow), "slow")
        const after = yield* Effect.flatMap(http.execute(HttpClientRequest.get(`${server.url}/after`)), (r) => r.text)
        assert.strictEqual(after, "ok /after")
        assert.deepStrictEqual(
          server.seen.map((s) => s.url),
          ["/slow", "/after"]
        )
      }).pipe(Effect.scoped)
    )
  })

  describe("errors", () => {
    it.live("a refused connection is RequestError Transport", () =>
      Effect.gen(function* () {
        const port = yield* Effect.scoped(Effect.map(serve(silent), (server) => new URL(server.url).port))
        const http = yield* client
        const error = yield* Effect.flip(http.execute(HttpClientRequest.get(`http://127.0.0.1:${port}/`)))
        assert.strictEqual(error._tag, "RequestError")
        assert.strictEqual(error.reason, "Transport")
      }).pipe(Effect.scoped)
    )

    it.live("an invalid URL is RequestError InvalidUrl", () =>
      Effect.gen(function* () {
        const http = yield* client
        const error = yield* Effect.flip(http.execute(HttpClientRequest.get("not a url")))
        assert.strictEqual(error._tag, "RequestError")
        assert.strictEqual(error.reason, "InvalidUrl")
      }).pipe(Effect.scoped)
    )

    it.live("a form body is RequestError Encode, and nothing is sent", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => res.end())
        const form = new FormData()
        form.append("field", "value")
        const error = yield* Effect.flip(
          http.execute(HttpClientRequest.post(server.url).pipe(HttpClientRequest.bodyFormData(form)))
        )
        assert.strictEqual(error._tag, "RequestError")
        assert.strictEqual(error.reason, "Encode")
        yield* Effect.sleep("20 millis")
        assert.strictEqual(server.seen.length, 0)
      }).pipe(Effect.scoped)
    )
  })

  describe("bodies", () => {
    it.live("arrayBuffer holds the bytes", () =>
      Effect.gen(function* () {
        const bytes = Uint8Array.from([0, 1, 2, 127, 128, 254, 255])
        const [server, http] = yield* setup((_, res) => {
          res.write(bytes.subarray(0, 3))
          setTimeout(() => res.end(bytes.subarray(3)), 10)
        })
        const buffer = yield* Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (r) => r.arrayBuffer)
        assert.instanceOf(buffer, ArrayBuffer)
        assert.deepStrictEqual(Array.from(new Uint8Array(buffer)), Array.from(bytes))
      }).pipe(Effect.scoped)
    )

    it.live("urlParamsBody parses a=1&b=2", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-type": "application/x-www-form-urlencoded" })
          res.end("a=1&b=2")
        })
        const params = yield* Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (r) => r.urlParamsBody)
        assert.deepStrictEqual(params, [
          ["a", "1"],
          ["b", "2"]
        ])
      }).pipe(Effect.scoped)
    )

    it.live("formData parses a multipart body", () =>
      Effect.gen(function* () {
        const boundary = "----ironlabs-boundary-7f3a"
        const body = [
          `--${boundary}`,
          `Content-Disposition: form-data; name="field"`,
          "",
          "value one",
          `--${boundary}`,
          `Content-Disposition: form-data; name="other"`,
          "",
          "2",
          `--${boundary}--`,
          ""
        ].join("\r\n")
        const [server, http] = yield* setup((_, res) => {
          res.writeHead(200, { "content-type": `multipart/form-data; boundary=${boundary}` })
          res.end(body)
        })
        const form = yield* Effect.flatMap(http.execute(HttpClientRequest.get(server.url)), (r) => r.formData)
        assert.strictEqual(form.get("field"), "value one")
        assert.strictEqual(form.get("other"), "2")
      }).pipe(Effect.scoped)
    )

    it.live("json of an empty body is null; of a bad body, ResponseError Decode", () =>
      Effect.gen(function* () {
        const [server, http] = yield* setup((req, res) => res.end(req.url === "/bad" ? "{nope" : ""))
        const empty = yield* Effect.flatMap(http.execute(HttpClientRequest.get(`${server.url}/empty`)), (r) => r.json)
        assert.isNull(empty)
        const error = yield* Effect.flip(
          Effect.flatMap(http.execute(HttpClientRequest.get(`${server.url}/bad`)), (r) => r.json)
        )
        assert.strictEqual(error._tag, "ResponseError")
        assert.strictEqual(error.reason, "Decode")
      }).pipe(Effect.scoped)
    )
  })

  describe("inspection", () => {
    it.live("String, inspect and JSON.stringify of a response never show the request's key", () =>
      Effect.gen(function* () {
        const canary = "sk-canary-xyz"
        const [server, http] = yield* setup((_, res) => res.end("ok"))
        const response = yield* http.execute(
          HttpClientRequest.get(server.url).pipe(HttpClientRequest.setHeader("authorization", `Bearer ${canary}`))
        )
        assert.strictEqual(server.seen[0]!.headers.authorization, `Bearer ${canary}`)
        for (const text of [
          String(response),
          inspect(response, { depth: 10 }),
          inspect(response, { depth: 10, showHidden: true }),
          JSON.stringify(response)
        ]) {
          assert.notInclude(text, canary)
        }
        assert.deepStrictEqual(JSON.parse(JSON.stringify(response)), {
          _id: "UndiciHttpClient/Response",
          status: 200,
          url: server.url
        })
        assert.strictEqual(yield* response.text, "ok")
      }).pipe(Effect.scoped)
    )
  })

  describe("layer", () => {
    it.live("UndiciHttpClient.layer provides a working client and the Deadline.Cooperative marker", () =>
      Effect.gen(function* () {
        const server = yield* serve((_, res) => res.end("via layer"))
        const [text, native] = yield* Effect.all([
          Effect.flatMap(HttpClient.get(server.url), (r) => r.text),
          Effect.serviceOption(Deadline.Cooperative)
        ]).pipe(Effect.provide(UndiciHttpClient.layer))
        assert.strictEqual(text, "via layer")
        assert.deepStrictEqual(native, Option.some(true))
      }).pipe(Effect.scoped)
    )
  })
})
