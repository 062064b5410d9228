import type { IronlabsClient } from "@ironlabsai/core"
import type { IronlabsAI } from "ironlabsai"
import type OpenAI from "openai"
import { describe, it } from "vitest"

type NonStreaming = Omit<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, "model">
type Streaming = Omit<OpenAI.Chat.ChatCompletionCreateParamsStreaming, "model">

// Compile-time checks: any request the `openai` package types passes to `create` without a cast.
export const facade = (client: IronlabsAI, params: NonStreaming, streaming: Streaming) => [
  client.completions.create(params),
  client.completions.create(streaming)
]
export const effect = (client: IronlabsClient.IronlabsClient["Type"], params: NonStreaming, streaming: Streaming) => [
  client.completions.create(params),
  client.completions.create(streaming)
]
export const history = (client: IronlabsAI, messages: Array<OpenAI.Chat.ChatCompletionMessageParam>) =>
  client.completions.create({ messages })

describe("openai types", () => {
  it("compiles", () => {})
})
