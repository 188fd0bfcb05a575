/**
 * Server-sent events read with fetch() and a stream reader: a browser's EventSource cannot send an
 * Authorization header, and the operator's stream needs one. Calls `onEvent` for each event until
 * `signal` aborts or the stream ends; resolves then, rejects when the stream is refused.
 */
export async function readEvents(
  url: string,
  init: RequestInit,
  onEvent: (type: string, data: unknown) => void,
): Promise<void> {
  const res = await fetch(url, init);
  if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffered += value;
    // An event ends with a blank line; lines starting with ':' are comments (keep-alives).
    const blocks = buffered.split("\n\n");
    buffered = blocks.pop() ?? "";
    for (const block of blocks) {
      let type = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(type, JSON.parse(data));
    }
  }
}
