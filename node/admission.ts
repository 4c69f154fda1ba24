/**
 * Admission of jobs before their bodies are read. A job first gets a ticket
 * (a place among the admitted jobs, within the client's share and within the
 * bytes admitted bodies may hold) or an immediate 503/429; only then is its
 * body read. It runs when its turn comes: at most `running` at once, and
 * when a slot frees, the waiting client with the fewest jobs running goes
 * next. A job whose client leaves while waiting gives its place up and never
 * runs.
 * @module
 */

/** Limits for {@link JobAdmission}. */
export interface AdmissionLimits {
  /** Jobs run at once (normally the sandbox processes). */
  running: number;
  /** Jobs admitted at once, running or waiting. */
  admitted: number;
  /** Jobs one client (address) may have admitted at once. */
  perClient: number;
  /** Body bytes all admitted jobs may hold together. */
  bodyBytes: number;
  /**
   * Body bytes one client's admitted jobs may hold together (default the
   * whole budget). At least the largest single body, or that body is never
   * admitted.
   */
  perClientBytes?: number;
}

/** A job that was not admitted; `status` is 503 (full) or 429 (client's share used). */
export class AdmissionRefused extends Error {
  /** Creates the error. */
  constructor(readonly status: 429 | 503, message: string) {
    super(message);
    this.name = "AdmissionRefused";
  }
}

/** An admitted job's place. Release it when the job is done or abandoned. */
export interface AdmissionTicket extends Disposable {
  /** Shrinks the bytes reserved for the body to what it turned out to be. */
  resize(bodyBytes: number): void;
  /**
   * Reserves more, up to `bodyBytes` in all, as a body arrives; throws
   * {@link AdmissionRefused} when the budget (or the client's share of it)
   * has no room, so a body holds only what it has actually sent.
   */
  grow(bodyBytes: number): void;
  /** Waits for a running slot; rejects with the signal's reason if it aborts first. */
  turn(signal?: AbortSignal): Promise<void>;
  /** Gives the place (and the running slot, if any) back; safe to repeat. */
  release(): void;
}

interface Waiter {
  client: string;
  grant: () => void;
}

/** Admits jobs; see the module notes. */
export class JobAdmission {
  /** The limits it admits by. */
  readonly limits: AdmissionLimits;
  #admitted = 0;
  #running = 0;
  #bytes = 0;
  /** Admitted and running jobs per client. */
  #clients = new Map<
    string,
    { admitted: number; running: number; bytes: number }
  >();
  #waiting: Waiter[] = [];

  /** Creates an admission with these limits. */
  constructor(limits: AdmissionLimits) {
    this.limits = limits;
  }

  /** Counts for monitoring. */
  get stats(): { admitted: number; running: number; waiting: number } {
    return {
      admitted: this.#admitted,
      running: this.#running,
      waiting: this.#waiting.length,
    };
  }

  /**
   * Admits a job from `client`, reserving `bodyBytes` (grown as the body
   * arrives) and refusing one whose `announced` size does not fit now; or
   * throws {@link AdmissionRefused}.
   */
  admit(
    client: string,
    bodyBytes: number,
    announced: number = bodyBytes,
  ): AdmissionTicket {
    const counts = this.#clients.get(client) ??
      { admitted: 0, running: 0, bytes: 0 };
    // A body announced larger than what is free could never be read whole:
    // refused now, though only `bodyBytes` is reserved until it arrives.
    if (
      this.#admitted >= this.limits.admitted ||
      this.#bytes + Math.max(bodyBytes, announced) > this.limits.bodyBytes
    ) {
      throw new AdmissionRefused(
        503,
        this.#admitted >= this.limits.admitted
          ? `the job queue is full (${this.#admitted} jobs admitted); retry shortly`
          : `job bodies already hold ${this.#bytes} bytes of ${this.limits.bodyBytes}; retry shortly`,
      );
    }
    if (counts.admitted >= this.limits.perClient) {
      throw new AdmissionRefused(
        429,
        `this client already has ${counts.admitted} jobs admitted; at most ${this.limits.perClient}`,
      );
    }
    const clientBytes = this.limits.perClientBytes ?? this.limits.bodyBytes;
    if (counts.bytes + Math.max(bodyBytes, announced) > clientBytes) {
      throw new AdmissionRefused(
        429,
        `this client's admitted jobs already hold ${counts.bytes} body bytes; at most ${clientBytes}`,
      );
    }
    counts.admitted++;
    counts.bytes += bodyBytes;
    this.#clients.set(client, counts);
    this.#admitted++;
    this.#bytes += bodyBytes;
    let reserved = bodyBytes;
    let running = false;
    let released = false;
    /** Gives up a turn still waited for (set while waiting). */
    let stopWaiting: (() => void) | null = null;
    const release = () => {
      if (released) return;
      released = true;
      stopWaiting?.();
      this.#admitted--;
      this.#bytes -= reserved;
      counts.bytes -= reserved;
      counts.admitted--;
      if (running) {
        this.#running--;
        counts.running--;
      }
      if (counts.admitted === 0) this.#clients.delete(client);
      this.#next();
    };
    return {
      grow: (bytes) => {
        const more = bytes - reserved;
        if (more <= 0) return;
        if (this.#bytes + more > this.limits.bodyBytes) {
          throw new AdmissionRefused(
            503,
            `job bodies already hold ${this.#bytes} bytes of ${this.limits.bodyBytes}; retry shortly`,
          );
        }
        if (counts.bytes + more > clientBytes) {
          throw new AdmissionRefused(
            429,
            `this client's job bodies already hold ${counts.bytes} bytes; at most ${clientBytes}`,
          );
        }
        this.#bytes += more;
        counts.bytes += more;
        reserved = bytes;
      },
      resize: (bytes) => {
        const next = Math.min(bytes, reserved);
        this.#bytes -= reserved - next;
        counts.bytes -= reserved - next;
        reserved = next;
      },
      turn: (signal) => {
        if (released) return Promise.reject(new Error("ticket released"));
        const grant = () => {
          running = true;
          this.#running++;
          counts.running++;
        };
        if (this.#running < this.limits.running && this.#waiting.length === 0) {
          grant();
          return Promise.resolve();
        }
        return new Promise<void>((resolve, reject) => {
          const waiter: Waiter = {
            client,
            grant: () => {
              stopWaiting = null;
              signal?.removeEventListener("abort", onAbort);
              grant();
              resolve();
            },
          };
          const abandon = (reason: unknown) => {
            stopWaiting = null;
            signal?.removeEventListener("abort", onAbort);
            this.#waiting = this.#waiting.filter((w) => w !== waiter);
            reject(reason);
          };
          const onAbort = () => abandon(signal!.reason);
          // Released while waiting: the turn is given up, never granted.
          stopWaiting = () => abandon(new Error("ticket released"));
          if (signal?.aborted) return onAbort();
          signal?.addEventListener("abort", onAbort, { once: true });
          this.#waiting.push(waiter);
        });
      },
      release,
      [Symbol.dispose]: release,
    };
  }

  /** Grants free running slots to the waiting clients with the fewest jobs running. */
  #next(): void {
    while (this.#running < this.limits.running && this.#waiting.length > 0) {
      let best = 0;
      const runningOf = (w: Waiter) =>
        this.#clients.get(w.client)?.running ?? 0;
      for (let i = 1; i < this.#waiting.length; i++) {
        if (runningOf(this.#waiting[i]) < runningOf(this.#waiting[best])) {
          best = i;
        }
      }
      const [waiter] = this.#waiting.splice(best, 1);
      waiter.grant();
    }
  }
}
