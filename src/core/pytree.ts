/**
 * The pytree of a checkpoint's tensors, grouped by key-path prefix, with tensor, parameter and byte
 * counts per subtree: what the tree-table and the pytree explorer show. Chains of groups that hold
 * one group and nothing else are folded into one node (`params/model`), as the file explorer folds
 * single-child folders, so a wrapper prefix costs no click.
 */
import { nameMatcher, parameterCount, type PathKey, type TensorRef, type TensorSortKey } from './checkpoint';
import { compareKeyPaths, isIndexKey } from './naturalOrder';

/**
 * What the tree needs of a leaf: its name and key path. A TensorRef is one; so is a tensor listed by
 * an index whose shard header is not read yet (a name tree, see buildNameTree).
 */
export interface PytreeLeaf {
  readonly name: string;
  readonly path: readonly PathKey[];
}

/** What a leaf adds to its groups' totals; none for a leaf whose header is not read yet. */
interface LeafFacts {
  readonly parameters: number;
  readonly bytes: number;
  readonly dtype: string;
}

/**
 * A group of the pytree. Built in one pass over the tensors; its path and id are computed when
 * first asked for, since a view asks for a few and a 100,000-tensor tree holds 100,000 groups.
 */
export class PytreeGroup<L extends PytreeLeaf = TensorRef> {
  readonly kind = 'group';
  /** Set when single-child groups were folded into this one; otherwise `keys` is made on demand. */
  private _keys: readonly PathKey[] | undefined;
  /** Sub-groups and tensors, in file order, except that list indices count up (orderIndices). */
  children: PytreeNode<L>[] = [];
  tensors = 0;
  parameters = 0;
  bytes = 0;
  /** null until a tensor is added; undefined once two dtypes met. */
  private _dtype: string | null | undefined = null;
  private _path: readonly PathKey[] | undefined;
  private _id: string | undefined;
  /** Sub-groups by key (numbers and strings are distinct Map keys, as they are distinct pytree keys). */
  groups: Map<PathKey, PytreeGroup<L>> | undefined;

  constructor(
    private parent: PytreeGroup<L> | undefined,
    private readonly key: PathKey | undefined,
  ) {}

  /** The keys of this node (more than one when single-child groups were folded into it). */
  get keys(): readonly PathKey[] {
    return (this._keys ??= this.key === undefined ? [] : [this.key]);
  }

