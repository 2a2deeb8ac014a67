// The websocket wire format, version 1 (docs/protocol.md). Mirrors chat/protocol.py; the
// server may add optional fields and new message types, so decoding ignores what it does not know.
// Checked against the server's JSON Schema by `.venv/bin/pytest tests/frontend_contract` (in CI):
// every message, field, optionality and type must agree with chat/protocol.py.

export interface SendOptions {
  temperature?: number;
  max_tokens?: number;
  system_prompt?: string;
}

export interface ChatSend {
  type: "chat.send";
  request_id: string;
  conversation_id: string | null;
  parent_id?: string | null;
  content: string;
  model?: string;
  options?: SendOptions;
}

export interface GenerationStop {
  type: "generation.stop";
  generation_id: string;
}

export interface GenerationRegenerate {
  type: "generation.regenerate";
  message_id: string;
  request_id?: string;
  /** Absent: the conversation's model; "auto": the server's router chooses. */
  model?: string;
}

export interface GenerationSubscribe {
  type: "generation.subscribe";
  generation_id: string;
  after_seq: number;
}

export interface Ping {
  type: "ping";
}

export type ClientMessage =
  | ChatSend
  | GenerationStop
  | GenerationRegenerate
  | GenerationSubscribe
  | Ping;

export interface UserMessageInfo {
  id: string;
  parent_id: string | null;
  content: string;
  created_at: string;
}

export interface ChatAccepted {
  type: "chat.accepted";
  request_id: string;
  conversation_id: string;
  user_message: UserMessageInfo;
  generation_id: string;
  assistant_message_id: string;
}

export interface GenerationQueued {
  type: "generation.queued";
  generation_id: string;
  position: number;
}

export interface GenerationDelta {
  type: "generation.delta";
  generation_id: string;
  seq: number;
  text: string;
}

/** A running generation's heartbeat: sent after a couple of quiet seconds, with the last seq. */
export interface GenerationProgress {
  type: "generation.progress";
  generation_id: string;
  seq: number;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

export type FinishReason = "stop" | "length" | "stopped" | "moderated";

export interface GenerationDone {
  type: "generation.done";
  generation_id: string;
  finish_reason: FinishReason;
  text: string;
  usage: Usage;
  /** The model that wrote the answer (the router's choice for "auto"). */
  model?: string | null;
  /** True when the response cache answered; absent from older servers. */
  cached?: boolean;
  /** The model version that wrote the answer; null for a model without versions. */
  model_version?: string | null;
}

export type GenerationErrorCode = "interrupted" | "engine_error" | "timeout";

export interface GenerationError {
  type: "generation.error";
  generation_id: string;
  code: GenerationErrorCode;
  message: string;
  text: string;
}

export interface ModerationBlocked {
  type: "moderation.blocked";
  request_id?: string | null;
  generation_id?: string | null;
  categories: string[];
  message: string;
}

/**
 * A conversation changed (created, titled, renamed, archived or unarchived, deleted); sent to
 * every connection of its owner with the conversation's state after the change. Servers before
 * `archived`/`deleted` leave them out: absent means false.
 */
export interface ConversationUpdated {
  type: "conversation.updated";
  conversation_id: string;
  title: string;
  archived?: boolean;
  deleted?: boolean;
}

export type ErrorCode =
  | "bad_request"
  | "not_found"
  | "rate_limited"
  | "quota_exceeded"
  | "too_large"
  | "busy"
  | "forbidden";

export interface ServerError {
  type: "error";
  request_id?: string | null;
  code: ErrorCode | string;
  message: string;
  retry_after?: number | null;
}

export interface Pong {
  type: "pong";
}

export type ServerMessage =
  | ChatAccepted
  | GenerationQueued
  | GenerationDelta
  | GenerationProgress
  | GenerationDone
  | GenerationError
  | ModerationBlocked
  | ConversationUpdated
  | ServerError
  | Pong;

/** Websocket close codes with a meaning in this protocol. */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN_ORIGIN = 4403;
export const CLOSE_TOO_LARGE = 1009;
