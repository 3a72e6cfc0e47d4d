/**
 * The pytree of a checkpoint's tensors, grouped by key-path prefix, with tensor, parameter and byte
 * counts per subtree: what the tree-table and the pytree explorer show. Chains of groups that hold
 * one group and nothing else are folded into one node (`params/model`), as the file explorer folds
 * single-child folders, so a wrapper prefix costs no click.
 */
import { filterTensors, parameterCount, type Checkpoint, type PathKey, type TensorRef, type TensorSortKey } from './checkpoint';

export interface PytreeGroup {
  readonly kind: 'group';
  /** Unique and stable across loads of the same file: the JSON of the group's key path. */
  readonly id: string;
  /** The keys of this node (more than one when single-child groups were folded into it). */
  readonly keys: readonly PathKey[];
  /** The key path from the root. */
  readonly path: readonly PathKey[];
  readonly children: readonly PytreeNode[];
  readonly tensors: number;
  readonly parameters: number;
  readonly bytes: number;
  /** The dtype every tensor below shares, or undefined when they differ. */
  readonly dtype: string | undefined;
}

export interface PytreeLeaf {
  readonly kind: 'tensor';
  readonly tensor: TensorRef;
  /** The key under the parent group (the last path key, or several when the parent was folded away). */
  readonly keys: readonly PathKey[];
}

export type PytreeNode = PytreeGroup | PytreeLeaf;

/** Joins keys for display the way names are joined: 'layers.0'. */
export const keysLabel = (keys: readonly PathKey[]): string => keys.map(String).join('.');

interface Building {
  path: PathKey[];
  /** Sub-groups by key (numbers and strings are distinct Map keys, as they are distinct pytree keys). */
  groups: Map<PathKey, Building>;
  /** Children in first-seen order: sub-groups and leaves. */
  order: (Building | TensorRef)[];
}

/**
 * Groups tensors by path. A tensor whose path is a prefix of another tensor's path (possible in a
 * flat safetensors file: `a` and `a.b`) stays a leaf beside the group of the same key.
 */
export function buildPytree(tensors: readonly TensorRef[]): PytreeGroup {
  const root: Building = { path: [], groups: new Map(), order: [] };
  // Consecutive tensors usually share their parent: start from the last one's when the prefix matches.
  let lastParent = root;
  let lastPath: readonly PathKey[] = [];
  for (const t of tensors) {
    const p = t.path;
    let node: Building;
    if (p.length - 1 === lastPath.length && sameParent(p, lastPath)) node = lastParent;
    else {
      node = root;
      for (let d = 0; d < p.length - 1; d++) {
        let next = node.groups.get(p[d]!);
        if (!next) {
          next = { path: p.slice(0, d + 1) as PathKey[], groups: new Map(), order: [] };
          node.groups.set(p[d]!, next);
          node.order.push(next);
        }
        node = next;
      }
      lastParent = node;
      lastPath = node.path;
    }
    node.order.push(t);
  }
  return finish(root, []);
}

function sameParent(p: readonly PathKey[], parent: readonly PathKey[]): boolean {
  for (let i = parent.length - 1; i >= 0; i--) if (p[i] !== parent[i]) return false;
  return true;
}

function finish(b: Building, keys: PathKey[]): PytreeGroup {
  const children: PytreeNode[] = [];
  let tensors = 0;
  let parameters = 0;
  let bytes = 0;
  let dtype: string | undefined | null = null;
  for (const c of b.order) {
    let node: PytreeNode;
    if (!('groups' in c)) {
      const t = c;
      node = { kind: 'tensor', tensor: t, keys: t.path.length > 0 ? [t.path[t.path.length - 1]!] : [t.name] };
      tensors++;
      parameters += parameterCount(t);
      bytes += t.bytes;
      dtype = dtype === null || dtype === t.dtype ? t.dtype : undefined;
    } else {
      let inner = c;
      const chain: PathKey[] = [c.path[c.path.length - 1]!];
      // Fold groups that hold exactly one group and no tensor.
      for (;;) {
        const only = inner.order.length === 1 ? inner.order[0] : undefined;
        if (!only || !('groups' in only)) break;
        chain.push(only.path[only.path.length - 1]!);
        inner = only;
      }
      node = finish(inner, chain);
      tensors += node.tensors;
      parameters += node.parameters;
      bytes += node.bytes;
      dtype = dtype === null || dtype === node.dtype ? node.dtype : undefined;
    }
    children.push(node);
  }
  return { kind: 'group', id: JSON.stringify(b.path), keys, path: b.path, children, tensors, parameters, bytes, dtype: dtype ?? undefined };
}

