// The structural schema of Rigging's own `local.rigging.dev/v1alpha1` Workload kind (see
// ../types/workload.ts). Rigging defines this kind, so its schema is written here.

const port = { type: 'integer', minimum: 1, maximum: 65535 };
const seconds = { type: 'integer', minimum: 0 };
/** A port number, or the name of one of the workload's ports (checked in validation). */
const portOrName = { type: ['integer', 'string'], minimum: 1, maximum: 65535, minLength: 1 };

export const WORKLOAD_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    serviceAccount: { type: 'string', minLength: 1 },
    replicas: { type: 'integer', minimum: 1 },
    command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    args: { type: 'array', items: { type: 'string' } },
    env: { type: 'object', additionalProperties: { type: 'string' } },
    cwd: { type: 'string', minLength: 1 },
    ports: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['port'],
        properties: { name: { type: 'string' }, port, protocol: { type: 'string' } },
      },
    },
    // Kubernetes' Probe, as a readiness probe (terminationGracePeriodSeconds is for liveness probes only).
    readinessProbe: {
      type: 'object',
      additionalProperties: false,
      properties: {
        httpGet: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            path: { type: 'string' },
            port: portOrName,
            host: { type: 'string', minLength: 1 },
            scheme: { enum: ['HTTP', 'HTTPS'] },
            httpHeaders: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name', 'value'], properties: { name: { type: 'string', minLength: 1 }, value: { type: 'string' } } } },
          },
        },
        tcpSocket: { type: 'object', additionalProperties: false, required: ['port'], properties: { port: portOrName, host: { type: 'string', minLength: 1 } } },
        grpc: { type: 'object', additionalProperties: false, required: ['port'], properties: { port, service: { type: 'string' } } },
        exec: { type: 'object', additionalProperties: false, required: ['command'], properties: { command: { type: 'array', minItems: 1, items: { type: 'string' } } } },
        initialDelaySeconds: seconds,
        periodSeconds: { type: 'integer', minimum: 1 },
        timeoutSeconds: { type: 'integer', minimum: 1 },
        successThreshold: { type: 'integer', minimum: 1 },
        failureThreshold: { type: 'integer', minimum: 1 },
      },
    },
  },
} as const;
