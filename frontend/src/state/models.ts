import type { ModelInfo } from "../api/rest";

/** The picker's "Auto": the server's router picks a model the plan allows for each message. */
export const AUTO_MODEL = "auto";

/** "Auto" is offered when there is a choice to make: two models or more. */
export function offersAuto(models: ModelInfo[]): boolean {
  return models.length > 1;
}

/**
 * The model the picker shows and the next message asks for. `/api/models` lists only the
 * models the user's plan allows, so a conversation started on a model the plan no longer
 * includes (or one another plan allowed) falls back to the preferred model, then the
 * default one, then the first listed: the picker never shows, and a send never asks for, a
 * model that the server would refuse as forbidden. An empty list keeps `current` as it is (the
 * list is still loading or could not be read).
 */
export function allowedModel(models: ModelInfo[], current: string | null, preferred: string | null = null): string | null {
  if (!models.length) return current;
  const listed = (name: string | null) =>
    name !== null && (models.some((m) => m.name === name) || (name === AUTO_MODEL && offersAuto(models))) ? name : null;
  return listed(current) ?? listed(preferred) ?? models.find((m) => m.default)?.name ?? models[0].name;
}
