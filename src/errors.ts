/**
 * Errors that carry their meaning: a string code and an HTTP status. The one place
 * that maps any thrown value to the API's error envelope is `toErrorBody`.
 */

export type ErrorCode =
  | "VALIDATION_ERROR"
  | "QUERY_SYNTAX"
  | "QUERY_FIELD"
  | "UNAUTHORIZED"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "OPERATION_NOT_FOUND"
  | "CHECKPOINT_NOT_FOUND"
  | "OPERATION_FINISHED"
  | "NOT_HOST_OPERATION"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "HOST_UNAVAILABLE"
  | "SLURM_UNREACHABLE"
  | "SLURM_REFUSED"
  | "WORKER_EXITED"
  | "TRAINING_FAILED"
  | "INTERNAL_ERROR";

const STATUS: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  // A search query (src/schemas/search.ts) that does not parse, or names a field there is none of; details.position.
  QUERY_SYNTAX: 400,
  QUERY_FIELD: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  OPERATION_NOT_FOUND: 404,
  CHECKPOINT_NOT_FOUND: 404,
  OPERATION_FINISHED: 409,
  NOT_HOST_OPERATION: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HOST_UNAVAILABLE: 503,
  // slurmrestd did not answer in time / answered with Slurm's error (a bad partition, an expired token).
  SLURM_UNREACHABLE: 503,
  SLURM_REFUSED: 502,
  WORKER_EXITED: 500,
  TRAINING_FAILED: 500,
  INTERNAL_ERROR: 500,
};

export class TrainwatchError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> | null = null,
  ) {
    super(message);
    this.name = "TrainwatchError";
    this.status = STATUS[code];
  }
}

export const notFound = (operationId: string) =>
  new TrainwatchError("OPERATION_NOT_FOUND", `operation ${operationId} not found`, { operation_id: operationId });

export const invalid = (field: string, message: string, details: Record<string, unknown> = {}) =>
  new TrainwatchError("VALIDATION_ERROR", `${field}: ${message}`, { field, ...details });

/**
 * A start refused for a reason outside the program (a port in use, a database another process holds, a bad recipe
 * file); the message is the one line the entry point prints (src/startup.ts). Here, not in startup.ts, so the store
 * and the script runner can throw it without importing the entry points' HTTP plumbing.
 */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; details: Record<string, unknown> | null };
}

export function errorBody(code: string, message: string, details: Record<string, unknown> | null = null): ErrorBody {
  return { success: false, error: { code, message, details } };
}
