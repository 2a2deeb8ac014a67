// The user's keys for the OpenAI-compatible API (`/v1/`, docs/api.md): listed, created and
// revoked. The whole key of a new one is in the creation's answer only: it is held here until
// the person has copied it and dismisses it, and never written anywhere (no storage).
import { ApiError, type ApiKey, type CreatedApiKey, type NewApiKey, apiKeys } from "../api/rest";

export interface KeysSnapshot {
  keys: ApiKey[];
  loading: boolean;
  /** The last load or revoke that failed: what to tell the person. */
  error: string | null;
  /** The key just created, with its secret, until `dismissCreated()`. */
  created: CreatedApiKey | null;
  /** A create or a revoke is under way. */
  busy: boolean;
}

/** What the creation form offers; the server accepts 1 to API_KEY_MAX_EXPIRY_DAYS, or never. */
export const EXPIRY_CHOICES: readonly { label: string; days: number | null }[] = [
  { label: "30 days", days: 30 },
  { label: "90 days", days: 90 },
  { label: "1 year", days: 365 },
  { label: "Never", days: null },
];

export const NAME_MAX_LENGTH = 100;

/** The form's own checks, as the server makes them (field -> problems); empty: fine to send. */
export function newKeyProblems(key: NewApiKey): Record<string, string[]> {
  const problems: Record<string, string[]> = {};
  const name = key.name.trim();
  if (!name) problems.name = ["Give the key a name, e.g. where it will be used."];
  else if (name.length > NAME_MAX_LENGTH) problems.name = [`At most ${NAME_MAX_LENGTH} characters.`];
  if (!key.scopes.length) problems.scopes = ["Choose at least one scope."];
  return problems;
}

export class ApiKeyList {
  private snapshot: KeysSnapshot = { keys: [], loading: false, error: null, created: null, busy: false };
  private readonly listeners = new Set<() => void>();

  getSnapshot = (): KeysSnapshot => this.snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<KeysSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  async reload(): Promise<void> {
    this.set({ loading: true, error: null });
    try {
      const page = await apiKeys.list();
      this.set({ keys: page.results ?? [], loading: false });
    } catch (error) {
      this.set({ loading: false, error: (error as Error).message });
    }
  }

  /**
   * Create a key; it is listed first and held, with its secret, in `created`. Throws an
   * `ApiError` whose `fields` name what to fix (the form's own checks come first, without a
   * request).
   */
  async create(key: NewApiKey): Promise<CreatedApiKey> {
    const problems = newKeyProblems(key);
    if (Object.keys(problems).length) {
      throw new ApiError(400, "bad_request", "Please fix the fields below.", problems);
    }
    this.set({ busy: true, error: null });
    try {
      const created = await apiKeys.create({ ...key, name: key.name.trim() });
      const { key: _secret, ...listed } = created;
      this.set({ created, keys: [listed, ...this.snapshot.keys.filter((k) => k.id !== created.id)] });
      return created;
    } finally {
      this.set({ busy: false });
    }
  }

  /** Forget the new key's secret (the person has copied it, or chose not to). */
  dismissCreated(): void {
    this.set({ created: null });
  }

  /** Revoke a key: it stops working at once. One the server no longer has (404) is gone too. */
  async revoke(id: number): Promise<boolean> {
    this.set({ busy: true, error: null });
    try {
      await apiKeys.revoke(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        this.set({ busy: false, error: (error as Error).message });
        return false;
      }
    }
    const created = this.snapshot.created?.id === id ? null : this.snapshot.created;
    this.set({ busy: false, created, keys: this.snapshot.keys.filter((k) => k.id !== id) });
    return true;
  }
}
