// REST calls under /api/ with the session cookie. Django wants the CSRF token on every write;
// it rotates the token at login, so it is read from the cookie at each call, not cached.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string[]> = {},
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let fallbackToken = "";

/** Dispatched on window when the API says the session is gone. */
export const UNAUTHORIZED_EVENT = "chat:unauthorized";

function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : fallbackToken;
}

export async function ensureCsrf(): Promise<void> {
  const data = await api<{ csrf_token?: string }>("GET", "/api/auth/csrf");
  if (data?.csrf_token) fallbackToken = data.csrf_token;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection.");
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    // A session that expired mid-use: the app goes back to the login page.
    if (response.status === 401 && !path.startsWith("/api/auth/")) {
      window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    }
    const error = (data as { error?: { code?: string; message?: string; fields?: Record<string, string[] | string> } } | null)?.error;
    const fields: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(error?.fields ?? {})) {
      fields[name] = Array.isArray(value) ? value : [String(value)];
    }
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? `The server answered ${response.status}.`,
      fields,
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  }
  return data as T;
}

// --- Shapes of the REST resources (docs/protocol.md) -----------------------------------------

export interface User {
  id?: number | string;
  email: string;
  /** `GET /api/auth/me` only: the user's plan, its limits and what is left of them now. */
  plan?: Plan;
}

/** A plan as `GET /api/auth/me` gives it (docs/protocol.md, section 7). 0: no limit. */
export interface Plan {
  name: string;
  description?: string;
  limits: {
    messages_per_minute?: number;
    daily_messages?: number;
    monthly_token_budget?: number;
    concurrent_generations?: number;
    max_output_tokens?: number | null;
    allowed_models?: string[];
    priority?: number;
  };
  /** What is left now; null: no limit, or not readable at the moment. */
  left: {
    messages_this_minute?: number | null;
    messages_today?: number | null;
    tokens_this_month?: number | null;
    concurrent_generations?: number | null;
  };
}

/** The scopes a key for the OpenAI-compatible API (`/v1/`) may hold (docs/api.md). */
export const API_KEY_SCOPES = ["chat", "models", "moderations", "embeddings"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export interface ApiKey {
  id: number;
  name: string;
  /** The key's first characters (`sk-` and 8 more), to tell keys apart. */
  prefix: string;
  scopes: string[];
  store_conversations?: boolean;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  usage?: { generations: number; prompt_tokens: number; completion_tokens: number; cost: number };
}

/** One row of `GET /api/usage`'s `per_key`: what one of the user's keys used in the period. */
export interface KeyUsage {
  key_id: number;
  /** null: the key is not the user's (or no longer exists); only its id is known. */
  name: string | null;
  prefix: string | null;
  revoked: boolean;
  generations: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
}

/** The answer to a key's creation: the only time the whole `key` is sent. */
export interface CreatedApiKey extends ApiKey {
  key: string;
}

export interface NewApiKey {
  name: string;
  scopes: ApiKeyScope[];
  /** null: the key does not expire. */
  expires_in_days: number | null;
}

export interface ConversationSummary {
  id: string;
  title: string;
  model: string | null;
  updated_at: string;
  archived: boolean;
}

export interface Feedback {
  rating: 1 | -1;
  comment?: string;
}

export interface ApiMessage {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: "user" | "assistant" | "system";
  content: string;
  state: string;
  model?: string | null;
  created_at: string;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  feedback?: Feedback | null;
  /** Not in PROTOCOL.md's list but sent by this server; the message id is the fallback. */
  generation_id?: string | null;
  seq?: number | null;
}

export interface Conversation extends ConversationSummary {
  messages: ApiMessage[];
  current_leaf_id: string | null;
  system_prompt?: string | null;
  /** What a turn that names no model asks for: "auto" for a conversation started with Auto. */
  model_choice?: string | null;
  /** Set when the conversation has more messages than one response carries (docs/protocol.md). */
  messages_next_cursor?: string | null;
}

export interface Page<T> {
  results: T[];
  next_cursor: string | null;
}

export interface ModelInfo {
  name: string;
  display_name?: string;
  description?: string;
  context_length?: number;
  max_output_tokens?: number;
  default?: boolean;
}

export interface Registration {
  email: string;
  /** True: the account signs in once the link emailed to the address has been opened. */
  email_verification_required?: boolean;
}

export const auth = {
  me: () => api<User>("GET", "/api/auth/me"),
  login: (email: string, password: string) => api<User>("POST", "/api/auth/login", { email, password }),
  // The same answer for a new and a taken address; what differs goes to the address by email.
  register: (email: string, password: string) =>
    api<Registration>("POST", "/api/auth/register", { email, password }),
  logout: () => api<unknown>("POST", "/api/auth/logout"),
};

export const conversations = {
  list: (params: { cursor?: string | null; q?: string; archived?: boolean }) => {
    const query = new URLSearchParams();
    if (params.cursor) query.set("cursor", params.cursor);
    if (params.q) query.set("q", params.q);
    if (params.archived) query.set("archived", "true");
    const suffix = query.toString();
    return api<Page<ConversationSummary>>("GET", `/api/conversations${suffix ? `?${suffix}` : ""}`);
  },
  /** The conversation with every message: follows `messages_next_cursor` page by page. */
  get: async (id: string) => {
    const path = `/api/conversations/${encodeURIComponent(id)}`;
    const conversation = await api<Conversation>("GET", path);
    let cursor = conversation.messages_next_cursor;
    while (cursor) {
      const page = await api<Conversation>("GET", `${path}?cursor=${encodeURIComponent(cursor)}`);
      conversation.messages.push(...page.messages);
      cursor = page.messages_next_cursor;
    }
    conversation.messages_next_cursor = null;
    return conversation;
  },
  update: (id: string, patch: { title?: string; archived?: boolean; system_prompt?: string }) =>
    api<ConversationSummary>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, patch),
  remove: (id: string) => api<unknown>("DELETE", `/api/conversations/${encodeURIComponent(id)}`),
};

export const messages = {
  feedback: (id: string, rating: 1 | -1, comment: string) =>
    api<unknown>("POST", `/api/messages/${encodeURIComponent(id)}/feedback`, { rating, comment }),
};

export const models = {
  list: () => api<Page<ModelInfo>>("GET", "/api/models"),
};

export const apiKeys = {
  list: () => api<Page<ApiKey>>("GET", "/api/keys"),
  create: (key: NewApiKey) => api<CreatedApiKey>("POST", "/api/keys", key),
  revoke: (id: number) => api<unknown>("DELETE", `/api/keys/${encodeURIComponent(String(id))}`),
};

export const usage = {
  get: () => api<Record<string, unknown>>("GET", "/api/usage"),
};
