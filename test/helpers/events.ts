/** A task event of `GET /api/v1/events`. */
export interface TaskEvent {
  task_id: string;
  status: string;
  ready: boolean;
}

/**
 * Follows an event stream: collects its task events until `stop()`, which resolves once the stream
 * is closed. Rejects at once when the stream does not open with 200 and text/event-stream.
 */
export async function followEvents(url: string): Promise<{ events: TaskEvent[]; stop(): Promise<void> }> {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  if (res.status !== 200 || !/text\/event-stream/.test(res.headers.get("content-type") ?? "")) {
    throw new Error(`event stream refused: HTTP ${res.status} ${await res.text()}`);
  }
  const events: TaskEvent[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      for (const m of buffered.matchAll(/^data: (.*)$/gm)) events.push(JSON.parse(m[1]!));
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
    }
  })().catch(() => undefined);
  return {
    events,
    stop: async () => {
      abort.abort();
      await reading;
    },
  };
}
