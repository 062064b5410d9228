/**
 * The provider conformance suite (`@ironlabsai/testing/Conformance`) for
 * the Anthropic wire, over every `HttpClient` the docs say works: the lean
 * `UndiciHttpClient`, the platform's `FetchHttpClient` and
 * `NodeHttpClient.layerUndici`. What is Anthropic's own (the translation of
 * requests, replies, stop reasons, usage and events) is tested in the other files.
 * The golden fixtures in `golden/` pin down whole exchanges of the Anthropic wire,
 * both ways, streamed and not.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { layer } from "@effect/vitest"
import { UndiciHttpClient } from "@ironlabsai/http"
import * as Conformance from "@ironlabsai/testing/Conformance"
import { AnthropicProvider } from "../src/index.js"

Conformance.run(
  layer,
  {
    name: "AnthropicProvider",
    make: AnthropicProvider.make,
    baseUrlOf: (simulator) => simulator.anthropicBaseUrl,
    routedModel: "anthropic/claude-3-5-haiku-20241022",
    wireModel: "claude-3-5-haiku-20241022",
    golden: Conformance.readGolden(new URL("golden/", import.meta.url)),
    rateLimitHeaders: {
      // The tokens limits are the ones spent: their reset, 42.5 s after now, not the requests' minute.
      at: (now) => {
        const at = (millis: number) => new Date(now + millis).toISOString()
        return {
          "anthropic-ratelimit-requests-remaining": "49",
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-tokens-remaining": "0",
          "anthropic-ratelimit-tokens-reset": at(42_500),
          "anthropic-ratelimit-input-tokens-remaining": "0",
          "anthropic-ratelimit-input-tokens-reset": at(42_500),
          "anthropic-ratelimit-output-tokens-remaining": "8000",
          "anthropic-ratelimit-output-tokens-reset": at(1_000)
        }
      },
      reset: "42500 millis"
    },
    spentHeaders: {
      // Requests and output tokens spent: the output tokens reset last, 42.5 s after now, and report as tokens.
      spent: (now) => {
        const at = (millis: number) => new Date(now + millis).toISOString()
        return {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(12_000),
          "anthropic-ratelimit-tokens-remaining": "8000",
          "anthropic-ratelimit-tokens-reset": at(60_000),
          "anthropic-ratelimit-input-tokens-remaining": "40000",
          "anthropic-ratelimit-input-tokens-reset": at(60_000),
          "anthropic-ratelimit-output-tokens-remaining": "0",
          "anthropic-ratelimit-output-tokens-reset": at(42_500)
        }
      },
      limit: "tokens",
      resetsIn: "42500 millis",
      left: (now) => {
        const at = (millis: number) => new Date(now + millis).toISOString()
        return {
          "anthropic-ratelimit-requests-remaining": "49",
          "anthropic-ratelimit-requests-reset": at(1_200),
          "anthropic-ratelimit-tokens-remaining": "48000",
          "anthropic-ratelimit-tokens-reset": at(1_000),
          "anthropic-ratelimit-input-tokens-remaining": "40000",
          "anthropic-ratelimit-input-tokens-reset": at(1_000),
          "anthropic-ratelimit-output-tokens-remaining": "8000",
          "anthropic-ratelimit-output-tokens-reset": at(1_000)
        }
      },
      unknown: (now) => {
        const at = (millis: number) => new Date(now + millis).toISOString()
        return {
          "anthropic-ratelimit-requests-remaining": "-1",
          "anthropic-ratelimit-requests-reset": at(1_200),
          "anthropic-ratelimit-tokens-remaining": "-1",
          "anthropic-ratelimit-tokens-reset": at(1_000),
          "anthropic-ratelimit-input-tokens-remaining": "-1",
          "anthropic-ratelimit-input-tokens-reset": at(1_000),
          "anthropic-ratelimit-output-tokens-remaining": "-1",
          "anthropic-ratelimit-output-tokens-reset": at(1_000)
        }
      }
    }
  },
  [
    { name: "UndiciHttpClient.layer", layer: UndiciHttpClient.layer },
    { name: "FetchHttpClient.layer", layer: FetchHttpClient.layer },
    { name: "NodeHttpClient.layerUndici", layer: NodeHttpClient.layerUndici }
  ]
)
