/**
 * Polls `probe` until `pred` holds for its value, and returns that value. Fails after `timeoutMs`
 * naming `what` and the last value seen, which is what explains a failure.
 */
export async function until<T>(
  probe: () => Promise<T> | T,
  pred: (v: T) => boolean,
  timeoutMs = 10_000,
  what = "condition",
  everyMs = 150,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!pred(last)) {
    if (Date.now() > deadline) throw new Error(`${what} not met in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await probe();
  }
  return last;
}
