"""A generation: one answer of the model, from admission to its closing message.

Its one home, imported directly by the web tier (`chat.consumers`) and by the worker
(`inference`):

- `record`: its states, its stored document, `Ending` and the one builder of its closing
  message;
- `admission`: how a chat.send or a regenerate becomes a stored, queued generation (limits,
  slot, queue depth, input moderation), and the `Dispatch` that enqueues its task by name;
- `requests`: repeated `request_id`s;
- `slots`: the user's concurrent-generation slots, released by `lifecycle.finish`;
- `waiting`: the queue of generations waiting for a worker;
- `lifecycle`: checkpoints while it streams and the one final write, whoever ends it;
- `stop`: stop requests; `deltas`: the recent-delta log for resuming; `replay`: what a
  resuming client missed;
- `names`: its channel-layer group and Redis keys.

Events to its followers go out through `chat.events`.
"""
