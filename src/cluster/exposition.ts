/**
 * The pod's `/metrics`: the primary's own Prometheus text merged with each worker's, every worker
 * sample labelled `worker="<cluster worker id>"`. A label rather than a sum: a worker's counters
 * restart from zero when it is replaced, which a sum would show as a counter going backwards; with
 * the label the replacement is a new series and `sum without (worker) (rate(...))` aggregates it.
 * Each metric family keeps one `# HELP` and one `# TYPE` line (the text format allows no repeat).
 */

interface Family {
  readonly header: string[];
  readonly samples: string[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** `name{a="b"} 1` → `name{worker="2",a="b"} 1`; `name 1` → `name{worker="2"} 1`. */
function labelled(line: string, label: string): string {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return line;
  const rest = line.slice(name.length);
  if (rest.startsWith('{}')) return `${name}{${label}}${rest.slice(2)}`;
  if (rest.startsWith('{')) return `${name}{${label},${rest.slice(1)}`;
  return `${name}{${label}}${rest}`;
}

/**
 * Merge exposition texts: `sources[i].label` (`worker="1"`) is added to every sample of that text,
 * none for a source without one. Families come in the order first seen; samples in source order.
 */
export function mergeExposition(
  sources: readonly { readonly text: string; readonly label?: string }[],
): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (!found) families.set(name, (found = { header: [], samples: [] }));
    return found;
  };
  for (const { text, label } of sources) {
    let current: string | undefined;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
      if (meta) {
        current = meta[2] ?? '';
        const target = family(current);
        // The first source's HELP and TYPE stand for the family.
        if (!target.header.some((h) => h.startsWith(`# ${meta[1]} `))) target.header.push(line);
        continue;
      }
      if (line.startsWith('#')) continue;
      const name = NAME.exec(line)?.[0] ?? '';
      // A histogram's _bucket/_sum/_count samples follow their family's TYPE line.
      const owner = current !== undefined && name.startsWith(current) ? current : name;
      family(owner).samples.push(label === undefined ? line : labelled(line, label));
    }
  }
  const out: string[] = [];
  for (const { header, samples } of families.values()) out.push(...header, ...samples);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
