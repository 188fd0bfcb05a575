import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from "fastify";

declare module "fastify" {
  interface FastifyContextConfig {
    /** A routine, frequent call (heartbeats): logged at debug while it succeeds. */
    quietLog?: boolean;
  }
}

/**
 * One log line per request, when it completes, in place of fastify's two: method, path, status and
 * time. The path is logged without its query, which may carry signatures (the event stream's
 * identity). Routine calls that succeed go to debug, so 500 members beating every 3 s do not fill
 * the master's disk; failures are always logged. Fastify's other log lines are kept.
 *
 * The line goes to `access` (accessLoggerOf the app's logger: buffered, see docs/logging.md), bound
 * to the request's id as req.log is; without one, to req.log.
 */
export class RequestLog extends LogController {
  constructor(private readonly access?: FastifyBaseLogger) {
    super();
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    const level = error || status >= 500 ? "error" : status < 400 && req.routeOptions.config?.quietLog ? "debug" : "info";
    const fields = {
      req: { method: req.method, url: req.url.split("?")[0] },
      remote: req.ip,
      res: { statusCode: status },
      responseTime: reply.elapsedTime,
      ...(error ? { err: error } : {}),
    };
    if (this.access) this.access[level]({ [this.requestIdLogLabel]: req.id, ...fields }, "request completed");
    else req.log[level](fields, "request completed");
  }
}
