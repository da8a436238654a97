/**
 * The store's typed errors. The API server maps them to Kubernetes `Status` codes:
 * KeyExists -> 409 AlreadyExists, NotFound -> 404, Conflict -> 409 Conflict,
 * TooOld/Expired -> 410 Gone, TooLarge -> 504 Timeout, Unavailable -> 503.
 */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';
  constructor(message?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** `create` of a key that exists. */
export class KeyExistsError extends StoreError {
  override readonly name = 'KeyExistsError';
  constructor(readonly key: string, readonly revision: number) {
    super(`key ${key} already exists (revision ${revision})`);
  }
}

/** A read, update or delete of a key that does not exist. */
export class NotFoundError extends StoreError {
  override readonly name = 'NotFoundError';
  constructor(readonly key: string) {
    super(`key ${key} not found`);
  }
}

/** An update or delete whose expected revision (or precondition) does not match the stored one. */
export class ConflictError extends StoreError {
  override readonly name = 'ConflictError';
  constructor(
    readonly key: string,
    readonly expected: number | undefined,
    readonly actual: number,
    detail?: string,
  ) {
    super(detail ?? `key ${key} is at revision ${actual}, not the expected ${expected}`);
  }
}

/** A watch or list from a revision older than the retained history: the client must relist. */
export class TooOldError extends StoreError {
  override readonly name = 'TooOldError';
  constructor(readonly requested: number, readonly oldest: number) {
    super(`too old resource version: ${requested} (${oldest})`);
  }
}

/** A continue token whose snapshot is no longer retained: the client must restart the list. */
export class ExpiredError extends StoreError {
  override readonly name = 'ExpiredError';
  constructor(readonly revision: number) {
    super(`the provided continue parameter is too old to display a consistent list result (snapshot at ${revision} is gone); start a new list`);
  }
}

/** A read that asked for a revision the store did not reach in time. */
export class TooLargeRevisionError extends StoreError {
  override readonly name = 'TooLargeRevisionError';
  constructor(readonly requested: number, readonly current: number) {
    super(`Too large resource version: ${requested}, current: ${current}`);
  }
}

/** The backing NATS cluster cannot be reached, or the store is stopping. */
export class StoreUnavailableError extends StoreError {
  override readonly name = 'StoreUnavailableError';
}

/** A continue token that is not one the store issued. */
export class InvalidContinueError extends StoreError {
  override readonly name = 'InvalidContinueError';
  constructor() {
    super('the continue token is not valid');
  }
}
