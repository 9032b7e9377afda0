// The structural schema of Rigging's own `local.rigging.dev/v1alpha1` Workload kind (see
// ../types/workload.ts). Rigging defines this kind, so its schema is written here.

const port = { type: 'integer', minimum: 1, maximum: 65535 };
const seconds = { type: 'integer', minimum: 0 };

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
    readinessProbe: {
      type: 'object',
      additionalProperties: false,
      properties: {
        httpGet: { type: 'object', additionalProperties: false, required: ['path', 'port'], properties: { path: { type: 'string' }, port } },
        tcpSocket: { type: 'object', additionalProperties: false, required: ['port'], properties: { port } },
        initialDelaySeconds: seconds,
        periodSeconds: { type: 'integer', minimum: 1 },
        timeoutSeconds: { type: 'integer', minimum: 1 },
        failureThreshold: { type: 'integer', minimum: 1 },
      },
    },
  },
} as const;
