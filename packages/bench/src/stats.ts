/** Percentiles and formatting for the benchmark's tables. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export const median = (values: ReadonlyArray<number>) => percentile(values, 50)

export const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-")

/** Runs `task` with `concurrency` workers for `millis`, returning throughput and per-request latencies. */
export const load = async (
  task: () => Promise<unknown>,
  concurrency: number,
  millis: number
): Promise<{ readonly perSecond: number; readonly latencies: ReadonlyArray<number> }> => {
  const latencies: Array<number> = []
  const end = performance.now() + millis
  const start = performance.now()
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      await task()
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { perSecond: (latencies.length / (performance.now() - start)) * 1000, latencies }
}
