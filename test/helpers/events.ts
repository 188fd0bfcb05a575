/** A task event of `GET /api/v1/events`. */
export interface TaskEvent {
  task_id: string;
  status: string;
  ready: boolean;
}

/** An operation event of `GET /api/v1/events`: a long operation's progress, and its end. */
export interface OperationEvent {
  operation_id: string;
  task_id: string;
  action: string;
  state: "running" | "done" | "failed";
  progress: string | null;
  error: string | null;
}

/** An image event of `GET /api/v1/events`: a transfer of the node's images, each whole percent and its end. */
export interface ImageEvent {
  image_filename: string;
  direction: "download" | "upload";
  image_server: string;
  status: string;
  progress: string;
  error: string | null;
}

/**
 * Follows an event stream: collects its task, operation and image events until `stop()`, which
 * resolves once the stream is closed. Rejects at once when the stream does not open with 200 and
 * text/event-stream.
 */
export async function followEvents(url: string): Promise<{ events: TaskEvent[]; operations: OperationEvent[]; images: ImageEvent[]; stop(): Promise<void> }> {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  if (res.status !== 200 || !/text\/event-stream/.test(res.headers.get("content-type") ?? "")) {
    throw new Error(`event stream refused: HTTP ${res.status} ${await res.text()}`);
  }
  const events: TaskEvent[] = [];
  const operations: OperationEvent[] = [];
  const images: ImageEvent[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      // An event ends with a blank line: `event: <type>` then `data: <json>`.
      const blocks = buffered.split("\n\n");
      buffered = blocks.pop()!;
      for (const block of blocks) {
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        if (type === "operation") operations.push(JSON.parse(data) as OperationEvent);
        else if (type === "image") images.push(JSON.parse(data) as ImageEvent);
        else events.push(JSON.parse(data) as TaskEvent);
      }
    }
  })().catch(() => undefined);
  return {
    events,
    operations,
    images,
    stop: async () => {
      abort.abort();
      await reading;
    },
  };
}
