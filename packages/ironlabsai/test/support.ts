/**
 * What several test files build the same way: the Effect client over a
 * loopback simulator, with keys and base URLs from `Config` as a program
 * reads them from env.
 */
import { NodeHttpClient } from "@effect/platform-node"
import type { Simulator } from "@ironlabsai/testing"
import { IronlabsClient, type IronlabsClientOptions } from "ironlabsai"
import { ConfigProvider, Layer } from "effect"

/** `IronlabsClient.layer` over `sim`, as DESIGN §2 builds it. */
export const clientLayer = (sim: Simulator.Simulator, reliability: IronlabsClientOptions["reliability"]) =>
  IronlabsClient.layer({ reliability }).pipe(
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provide(
      Layer.setConfigProvider(
        ConfigProvider.fromMap(
          new Map([
            ["OPENAI_API_KEY", "sk-openai-test"],
            ["OPENAI_BASE_URL", sim.openaiBaseUrl],
            ["ANTHROPIC_API_KEY", "sk-ant-test"],
            ["ANTHROPIC_BASE_URL", sim.anthropicBaseUrl]
          ])
        )
      )
    )
  )
