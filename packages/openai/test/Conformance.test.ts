/**
 * The provider conformance suite (`@ironlabsai/testing/Conformance`) for
 * the OpenAI wire, over every `HttpClient` the docs say works: the lean
 * `UndiciHttpClient`, the platform's `FetchHttpClient` and
 * `NodeHttpClient.layerUndici`. What is OpenAI's own (request and response
 * mapping, the body passed through, the chunks) is tested in the other files.
 * The golden fixtures in `golden/` pin down whole exchanges of the OpenAI wire,
 * both ways, streamed and not.
 */
import { FetchHttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { layer } from "@effect/vitest"
import { UndiciHttpClient } from "@ironlabsai/http"
import * as Conformance from "@ironlabsai/testing/Conformance"
import { OpenAiProvider } from "../src/index.js"

Conformance.run(
  layer,
  {
    name: "OpenAiProvider",
    make: OpenAiProvider.make,
    baseUrlOf: (simulator) => simulator.openaiBaseUrl,
    routedModel: "openai/gpt-4o",
    wireModel: "gpt-4o",
    golden: Conformance.readGolden(new URL("golden/", import.meta.url)),
    rateLimitHeaders: {
      // The requests limit is the one spent: its reset, 90.5 s, not the tokens' 6 min.
      at: () => ({
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30.5s",
        "x-ratelimit-remaining-tokens": "12000",
        "x-ratelimit-reset-tokens": "6m0s"
      }),
      reset: "90500 millis"
    },
    spentHeaders: {
      // Both limits spent: the requests limit resets last, 90.5 s from now, the tokens' in 6 ms.
      spent: () => ({
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30.5s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6ms"
      }),
      limit: "requests",
      resetsIn: "90500 millis",
      left: () => ({
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "6ms"
      }),
      unknown: () => ({
        "x-ratelimit-remaining-requests": "-1",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "-1",
        "x-ratelimit-reset-tokens": "6ms"
      })
    }
  },
  [
    { name: "UndiciHttpClient.layer", layer: UndiciHttpClient.layer },
    { name: "FetchHttpClient.layer", layer: FetchHttpClient.layer },
    { name: "NodeHttpClient.layerUndici", layer: NodeHttpClient.layerUndici }
  ]
)
