// Type-checked under node16 and bundler resolution against the installed tarballs:
// the facade, IronlabsClient.layer, and types from @ironlabsai/core and @ironlabsai/http.
import type { HttpClient } from "@effect/platform"
import type { ChatCompletion, Reliability } from "@ironlabsai/core"
import { UndiciHttpClient } from "@ironlabsai/http"
import type { Connection } from "@ironlabsai/http"
import { Effect, Layer } from "effect"
import { IronlabsAI, IronlabsClient } from "ironlabsai"

const reliability: Reliability.Input = {
  failover_chain: [
    { model: "openai/gpt-4o", max_retries: 2, timeout: 5.0, backoff: 2.0 },
    { model: "anthropic/claude-3-5-haiku-20241022", max_retries: 1, timeout: 5.0, backoff: 1.0 }
  ]
}
const request = {
  messages: [{ role: "user", content: "Describe a sunset." }]
} satisfies ChatCompletion.ChatCompletionRequest
const connection: Connection.Options = { baseURL: "http://127.0.0.1:8787/v1" }

export const facade = async (): Promise<string> => {
  const client = new IronlabsAI({ reliability, openai: { apiKey: "sk-test", baseURL: connection.baseURL } })
  const response = await client.completions.create(request)
  const content: ChatCompletion.Content | null | undefined = response.choices[0]?.message.content
  await client.close()
  return `${response.model}: ${String(content)}`
}

const Client = IronlabsClient.layer({ reliability })
// The client needs only an HttpClient.
export const needs: [Layer.Layer.Context<typeof Client>] extends [HttpClient.HttpClient] ? true : false = true

export const program = Effect.gen(function* () {
  const client = yield* IronlabsClient
  const response = yield* client.completions.create(request)
  return response.model
}).pipe(Effect.provide(Client.pipe(Layer.provide(UndiciHttpClient.layer))))

export const run = (): Promise<string> => Effect.runPromise(program)
