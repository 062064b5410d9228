/**
 * How busy and how fast one model is, for the routing strategies (DESIGN §9):
 * calls in flight, a peak-EWMA of its time to first token, and its recent
 * samples for a percentile. Plain numbers, read and written synchronously.
 */

/** The latency of a model nothing has been learnt about yet: never 0, so that in-flight calls still count. */
export const priorMillis = 500

/** How fast the EWMA forgets: a sample's weight halves in about 7 s, and an idle model's cost decays as fast. */
export const decayMillis = 10_000

/** How many recent samples a percentile is taken over. */
const sampleCount = 128

/** @internal */
export class ModelLoad {
  inFlight = 0
  /** The prior counts as a sample taken when the model was first seen: it decays like any other. */
  private ewma = priorMillis
  private at: number
  private readonly samples: Array<number> = []
  private next = 0

  constructor(now: number) {
    this.at = now
  }

  /**
   * The peak-EWMA at `now`: a sample above it replaces it at once (peak),
   * one below it is blended in; and it decays towards 0 while no sample
   * arrives, so a model that was slow once, or never tried, is tried in time
   * rather than starved.
   */
  latency(now: number): number {
    return this.ewma * Math.exp(-Math.max(0, now - this.at) / decayMillis)
  }

  observe(millis: number, now: number): void {
    const current = this.latency(now)
    const weight = Math.exp(-Math.max(0, now - this.at) / decayMillis)
    this.ewma = millis > current ? millis : current * weight + millis * (1 - weight)
    this.at = now
    if (this.samples.length < sampleCount) this.samples.push(millis)
    else this.samples[this.next] = millis
    this.next = (this.next + 1) % sampleCount
  }

  /** The `p`-th percentile (0-1) of the recent samples; `undefined` with fewer than 10. */
  percentile(p: number): number | undefined {
    if (this.samples.length < 10) return undefined
    const sorted = [...this.samples].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
  }
}
