/** A size in bytes as GiB, one decimal (as the CLI prints them). */
export const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
