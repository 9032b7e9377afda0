// One catalog of error codes (fastify-style). Every error a user can hit carries a stable code,
// says what was wrong, where, and what to do.

export const ERROR_CODES = {
  MESH_ERR_USAGE: { exitCode: 2 },
  MESH_ERR_INVALID_CONFIG: { exitCode: 1 },
  MESH_ERR_FILE: { exitCode: 1 },
  MESH_ERR_NOT_FOUND: { exitCode: 1 },
  MESH_ERR_UNAVAILABLE: { exitCode: 1 },
  MESH_ERR_PORT_IN_USE: { exitCode: 1 },
  MESH_ERR_PERMISSION: { exitCode: 1 },
  MESH_ERR_INTERNAL: { exitCode: 70 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class RigError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RigError';
    this.code = code;
    this.exitCode = ERROR_CODES[code].exitCode;
  }
}