/** Which groups are open: every one except `ids` ('all'), or only `ids` ('listed'). */
export interface Expansion {
  readonly open: 'all' | 'listed';
  readonly ids: readonly string[];
}

export interface PytreeRow {
  readonly node: PytreeNode;
  readonly depth: number;
  /** For groups: whether its children follow. */
  readonly expanded: boolean;
}

/** Numbers compare as numbers (layers 2 before 10), everything else as text. */
export function compareKeys(a: readonly PathKey[], b: readonly PathKey[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    const c = String(x).localeCompare(String(y), undefined, { numeric: true });
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function sortValue(n: PytreeNode, key: TensorSortKey): number | string {
  if (n.kind === 'tensor') {
    const t = n.tensor;
    return key === 'dtype' ? t.dtype : key === 'rank' ? t.shape.length : key === 'parameters' ? parameterCount(t) : t.bytes;
  }
  return key === 'dtype' ? (n.dtype ?? '') : key === 'rank' ? -1 : key === 'parameters' ? n.parameters : n.bytes;
}

function sortChildren(children: readonly PytreeNode[], sort: { key: TensorSortKey; descending: boolean } | undefined): readonly PytreeNode[] {
  if (!sort) return children;
  const sign = sort.descending ? -1 : 1;
  return [...children].sort((a, b) => {
    if (sort.key === 'name') return sign * compareKeys(a.keys, b.keys);
    const x = sortValue(a, sort.key);
    const y = sortValue(b, sort.key);
    return sign * (x < y ? -1 : x > y ? 1 : 0);
  });
}

/**
 * The rows of the tree-table: open groups show their children, siblings sorted by `sort` (groups by
 * their totals). With a filter, only groups holding a match are shown, and all of them open, so
 * every match is in view.
 */
export function pytreeRows(ck: Checkpoint, root: PytreeGroup, expansion: Expansion, filter: string, sort?: { key: TensorSortKey; descending: boolean }): PytreeRow[] {
  const filtering = filter.trim() !== '';
  const matches = filtering ? new Set(filterTensors(ck, filter)) : undefined;
  const listed = new Set(expansion.ids);
  const isOpen = (g: PytreeGroup) => filtering || (expansion.open === 'all' ? !listed.has(g.id) : listed.has(g.id));
  const rows: PytreeRow[] = [];
  const walk = (g: PytreeGroup, depth: number): boolean => {
    let any = false;
    for (const c of sortChildren(g.children, sort)) {
      if (c.kind === 'tensor') {
        if (matches && !matches.has(c.tensor)) continue;
        rows.push({ node: c, depth, expanded: false });
        any = true;
        continue;
      }
      const at = rows.length;
      const open = isOpen(c);
      rows.push({ node: c, depth, expanded: open });
      // A filter opens every group, so a group without a match is known once walked.
      const shown = open ? walk(c, depth + 1) : true;
      if (matches && !shown) rows.length = at;
      else any = true;
    }
    return any;
  };
  walk(root, 0);
  return rows;
}

/** The ids of the groups that hold `name`, outermost first: opening them brings it into view. */
export function ancestorIds(root: PytreeGroup, name: string): string[] | undefined {
  const walk = (g: PytreeGroup, trail: string[]): string[] | undefined => {
    for (const c of g.children) {
      if (c.kind === 'tensor') {
        if (c.tensor.name === name) return trail;
      } else {
        const found = walk(c, [...trail, c.id]);
        if (found) return found;
      }
    }
    return undefined;
  };
  return walk(root, []);
}

/**
 * Groups opened first in a new view: breadth-first while the rows stay within `budget`, so a small
 * checkpoint opens fully and a 100,000-tensor one shows its top levels; a lone top row (one wrapper
 * group) is opened whatever its size, so the view never starts as a single line.
 */
export function initialExpansion(root: PytreeGroup, budget = 60): Expansion {
  const ids: string[] = [];
  let rows = root.children.length;
  let level = root.children.filter((c): c is PytreeGroup => c.kind === 'group');
  while (level.length > 0) {
    const next: PytreeGroup[] = [];
    for (const g of level) {
      if (rows + g.children.length > budget && rows > 1) return { open: 'listed', ids };
      rows += g.children.length;
      ids.push(g.id);
      for (const c of g.children) if (c.kind === 'group') next.push(c);
    }
    level = next;
  }
  return { open: 'all', ids: [] };
}
