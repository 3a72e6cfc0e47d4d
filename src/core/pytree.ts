/**
 * The pytree of a checkpoint's tensors, grouped by key-path prefix, with tensor, parameter and byte
 * counts per subtree: what the tree-table and the pytree explorer show. Chains of groups that hold
 * one group and nothing else are folded into one node (`params/model`), as the file explorer folds
 * single-child folders, so a wrapper prefix costs no click.
 */
import { filterTensors, parameterCount, type Checkpoint, type PathKey, type TensorRef, type TensorSortKey } from './checkpoint';
import { compareKeyPaths, isIndexKey } from './naturalOrder';

/**
 * A group of the pytree. Built in one pass over the tensors; its path and id are computed when
 * first asked for, since a view asks for a few and a 100,000-tensor tree holds 100,000 groups.
 */
export class PytreeGroup {
  readonly kind = 'group';
  /** Set when single-child groups were folded into this one; otherwise `keys` is made on demand. */
  private _keys: readonly PathKey[] | undefined;
  /** Sub-groups and tensors, in file order, except that list indices count up (orderIndices). */
  children: PytreeNode[] = [];
  tensors = 0;
  parameters = 0;
  bytes = 0;
  /** null until a tensor is added; undefined once two dtypes met. */
  private _dtype: string | null | undefined = null;
  private _path: readonly PathKey[] | undefined;
  private _id: string | undefined;
  /** Sub-groups by key (numbers and strings are distinct Map keys, as they are distinct pytree keys). */
  groups: Map<PathKey, PytreeGroup> | undefined;

  constructor(
    private parent: PytreeGroup | undefined,
    private readonly key: PathKey | undefined,
  ) {}

  /** The keys of this node (more than one when single-child groups were folded into it). */
  get keys(): readonly PathKey[] {
    return (this._keys ??= this.key === undefined ? [] : [this.key]);
  }

  /** The dtype every tensor below shares, or undefined when they differ. */
  get dtype(): string | undefined {
    return this._dtype ?? undefined;
  }

  /** The key path from the root. */
  get path(): readonly PathKey[] {
    return (this._path ??= this.parent ? [...this.parent.path, ...this.keys] : []);
  }

  /** Unique and stable across loads of the same file: the JSON of the group's key path. */
  get id(): string {
    return (this._id ??= JSON.stringify(this.path));
  }

  /** Counts one more tensor below. */
  add(t: TensorRef, n: number): void {
    this.tensors++;
    this.parameters += n;
    this.bytes += t.bytes;
    this._dtype = this._dtype === null || this._dtype === t.dtype ? t.dtype : undefined;
  }

  /** Takes in its only child group (a wrapper): its keys, children and, for them, parenthood. */
  fold(only: PytreeGroup): void {
    this._keys = [...this.keys, ...only.keys];
    this.children = only.children;
    this.groups = only.groups;
    for (const c of this.children) if (c instanceof PytreeGroup) c.parent = this;
  }
}

/** A node of the pytree: a group, or a tensor (a leaf). */
export type PytreeNode = PytreeGroup | TensorRef;

export const isGroup = (n: PytreeNode): n is PytreeGroup => n instanceof PytreeGroup;

/** The key(s) a node shows under its parent. */
export function nodeKeys(n: PytreeNode): readonly PathKey[] {
  return isGroup(n) ? n.keys : n.path.length > 0 ? [n.path[n.path.length - 1]!] : [n.name];
}

/** Joins keys for display the way names are joined: 'layers.0'. */
export const keysLabel = (keys: readonly PathKey[]): string => keys.map(String).join('.');

/**
 * Groups tensors by path. A tensor whose path is a prefix of another tensor's path (possible in a
 * flat safetensors file: `a` and `a.b`) stays a leaf beside the group of the same key.
 */
export function buildPytree(tensors: readonly TensorRef[]): PytreeGroup {
  const root = new PytreeGroup(undefined, undefined);
  // The groups along the last tensor's path: consecutive tensors share most of it.
  const chain: PytreeGroup[] = [root];
  let last: readonly PathKey[] = [];
  for (const t of tensors) {
    const p = t.path;
    const n = parameterCount(t);
    root.add(t, n);
    let d = 0;
    for (; d < p.length - 1 && d < last.length - 1 && p[d] === last[d]; d++) chain[d + 1]!.add(t, n);
    let node = chain[d]!;
    for (; d < p.length - 1; d++) {
      const key = p[d]!;
      let next = node.groups?.get(key);
      if (!next) {
        next = new PytreeGroup(node, key);
        (node.groups ??= new Map()).set(key, next);
        node.children.push(next);
      }
      next.add(t, n);
      chain[d + 1] = node = next;
    }
    node.children.push(t);
    last = p;
  }
  foldWrappers(root);
  return root;
}

/** Folds groups that hold exactly one group and no tensor into their parent's child; orders indices. */
function foldWrappers(g: PytreeGroup): void {
  orderIndices(g);
  for (const c of g.children) {
    if (!(c instanceof PytreeGroup)) continue;
    for (let only = c.children[0]; c.children.length === 1 && only instanceof PytreeGroup; only = c.children[0]) c.fold(only);
    foldWrappers(c);
  }
}

/**
 * Siblings keyed by an index (`layers.0`, `layers.1`, …) take the places they hold among the
 * children in counting order: writers store names in code-unit order, which puts 10 before 2.
 * Named siblings keep file order, which for Flax and Orbax states is the order the model declares.
 */
function orderIndices(g: PytreeGroup): void {
  const at: number[] = [];
  g.children.forEach((c, i) => {
    if (isIndexKey(nodeKeys(c)[0] ?? '')) at.push(i);
  });
  const indexed = at.map((i) => g.children[i]!);
  const sorted = [...indexed].sort((a, b) => compareKeyPaths(nodeKeys(a), nodeKeys(b)));
  if (sorted.every((c, k) => c === indexed[k])) return;
  at.forEach((i, k) => (g.children[i] = sorted[k]!));
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

function sortValue(n: PytreeNode, key: TensorSortKey): number | string {
  if (isGroup(n)) return key === 'dtype' ? (n.dtype ?? '') : key === 'rank' ? -1 : key === 'parameters' ? n.parameters : n.bytes;
  return key === 'dtype' ? n.dtype : key === 'rank' ? n.shape.length : key === 'parameters' ? parameterCount(n) : n.bytes;
}

function sortChildren(children: readonly PytreeNode[], sort: { key: TensorSortKey; descending: boolean } | undefined): readonly PytreeNode[] {
  if (!sort) return children;
  const sign = sort.descending ? -1 : 1;
  return [...children].sort((a, b) => {
    if (sort.key === 'name') return sign * compareKeyPaths(nodeKeys(a), nodeKeys(b));
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
      if (!isGroup(c)) {
        if (matches && !matches.has(c)) continue;
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
      if (!isGroup(c)) {
        if (c.name === name) return trail;
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
  let level = root.children.filter(isGroup);
  while (level.length > 0) {
    const next: PytreeGroup[] = [];
    for (const g of level) {
      if (rows + g.children.length > budget && rows > 1) return { open: 'listed', ids };
      rows += g.children.length;
      ids.push(g.id);
      for (const c of g.children) if (isGroup(c)) next.push(c);
    }
    level = next;
  }
  return { open: 'all', ids: [] };
}
