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

/** What the groups of one tree share: its tensors, and what each adds to its groups' totals. */
interface TreeSource<L extends PytreeLeaf> {
  readonly leaves: readonly L[];
  readonly facts: (t: L) => LeafFacts | undefined;
}

/**
 * A group of the pytree. Groups are made when first asked for: a group knows the tensors below it
 * (indices into the tree's list) and splits them into its children when a view opens it or asks
 * for them, so a view of the top of a 100,000-tensor tree makes the groups it shows, not the
 * 100,000 below them. Totals, path and id are computed on first use too.
 */
export class PytreeGroup<L extends PytreeLeaf = TensorRef> {
  readonly kind = 'group';
  /** Its own key, and those of the single-child groups folded into it. */
  private readonly _keys: PathKey[];
  private _children: PytreeNode<L>[] | undefined;
  private _totals: { parameters: number; bytes: number; dtype: string | undefined } | undefined;
  private _path: readonly PathKey[] | undefined;
  private _id: string | undefined;

  constructor(
    private readonly parent: PytreeGroup<L> | undefined,
    key: PathKey | undefined,
    private readonly source: TreeSource<L>,
    /** The tensors below, as indices into source.leaves, in file order. */
    private readonly below: readonly number[],
    /** Path keys above its children: the length of its path. */
    private depth: number,
  ) {
    this._keys = key === undefined ? [] : [key];
  }

  /** The keys of this node (more than one when single-child groups were folded into it). */
  get keys(): readonly PathKey[] {
    return this._keys;
  }

  /** keys[0]. */
  get firstKey(): PathKey {
    return this._keys[0] ?? '';
  }

  /** Sub-groups and tensors, in file order, except that list indices count up (orderIndices). */
  get children(): readonly PytreeNode<L>[] {
    return (this._children ??= this.split());
  }

  get tensors(): number {
    return this.below.length;
  }

  get parameters(): number {
    return this.totals().parameters;
  }

  get bytes(): number {
    return this.totals().bytes;
  }

  /** The dtype every tensor below shares, or undefined when they differ (or are not known). */
  get dtype(): string | undefined {
    return this.totals().dtype;
  }

  /** The key path from the root. */
  get path(): readonly PathKey[] {
    return (this._path ??= this.parent ? [...this.parent.path, ...this._keys] : []);
  }

  /** Unique and stable across loads of the same file: the JSON of the group's key path. */
  get id(): string {
    return (this._id ??= JSON.stringify(this.path));
  }

  private totals(): { parameters: number; bytes: number; dtype: string | undefined } {
    if (!this._totals) {
      let parameters = 0;
      let bytes = 0;
      // null until a tensor with facts is met; undefined once two dtypes met.
      let dtype: string | null | undefined = null;
      for (const i of this.below) {
        const f = this.source.facts(this.source.leaves[i]!);
        if (!f) continue;
        parameters += f.parameters;
        bytes += f.bytes;
        dtype = dtype === null || dtype === f.dtype ? f.dtype : undefined;
      }
      this._totals = { parameters, bytes, dtype: dtype ?? undefined };
    }
    return this._totals;
  }

  /**
   * The tensors that end here are leaves; the others go to a group per next key, made when its
   * first tensor is met (so groups and leaves keep file order), its wrappers folded.
   */
  private split(): PytreeNode<L>[] {
    const leaves = this.source.leaves;
    const d = this.depth;
    const children: PytreeNode<L>[] = [];
    // Sub-groups by key (numbers and strings are distinct Map keys, as they are distinct pytree keys).
    const groups = new Map<PathKey, number[]>();
    for (const i of this.below) {
      const t = leaves[i]!;
      const p = t.path;
      if (p.length - 1 <= d) {
        children.push(t);
        continue;
      }
      const key = p[d]!;
      let below = groups.get(key);
      if (!below) {
        groups.set(key, (below = []));
        children.push(new PytreeGroup(this, key, this.source, below, d + 1));
      }
      below.push(i);
    }
    orderIndices(children);
    for (const c of children) if (c instanceof PytreeGroup) c.foldWrappers();
    return children;
  }

  /** While every tensor below goes on into one group (none ends here), that group is folded in: its key joins this one's. */
  private foldWrappers(): void {
    const leaves = this.source.leaves;
    for (;;) {
      const d = this.depth;
      let key: PathKey | undefined;
      for (const i of this.below) {
        const p = leaves[i]!.path;
        if (p.length - 1 <= d || (key !== undefined && p[d] !== key)) return;
        key = p[d];
      }
      if (key === undefined) return;
      this._keys.push(key);
      this.depth++;
    }
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

function buildTree<L extends PytreeLeaf>(leaves: readonly L[], facts: (t: L) => LeafFacts | undefined): PytreeGroup<L> {
  return new PytreeGroup<L>(undefined, undefined, { leaves, facts }, Array.from({ length: leaves.length }, (_, i) => i), 0);
}

/**
 * Siblings keyed by an index (`layers.0`, `layers.1`, …) take the places they hold among the
 * children in counting order: writers store names in code-unit order, which puts 10 before 2.
 * Named siblings keep file order, which for Flax and Orbax states is the order the model declares.
 */
function orderIndices<L extends PytreeLeaf>(children: PytreeNode<L>[]): void {
  // Most groups hold at most one index-keyed child: nothing to order, so nothing is allocated.
  let indices = 0;
  for (const c of children) if (isIndexKey(firstKey(c))) indices++;
  if (indices < 2) return;
  const at: number[] = [];
  children.forEach((c, i) => {
    if (isIndexKey(firstKey(c))) at.push(i);
  });
  const indexed = at.map((i) => children[i]!);
  const sorted = [...indexed].sort((a, b) => compareKeyPaths(nodeKeys(a), nodeKeys(b)));
  if (sorted.every((c, k) => c === indexed[k])) return;
  at.forEach((i, k) => (children[i] = sorted[k]!));
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
