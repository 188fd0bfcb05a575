/** A non-2xx reply of a batu agent, with the reason it gave. */
export class HostApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = "HostApiError";
  }
}

/** The agent could not be reached at all (refused, timed out, DNS). */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach ${url}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = "UnreachableError";
  }
}

export interface RequestOptions {
  method?: "GET" | "POST";
  token?: string | undefined;
  body?: unknown;
  timeoutMs?: number;
}

/** One JSON request; resolves with the parsed 2xx body, rejects with HostApiError or UnreachableError. */
export async function requestJson<T>(url: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(url, {
      method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (e) {
    throw new UnreachableError(url, e);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // A non-JSON reply is reported through its status below.
  }
  if (!res.ok) {
    const message = (parsed as { message?: unknown } | undefined)?.message;
    throw new HostApiError(res.status, typeof message === "string" ? message : `HTTP ${res.status}`, parsed);
  }
  return parsed as T;
}
