import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Connection, UndiciHttpClient } from "@ironlabsai/http"
import { Effect } from "effect"

/** A fetch that records the init of each call and answers 200. */
const recordingFetch = () => {
  const inits: Array<RequestInit | undefined> = []
  const fetch = ((_: RequestInfo | URL, init?: RequestInit) => {
    inits.push(init)
    return Promise.resolve(new Response("{}", { status: 200 }))
  }) as typeof globalThis.fetch
  return { inits, fetch }
}

describe("Connection: redirects", () => {
  it.effect("sends every FetchHttpClient request with redirect: manual", () =>
    Effect.gen(function* () {
      const { inits, fetch } = recordingFetch()
      const client = Connection.withoutRedirects(yield* HttpClient.HttpClient)
      yield* client
        .execute(HttpClientRequest.post("http://127.0.0.1:1/v1/chat/completions"))
        .pipe(Effect.provideService(FetchHttpClient.Fetch, fetch))
      assert.strictEqual(inits.length, 1)
      assert.strictEqual(inits[0]?.redirect, "manual")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.effect("keeps the RequestInit it can see, its redirect overridden", () =>
    Effect.gen(function* () {
      const { inits, fetch } = recordingFetch()
      const client = Connection.withoutRedirects(yield* HttpClient.HttpClient)
      yield* client
        .execute(HttpClientRequest.get("http://127.0.0.1:1/"))
        .pipe(
          Effect.provideService(FetchHttpClient.Fetch, fetch),
          Effect.provideService(FetchHttpClient.RequestInit, { keepalive: true, redirect: "follow" })
        )
      assert.strictEqual(inits[0]?.redirect, "manual")
      assert.strictEqual(inits[0]?.keepalive, true)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )

  it.effect(
    "Connection.httpClient is the client as it is over UndiciHttpClient.layer, which declares NoRedirects",
    () =>
      Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        assert.strictEqual(yield* Connection.httpClient, client)
      }).pipe(Effect.provide(UndiciHttpClient.layer))
  )

  it.effect("Connection.httpClient wraps a client whose layer declares nothing", () =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      assert.notStrictEqual(yield* Connection.httpClient, client)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})
