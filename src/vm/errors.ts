/** Refusals the faces map onto their own errors. */
export class VmNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`vm ${id} not exist`);
    this.name = "VmNotFoundError";
  }
}
export class VmConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VmConflictError";
  }
}
export class VmResourceError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "VmResourceError";
  }
}

