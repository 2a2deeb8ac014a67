import type { ClientMessage, ServerMessage } from "./types";

/** The server closes the socket (1009) on a frame over 64 KiB, so we refuse to send one. */
export const MAX_FRAME_BYTES = 64 * 1024;

export class FrameTooLargeError extends Error {
  constructor(readonly bytes: number) {
    super(`Message too large to send (${bytes} bytes; the limit is ${MAX_FRAME_BYTES}).`);
    this.name = "FrameTooLargeError";
  }
}

const encoder = new TextEncoder();

/** One client message as one text frame. */
export function encodeFrame(message: ClientMessage): string {
  const text = JSON.stringify(message);
  const bytes = encoder.encode(text).length;
  if (bytes > MAX_FRAME_BYTES) throw new FrameTooLargeError(bytes);
  return text;
}

type Check = (value: unknown) => boolean;
const isString: Check = (v) => typeof v === "string";
const isNumber: Check = (v) => typeof v === "number" && Number.isFinite(v);
const isOptString: Check = (v) => v === undefined || v === null || typeof v === "string";
const isOptBoolean: Check = (v) => v === undefined || typeof v === "boolean";
const isObject: Check = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

// Field checks per known server type (only fields the type declares: a typo does not compile).
// Unknown types and extra fields are allowed by the protocol (additions only), so they are
// tolerated, but a known type with a missing or mistyped field is dropped rather than allowed
// to corrupt client state.
type FieldChecks = {
  [T in ServerMessage["type"]]: Partial<Record<keyof Extract<ServerMessage, { type: T }>, Check>>;
};
const SCHEMA: FieldChecks = {
  "chat.accepted": {
    request_id: isString,
    conversation_id: isString,
    user_message: (v) => isObject(v) && isString((v as { id: unknown }).id),
    generation_id: isString,
    assistant_message_id: isString,
  },
  "generation.queued": { generation_id: isString, position: isNumber },
  "generation.delta": {
    generation_id: isString,
    seq: (v) => Number.isInteger(v) && (v as number) >= 1,
    text: isString,
  },
  "generation.progress": { generation_id: isString, seq: (v) => Number.isInteger(v) && (v as number) >= 0 },
  "generation.done": { generation_id: isString, finish_reason: isString, text: isString, model: isOptString },
  "generation.error": { generation_id: isString, code: isString, text: isString },
  "moderation.blocked": { request_id: isOptString, generation_id: isOptString, message: isString },
  "conversation.updated": { conversation_id: isString, title: isString, archived: isOptBoolean, deleted: isOptBoolean },
  error: { code: isString, message: isString, request_id: isOptString },
  pong: {},
};

/**
 * Parse one text frame from the server. Returns null for anything that is not a well-formed
 * message of a type this client understands.
 */
export function decodeFrame(data: unknown): ServerMessage | null {
  if (typeof data !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  const record = value as Record<string, unknown>;
  const type = record.type;
  if (typeof type !== "string" || !Object.hasOwn(SCHEMA, type)) return null;
  const fields = SCHEMA[type as ServerMessage["type"]];
  for (const [name, check] of Object.entries(fields) as [string, Check][]) {
    if (!check(record[name])) return null;
  }
  return value as ServerMessage;
}