  /** keys[0], without making the array. */
  get firstKey(): PathKey {
    return this._keys?.[0] ?? this.key ?? '';
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

  /** Counts one more tensor below (its sizes, when known). */
  add(f: LeafFacts | undefined): void {
    this.tensors++;
    if (!f) return;
    this.parameters += f.parameters;
    this.bytes += f.bytes;
    this._dtype = this._dtype === null || this._dtype === f.dtype ? f.dtype : undefined;
  }

  /** Takes in its only child group (a wrapper): its keys, children and, for them, parenthood. */
  fold(only: PytreeGroup<L>): void {
    this._keys = [...this.keys, ...only.keys];
    this.children = only.children;
    this.groups = only.groups;
    for (const c of this.children) if (c instanceof PytreeGroup) c.parent = this;
  }
}

/** A node of the pytree: a group, or a tensor (a leaf). */
export type PytreeNode<L extends PytreeLeaf = TensorRef> = PytreeGroup<L> | L;

export const isGroup = <L extends PytreeLeaf>(n: PytreeNode<L>): n is PytreeGroup<L> => n instanceof PytreeGroup;

/** The first key a node shows under its parent (nodeKeys(n)[0], without making the array). */
function firstKey<L extends PytreeLeaf>(n: PytreeNode<L>): PathKey {
  return isGroup(n) ? n.firstKey : n.path.length > 0 ? n.path[n.path.length - 1]! : n.name;
}

/** The key(s) a node shows under its parent. */
export function nodeKeys<L extends PytreeLeaf>(n: PytreeNode<L>): readonly PathKey[] {
  return isGroup(n) ? n.keys : n.path.length > 0 ? [n.path[n.path.length - 1]!] : [n.name];
}

/** Joins keys for display the way names are joined: 'layers.0'. */
export const keysLabel = (keys: readonly PathKey[]): string => keys.map(String).join('.');

/**
 * Groups tensors by path. A tensor whose path is a prefix of another tensor's path (possible in a
 * flat safetensors file: `a` and `a.b`) stays a leaf beside the group of the same key.
 */
export function buildPytree(tensors: readonly TensorRef[]): PytreeGroup {
  return buildTree(tensors, (t) => ({ parameters: parameterCount(t), bytes: t.bytes, dtype: t.dtype }));
}

/**
 * The same tree from names alone (tensors an index lists before their headers are read): the
 * groups count tensors; parameters, bytes and dtypes wait for the headers. The groups, their ids
 * and their order are those buildPytree gives the same names in the same order.
 */
export function buildNameTree<L extends PytreeLeaf>(leaves: readonly L[]): PytreeGroup<L> {
  return buildTree(leaves, () => undefined);
}

function buildTree<L extends PytreeLeaf>(tensors: readonly L[], facts: (t: L) => LeafFacts | undefined): PytreeGroup<L> {
  const root = new PytreeGroup<L>(undefined, undefined);
  // The groups along the last tensor's path: consecutive tensors share most of it.
  const chain: PytreeGroup<L>[] = [root];
  let last: readonly PathKey[] = [];
  for (const t of tensors) {
    const p = t.path;
    const f = facts(t);
    root.add(f);
    let d = 0;
    for (; d < p.length - 1 && d < last.length - 1 && p[d] === last[d]; d++) chain[d + 1]!.add(f);
    let node = chain[d]!;
    for (; d < p.length - 1; d++) {
      const key = p[d]!;
      let next = node.groups?.get(key);
      if (!next) {
        next = new PytreeGroup<L>(node, key);
        (node.groups ??= new Map()).set(key, next);
        node.children.push(next);
      }
      next.add(f);
      chain[d + 1] = node = next;
    }
    node.children.push(t);
    last = p;
  }
  foldWrappers(root);
  return root;
}

/** Folds groups that hold exactly one group and no tensor into their parent's child; orders indices. */
function foldWrappers<L extends PytreeLeaf>(g: PytreeGroup<L>): void {
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
function orderIndices<L extends PytreeLeaf>(g: PytreeGroup<L>): void {
  // Most groups hold at most one index-keyed child (a 100,000-tensor tree has 100,000 groups):
  // nothing to order, so nothing is allocated.
  let indices = 0;
  for (const c of g.children) if (isIndexKey(firstKey(c))) indices++;
  if (indices < 2) return;
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

export interface PytreeRow<L extends PytreeLeaf = TensorRef> {
  readonly node: PytreeNode<L>;
  readonly depth: number;
  /** For groups: whether its children follow. */
  readonly expanded: boolean;
}

function sortValue(n: PytreeNode, key: TensorSortKey): number | string {
  if (isGroup(n)) return key === 'dtype' ? (n.dtype ?? '') : key === 'rank' ? -1 : key === 'parameters' ? n.parameters : n.bytes;
  return key === 'dtype' ? n.dtype : key === 'rank' ? n.shape.length : key === 'parameters' ? parameterCount(n) : n.bytes;
}

function sortChildren<L extends PytreeLeaf>(children: readonly PytreeNode<L>[], sort: { key: TensorSortKey; descending: boolean } | undefined, value: (n: PytreeNode<L>, key: TensorSortKey) => number | string): readonly PytreeNode<L>[] {
  if (!sort) return children;
  const sign = sort.descending ? -1 : 1;
  return [...children].sort((a, b) => {
    if (sort.key === 'name') return sign * compareKeyPaths(nodeKeys(a), nodeKeys(b));
    const x = value(a, sort.key);
    const y = value(b, sort.key);
    return sign * (x < y ? -1 : x > y ? 1 : 0);
  });
}

/**
 * The rows of the tree-table: open groups show their children, siblings sorted by `sort` (groups by
 * their totals). With a filter, only groups holding a match are shown, and all of them open, so
 * every match is in view.
 */
export function pytreeRows(root: PytreeGroup, expansion: Expansion, filter: string, sort?: { key: TensorSortKey; descending: boolean }): PytreeRow[] {
  return treeRows(root, expansion, filter, (children) => sortChildren(children, sort, sortValue));
}

/**
 * The rows of a name tree (buildNameTree), as pytreeRows gives them; only a sort by name applies,
 * since the sizes are not known yet: other keys keep file order.
 */
export function nameTreeRows<L extends PytreeLeaf>(root: PytreeGroup<L>, expansion: Expansion, filter: string, sort?: { key: TensorSortKey; descending: boolean }): PytreeRow<L>[] {
  const byName = sort?.key === 'name' ? sort : undefined;
  return treeRows(root, expansion, filter, (children) => sortChildren(children, byName, () => 0));
}

function treeRows<L extends PytreeLeaf>(root: PytreeGroup<L>, expansion: Expansion, filter: string, order: (children: readonly PytreeNode<L>[]) => readonly PytreeNode<L>[]): PytreeRow<L>[] {
  const match = nameMatcher(filter);
  const listed = new Set(expansion.ids);
  const isOpen = (g: PytreeGroup<L>) => match !== undefined || (expansion.open === 'all' ? !listed.has(g.id) : listed.has(g.id));
  const rows: PytreeRow<L>[] = [];
  const walk = (g: PytreeGroup<L>, depth: number): boolean => {
    let any = false;
    for (const c of order(g.children)) {
      if (!isGroup(c)) {
        if (match && !match(c.name)) continue;
        rows.push({ node: c, depth, expanded: false });
        any = true;
        continue;
      }
      const at = rows.length;
      const open = isOpen(c);
      rows.push({ node: c, depth, expanded: open });
      // A filter opens every group, so a group without a match is known once walked.
      const shown = open ? walk(c, depth + 1) : true;
      if (match && !shown) rows.length = at;
      else any = true;
    }
    return any;
  };
  walk(root, 0);
  return rows;
}

/** The ids of the groups that hold `name`, outermost first: opening them brings it into view. */
export function ancestorIds<L extends PytreeLeaf>(root: PytreeGroup<L>, name: string): string[] | undefined {
  const walk = (g: PytreeGroup<L>, trail: string[]): string[] | undefined => {
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
export function initialExpansion<L extends PytreeLeaf>(root: PytreeGroup<L>, budget = 60): Expansion {
  const ids: string[] = [];
  let rows = root.children.length;
  let level = root.children.filter((c): c is PytreeGroup<L> => isGroup(c));
  while (level.length > 0) {
    const next: PytreeGroup<L>[] = [];
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
