/** A usage or input error from the command line; exit status 2. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure the user can act on; printed as one line, exit status 1. */
export class CliError extends Error {
  /** Creates the error with the exit status to use. */
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}
