/**
 * The simulator in its own process, so the benchmark process measures only the
 * client side. Prints its URL as one JSON line, then serves until killed.
 * Models: `fast` answers at once, `slow` after SLOW_MS, `hang` never, `fail`
 * answers 500, `stamp` answers at once with the `process.hrtime` (ns) at which
 * its request arrived: the clock is system-wide, so the client can compare. Records are cleared as it goes, so memory stays flat.
 */
import { Simulator } from "@ironlabsai/testing"

const slowMs = Number(process.env.SLOW_MS ?? 5000)
let served = 0
const sim = await Simulator.start({
  handler: (request) => {
    if (++served % 2000 === 0) setImmediate(() => sim.reset())
    switch (request.model) {
      case "slow":
        return { latency: slowMs }
      case "hang":
        return { hang: true }
      case "fail":
        return { status: 500 }
      case "stamp":
        return { content: String(process.hrtime.bigint()) }
      default:
        return { content: "Waves fold on the shore." }
    }
  }
})
process.stdout.write(`${JSON.stringify({ url: sim.url, openai: sim.openaiBaseUrl })}\n`)
process.on("SIGTERM", () => void sim.close().then(() => process.exit(0)))
