/**
 * `grpc.health.v1.Health` without a proto loader: the two messages have one field each, so they are
 * encoded and decoded here, and importing `kubegrace/grpc` loads neither protobufjs nor the peer.
 */

/** `HealthCheckResponse.ServingStatus`. */
export const SERVING_STATUS = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;
export type ServingStatusCode = (typeof SERVING_STATUS)[keyof typeof SERVING_STATUS];

/** The `service` field (1) of a `HealthCheckRequest`; unknown fields are skipped. */
export function decodeHealthRequest(bytes: Uint8Array): { service: string } {
  let offset = 0;
  let service = '';
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[offset++];
      if (byte === undefined) throw new Error('truncated varint');
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
      shift += 7;
    }
  };
  while (offset < bytes.length) {
    const tag = varint();
    const wireType = tag & 7;
    if (wireType === 0) varint();
    else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else if (wireType === 2) {
      const length = varint();
      if (tag >>> 3 === 1) service = Buffer.from(bytes.subarray(offset, offset + length)).toString('utf8');
      offset += length;
    } else throw new Error(`unsupported wire type ${wireType}`);
  }
  return { service };
}

/** A `HealthCheckResponse`: field 1, a varint; proto3 leaves the default (0) out. */
export function encodeHealthResponse(status: ServingStatusCode): Buffer {
  return status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status]);
}

const method = (name: string, responseStream: boolean) => ({
  path: `/grpc.health.v1.Health/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: (value: { service?: string }): Buffer => {
    const service = Buffer.from(value.service ?? '', 'utf8');
    if (service.length === 0) return Buffer.alloc(0);
    if (service.length > 127) throw new Error('service names over 127 bytes are not supported here');
    return Buffer.concat([Buffer.from([0x0a, service.length]), service]);
  },
  requestDeserialize: decodeHealthRequest,
  responseSerialize: (value: { status: ServingStatusCode }): Buffer => encodeHealthResponse(value.status),
  responseDeserialize: (bytes: Buffer): { status: ServingStatusCode } => ({
    status: (bytes.length >= 2 && bytes[0] === 0x08 ? bytes[1] : 0) as ServingStatusCode,
  }),
  originalName: name.charAt(0).toLowerCase() + name.slice(1),
});

/** The service definition grpc-js's `server.addService()` and `makeGenericClientConstructor()` take. */
export const healthServiceDefinition = {
  Check: method('Check', false),
  Watch: method('Watch', true),
} as const;
