// The sidebar's list: newest first, fetched a page at a time, filtered by a search query.
import { type ConversationSummary, conversations } from "../api/rest";

export interface ListSnapshot {
  items: ConversationSummary[];
  query: string;
  archived: boolean;
  nextCursor: string | null;
  loading: boolean;
  done: boolean;
  error: string | null;
}

export class ConversationList {
  private snapshot: ListSnapshot = { items: [], query: "", archived: false, nextCursor: null, loading: false, done: false, error: null };
  private readonly listeners = new Set<() => void>();
  private generation = 0;

  getSnapshot = (): ListSnapshot => this.snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<ListSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener();
  }

  /** Start over (new query, archive view, login). */
  async reload(patch: { query?: string; archived?: boolean } = {}): Promise<void> {
    this.generation += 1;
    this.set({ ...patch, items: [], nextCursor: null, done: false, error: null, loading: false });
    await this.loadMore();
  }

  async loadMore(): Promise<void> {
    const { loading, done, nextCursor, query, archived } = this.snapshot;
    if (loading || done) return;
    const generation = this.generation;
    this.set({ loading: true, error: null });
    try {
      const page = await conversations.list({ cursor: nextCursor, q: query.trim() || undefined, archived });
      if (generation !== this.generation) return;
      const seen = new Set(this.snapshot.items.map((c) => c.id));
      // The server may ignore the archive filter; the client keeps each view honest.
      const fresh = page.results.filter((c) => !seen.has(c.id) && Boolean(c.archived) === archived);
      this.set({
        items: [...this.snapshot.items, ...fresh],
        nextCursor: page.next_cursor,
        done: !page.next_cursor,
        loading: false,
      });
    } catch (error) {
      if (generation !== this.generation) return;
      this.set({ loading: false, error: (error as Error).message });
    }
  }

  /** A conversation was created or answered: show it first (in the list of active ones). */
  bump(conversation: Pick<ConversationSummary, "id"> & Partial<ConversationSummary>): void {
    if (this.snapshot.archived || this.snapshot.query || conversation.archived) return;
    const existing = this.snapshot.items.find((c) => c.id === conversation.id);
    const item: ConversationSummary = {
      title: "New chat",
      model: null,
      archived: false,
      ...existing,
      ...conversation,
      updated_at: new Date().toISOString(),
    };
    this.set({ items: [item, ...this.snapshot.items.filter((c) => c.id !== conversation.id)] });
  }

  /**
   * The server said a conversation changed (`conversation.updated`, from this tab or another):
   * a deleted one leaves the list; one archived or unarchived leaves the view it no longer
   * belongs to, as after `setArchived` (the other view has it when next loaded); otherwise its
   * title is updated. One the list has not loaded is left to the next load.
   */
  applyChange(change: { id: string; title: string; archived: boolean; deleted: boolean }): void {
    const { items, archived } = this.snapshot;
    if (!items.some((c) => c.id === change.id)) return;
    if (change.deleted || change.archived !== archived) {
      this.set({ items: items.filter((c) => c.id !== change.id) });
    } else {
      this.set({ items: items.map((c) => (c.id === change.id ? { ...c, title: change.title } : c)) });
    }
  }

  retitle(id: string, title: string): void {
    this.set({ items: this.snapshot.items.map((c) => (c.id === id ? { ...c, title } : c)) });
  }

  async rename(id: string, title: string): Promise<void> {
    await conversations.update(id, { title });
    this.retitle(id, title);
  }

  async setArchived(id: string, archived: boolean): Promise<void> {
    await conversations.update(id, { archived });
    this.set({ items: this.snapshot.items.filter((c) => c.id !== id) });
  }

  async remove(id: string): Promise<void> {
    await conversations.remove(id);
    this.set({ items: this.snapshot.items.filter((c) => c.id !== id) });
  }
}
