/**
 * A run's labels: its tags and its group (a sweep, an experiment), set when it is created and changeable in any status.
 * One TypeBox source for the create bodies, PATCH /operations/{id}/labels and the MCP tool, and the pure rule that
 * applies a label change (both stores call it).
 */
import { Type, type Static } from "@sinclair/typebox";

/** A tag: 1–64 characters of letters, digits and `_.:/+=@-`. */
export const TAG_PATTERN = "^[A-Za-z0-9_.:/+=@-]{1,64}$";
/** A group: 1–128 characters of letters, digits, `_.:/+=@-` and spaces inside (none at either end). */
export const GROUP_PATTERN = "^[A-Za-z0-9_.:/+=@-]([A-Za-z0-9_.:/+=@ -]{0,126}[A-Za-z0-9_.:/+=@-])?$";
/** At most this many tags on a run. */
export const MAX_TAGS = 32;

export const Tag = Type.String({ pattern: TAG_PATTERN, description: "1–64 characters of [A-Za-z0-9_.:/+=@-]." });

export const Tags = Type.Array(Tag, {
  maxItems: MAX_TAGS,
  description: `The run's tags (at most ${MAX_TAGS}); kept sorted and unique.`,
});

export const Group = Type.String({
  pattern: GROUP_PATTERN,
  description: 'The run\'s group (a sweep, an experiment, e.g. "sweep-7"): 1–128 characters, spaces allowed inside.',
});

/** The labels a create body may carry (POST /operations, POST /trainings, start_training). */
export const LabelFields = {
  tags: Type.Optional(Tags),
  group: Type.Optional(Group),
};

/** PATCH /operations/{id}/labels and the MCP tool label_operation. */
export const LabelsInput = Type.Object(
  {
    tags: Type.Optional({ ...Tags, description: "Replaces every tag (applied before add_tags and remove_tags)." }),
    add_tags: Type.Optional(Type.Array(Tag, { maxItems: MAX_TAGS, description: "Tags to add." })),
    remove_tags: Type.Optional(Type.Array(Tag, { maxItems: MAX_TAGS, description: "Tags to remove." })),
    group: Type.Optional(Type.Union([Group, Type.Null()], { description: "The new group; null removes it." })),
  },
  { additionalProperties: false },
);
export type LabelsInput = Static<typeof LabelsInput>;

/** A run's labels as stored. */
export interface Labels {
  tags: string[];
  group: string | null;
}

/** Tags sorted (by code unit, the same on every platform) and unique. */
export const normalizeTags = (tags: readonly string[]): string[] =>
  [...new Set(tags)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * The labels after `patch`: `tags` replaces, then `add_tags` adds and `remove_tags` removes; `group` replaces (null
 * removes it), a key left out keeps its value. Null when the result holds more than MAX_TAGS tags (the caller refuses).
 */
export function applyLabels(current: Labels, patch: LabelsInput): Labels | null {
  const tags = new Set(patch.tags ?? current.tags);
  for (const t of patch.add_tags ?? []) tags.add(t);
  for (const t of patch.remove_tags ?? []) tags.delete(t);
  if (tags.size > MAX_TAGS) return null;
  return { tags: normalizeTags([...tags]), group: patch.group === undefined ? current.group : patch.group };
}
