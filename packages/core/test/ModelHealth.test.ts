import { ModelHealth } from "@ironlabsai/core"
import { Effect } from "effect"
import { modelHealthSuite } from "./modelHealthSuite.js"

modelHealthSuite("ModelHealth in memory", (settings) => Effect.sync(() => ModelHealth.unsafeMakeMemory(settings)))
