/**
 * The refusals of the image transfer core, each with the HTTP status it becomes. `statusCode` lets
 * Fastify's error handling (and the host API's fallback in server/errors.ts) turn one into a reply
 * with no table of its own.
 */
export const ImageErrorCodes = {
  bad_name: 400,
  bad_request: 400,
  hash_mismatch: 400,
  not_found: 404,
  conflict: 409,
  busy: 409,
  range_not_satisfiable: 416,
  source_failed: 502,
  storage_failed: 507,
  aborted: 499,
} as const;
export type ImageErrorCode = keyof typeof ImageErrorCodes;

export class ImageTransferError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ImageTransferError";
  }

  get statusCode(): number {
    return ImageErrorCodes[this.code];
  }
}
