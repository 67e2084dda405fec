//! Where the graph page draws each box and arrow: a layered (Sugiyama) layout from
//! `rust-sugiyama`, and a layering by distance from the root when that fails.

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use rust_sugiyama::configure::{Config, RankingType};

/// Space between neighbouring boxes, and between a layer and the next.
const GAP: f64 = 24.0;
/// Extra height between layers, so an edge's label fits between the boxes it joins.
const LABEL_ROOM: f64 = 30.0;
/// Space between the pictures of parts that are not connected to each other.
const PART_GAP: f64 = 48.0;
/// Margin around the whole picture.
pub const MARGIN: f64 = 12.0;
/// Up to this many boxes the layout also swaps neighbours to remove crossings; above it that
/// pass costs more than it gains (it is quadratic per layer and repeated).
const TRANSPOSE_UP_TO: usize = 40;
/// Above this many layered points (boxes, plus a point per layer a long edge crosses) the
/// picture is too tall and tangled to read and the layout slows, so the page draws layers by
/// depth instead. Real neighbourhoods of 120 entities stay below it; long chains of
/// dependencies with many edges across them do not.
const POINTS_BUDGET: usize = 1500;
/// The size of a point where an edge crosses a layer.
const POINT: (f64, f64) = (6.0, 1.0);
/// How far an edge moves aside from its reverse, so both stay visible.
const BEND: f64 = 14.0;

/// A box, by its centre and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub cx: f64,
    pub cy: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn left(&self) -> f64 {
        self.cx - self.w / 2.0
    }
    pub fn right(&self) -> f64 {
        self.cx + self.w / 2.0
    }
    pub fn top(&self) -> f64 {
        self.cy - self.h / 2.0
    }
    pub fn bottom(&self) -> f64 {
        self.cy + self.h / 2.0
    }

    /// Whether the two boxes share any area (touching edges do not count).
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.left() < o.right()
            && o.left() < self.right()
            && self.top() < o.bottom()
            && o.top() < self.bottom()
    }

    /// Where the line from this box's centre towards `(x, y)` leaves the box.
    pub fn exit_towards(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - self.cx, y - self.cy);
        if dx == 0.0 && dy == 0.0 {
            return (self.cx, self.bottom());
        }
        // The smaller scale reaches a side first.
        let sx = if dx == 0.0 {
            f64::INFINITY
        } else {
            (self.w / 2.0) / dx.abs()
        };
        let sy = if dy == 0.0 {
            f64::INFINITY
        } else {
            (self.h / 2.0) / dy.abs()
        };
        let s = sx.min(sy);
        (self.cx + dx * s, self.cy + dy * s)
    }

    /// Whether `(x, y)` lies on this box's outline (within `tolerance`).
    #[cfg(test)]
    pub fn on_outline(&self, (x, y): (f64, f64), tolerance: f64) -> bool {
        let inside_x = x >= self.left() - tolerance && x <= self.right() + tolerance;
        let inside_y = y >= self.top() - tolerance && y <= self.bottom() + tolerance;
        let on_vertical =
            (x - self.left()).abs() <= tolerance || (x - self.right()).abs() <= tolerance;
        let on_horizontal =
            (y - self.top()).abs() <= tolerance || (y - self.bottom()).abs() <= tolerance;
        inside_x && inside_y && (on_vertical || on_horizontal)
    }
}

/// Boxes placed and the edges' lines between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawing {
    /// A box per size given, in the same order.
    pub rects: Vec<Rect>,
    /// A line per edge given, in the same order: from the outline of the first box, through
    /// the points it bends at, to the outline of the second; empty for an edge to itself.
    pub routes: Vec<Vec<(f64, f64)>>,
}

/// Places boxes of the given sizes (width, height) so that no two overlap and each edge
/// `(from, to)` (indices into `sizes`) points down where cycles allow, edges that cross
/// layers bending around the boxes between. `depths` (the hops from the root) order the
/// fallback's layers. Parts that are not connected sit side by side.
pub fn layout(sizes: &[(f64, f64)], edges: &[(usize, usize)], depths: &[u32]) -> Drawing {
    let (rects, bends) = sugiyama(sizes, edges).unwrap_or_else(|| {
        tracing::debug!(
            nodes = sizes.len(),
            "graph layout fell back to layers by depth"
        );
        (by_depth(sizes, depths), vec![Vec::new(); edges.len()])
    });
    let given: HashSet<(usize, usize)> = edges.iter().copied().collect();
    let routes = edges
        .iter()
        .zip(bends)
        .map(|(&(a, b), bends)| route(&rects, a, b, bends, given.contains(&(b, a))))
        .collect();
    Drawing { rects, routes }
}

/// The line from box `a` to box `b` through `bends`; when the reverse edge is drawn too
/// (`twin`), moved to the left of its direction so the two stay apart.
fn route(
    rects: &[Rect],
    a: usize,
    b: usize,
    mut bends: Vec<(f64, f64)>,
    twin: bool,
) -> Vec<(f64, f64)> {
    let (Some(ra), Some(rb)) = (rects.get(a), rects.get(b)) else {
        return Vec::new();
    };
    if a == b {
        return Vec::new();
    }
    if twin {
        let (dx, dy) = (rb.cx - ra.cx, rb.cy - ra.cy);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (nx, ny) = (-dy / len * BEND, dx / len * BEND);
        if bends.is_empty() {
            bends.push(((ra.cx + rb.cx) / 2.0 + nx, (ra.cy + rb.cy) / 2.0 + ny));
        } else {
            for p in &mut bends {
                *p = (p.0 + nx / 2.0, p.1 + ny / 2.0);
            }
        }
    }
    let first = bends.first().copied().unwrap_or((rb.cx, rb.cy));
    let last = bends.last().copied().unwrap_or((ra.cx, ra.cy));
    let mut line = Vec::with_capacity(bends.len() + 2);
    line.push(ra.exit_towards(first.0, first.1));
    line.extend(bends);
    line.push(rb.exit_towards(last.0, last.1));
    line
}

/// The point a fraction `t` (0 to 1) of the way along a line.
pub fn along(line: &[(f64, f64)], t: f64) -> Option<(f64, f64)> {
    let seg = |w: &[(f64, f64)]| ((w[1].0 - w[0].0).powi(2) + (w[1].1 - w[0].1).powi(2)).sqrt();
    let total: f64 = line.windows(2).map(seg).sum();
    let mut left = total * t.clamp(0.0, 1.0);
    for w in line.windows(2) {
        let l = seg(w);
        if l >= left && l > 0.0 {
            let f = left / l;
            return Some((
                w[0].0 + (w[1].0 - w[0].0) * f,
                w[0].1 + (w[1].1 - w[0].1) * f,
            ));
        }
        left -= l;
    }
    line.first().copied()
}

/// The layered layout and each edge's bends, or `None` when the crate panics, places boxes
/// badly, or the graph is too tall and tangled to be worth it.
#[allow(clippy::type_complexity)]
fn sugiyama(
    sizes: &[(f64, f64)],
    edges: &[(usize, usize)],
) -> Option<(Vec<Rect>, Vec<Vec<(f64, f64)>>)> {
    let n = sizes.len();
    // One layout edge per related pair, in the direction first given.
    let mut pairs: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
    for &(a, b) in edges {
        if a != b && a < n && b < n {
            pairs.entry((a.min(b), a.max(b))).or_insert((a, b));
        }
    }
    let directed: Vec<(usize, usize)> = pairs.values().copied().collect();
    let rank = ranks(n, &directed);
    // Each edge becomes a chain down the layers, with a point per layer it crosses (the crate
    // places such points but does not return them; as boxes of our own they come back).
    let mut sizes_all: Vec<(f64, f64)> = sizes.to_vec();
    let mut layered: Vec<(u32, u32)> = Vec::new();
    let mut chains: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (&key, &(a, b)) in &pairs {
        let (top, bottom) = if rank[a] < rank[b] { (a, b) } else { (b, a) };
        let mut chain = Vec::new();
        let mut prev = top;
        for _ in rank[top] + 1..rank[bottom] {
            let id = sizes_all.len();
            if id > POINTS_BUDGET {
                return None;
            }
            sizes_all.push(POINT);
            layered.push((prev as u32, id as u32));
            chain.push(id);
            prev = id;
        }
        layered.push((prev as u32, bottom as u32));
        chains.insert(key, chain);
    }
    if n == 0 {
        return Some((Vec::new(), vec![Vec::new(); edges.len()]));
    }
    // The crate numbers vertices by position, so ids are positions.
    let vertices: Vec<(u32, (f64, f64))> = sizes_all
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| (i as u32, (w, if i < n { h + LABEL_ROOM } else { h })))
        .collect();
    let config = Config {
        vertex_spacing: GAP,
        transpose: sizes_all.len() <= TRANSPOSE_UP_TO,
        // The chains already fix every layer; the crate's own edge-shortening ranking would
        // only spend time (network simplex over every point) finding the same.
        ranking_type: RankingType::Up,
        ..Config::default()
    };
    // The crate indexes and unwraps freely; an input it cannot handle must cost a plainer
    // picture, not the request.
    let parts = catch_unwind(AssertUnwindSafe(|| {
        rust_sugiyama::from_vertices_and_edges(&vertices, &layered, &config)
    }))
    .ok()?;
    let mut rects = side_by_side(parts, &sizes_all).filter(|r| !any_overlap(r))?;
    let bends = edges
        .iter()
        .map(|&(a, b)| {
            let Some(chain) = chains.get(&(a.min(b), a.max(b))) else {
                return Vec::new();
            };
            let mut points: Vec<(f64, f64)> =
                chain.iter().map(|&d| (rects[d].cx, rects[d].cy)).collect();
            if rank[a] > rank[b] {
                points.reverse();
            }
            points
        })
        .collect();
    rects.truncate(n);
    Some((rects, bends))
}

/// A layer per box: one below the lowest box pointing at it, cycles broken where a walk
/// meets them (the longest-path layering; the crate's own only shortens edges).
pub(super) fn ranks(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a < n && b < n {
            out[a].push(b);
        }
    }
    // Depth-first; reverse finishing order is a topological order once the edges back to a
    // box still on the walk are left out.
    let mut state = vec![0u8; n]; // 0 unseen, 1 on the walk, 2 done
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((v, i)) = stack.pop() {
            if let Some(&w) = out[v].get(i) {
                stack.push((v, i + 1));
                if state[w] == 0 {
                    state[w] = 1;
                    stack.push((w, 0));
                }
            } else {
                state[v] = 2;
                order.push(v);
            }
        }
    }
    let mut position = vec![0usize; n];
    for (i, &v) in order.iter().rev().enumerate() {
        position[v] = i;
    }
    let mut rank = vec![0usize; n];
    for &v in order.iter().rev() {
        for &w in &out[v] {
            if position[w] > position[v] {
                rank[w] = rank[w].max(rank[v] + 1);
            }
        }
    }
    rank
}

type Parts = Vec<(Vec<(usize, (f64, f64))>, f64, f64)>;

/// The crate's parts (centres per part, starting anywhere) moved into one picture, left to
/// right, or `None` when they do not place every box exactly once.
fn side_by_side(parts: Parts, sizes: &[(f64, f64)]) -> Option<Vec<Rect>> {
    let mut out: Vec<Option<Rect>> = vec![None; sizes.len()];
    let mut left = MARGIN;
    for (placed, _, _) in parts {
        let (mut min_x, mut max_x, mut min_y) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY);
        for &(id, (x, y)) in &placed {
            let &(w, h) = sizes.get(id)?;
            if !x.is_finite() || !y.is_finite() {
                return None;
            }
            min_x = min_x.min(x - w / 2.0);
            max_x = max_x.max(x + w / 2.0);
            min_y = min_y.min(y - h / 2.0);
        }
        for &(id, (x, y)) in &placed {
            let (w, h) = sizes[id];
            let slot = &mut out[id];
            if slot.is_some() {
                return None;
            }
            *slot = Some(Rect {
                cx: x - min_x + left,
                cy: y - min_y + MARGIN,
                w,
                h,
            });
        }
        if max_x.is_finite() {
            left += max_x - min_x + PART_GAP;
        }
    }
    out.into_iter().collect()
}

fn any_overlap(rects: &[Rect]) -> bool {
    rects
        .iter()
        .enumerate()
        .any(|(i, a)| rects[i + 1..].iter().any(|b| a.overlaps(b)))
}

/// The simple layout: a row per distance from the root, each row centred.
fn by_depth(sizes: &[(f64, f64)], depths: &[u32]) -> Vec<Rect> {
    let depth = |i: usize| depths.get(i).copied().unwrap_or(0) as usize;
    let rows = (0..sizes.len()).map(depth).max().unwrap_or(0) + 1;
    let mut width = vec![0.0_f64; rows];
    let mut height = vec![0.0_f64; rows];
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let r = depth(i);
        width[r] += w + GAP;
        height[r] = height[r].max(h);
    }
    let widest = width.iter().copied().fold(0.0, f64::max);
    let mut top = vec![MARGIN; rows];
    for r in 1..rows {
        top[r] = top[r - 1] + height[r - 1] + GAP + LABEL_ROOM;
    }
    let mut x: Vec<f64> = width.iter().map(|w| MARGIN + (widest - w) / 2.0).collect();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let r = depth(i);
            let rect = Rect {
                cx: x[r] + w / 2.0,
                cy: top[r] + height[r] / 2.0,
                w,
                h,
            };
            x[r] += w + GAP;
            rect
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (60.0 + (i % 7) as f64 * 13.0, 38.0))
            .collect()
    }

    /// No box overlaps another or leaves the canvas, and every line starts on the outline of
    /// its first box and ends on its second's (`through`: without crossing any other box).
    fn check(d: &Drawing, n: usize, edges: &[(usize, usize)], through: bool) {
        let rects = &d.rects;
        assert_eq!(rects.len(), n);
        assert_eq!(d.routes.len(), edges.len());
        for (i, a) in rects.iter().enumerate() {
            assert!(
                a.left() >= 0.0 && a.top() >= 0.0,
                "box {i} off the canvas: {a:?}"
            );
            for (j, b) in rects.iter().enumerate().skip(i + 1) {
                assert!(!a.overlaps(b), "boxes {i} and {j} overlap: {a:?} {b:?}");
            }
        }
        for (&(a, b), line) in edges.iter().zip(&d.routes) {
            if a == b {
                assert!(line.is_empty());
                continue;
            }
            let (Some(first), Some(last)) = (line.first(), line.last()) else {
                panic!("no line for {a}->{b}");
            };
            assert!(
                rects[a].on_outline(*first, 0.01),
                "{a}->{b} starts off its box"
            );
            assert!(
                rects[b].on_outline(*last, 0.01),
                "{a}->{b} ends off its box"
            );
            if !through {
                continue;
            }
            for w in line.windows(2) {
                for step in 1..20 {
                    let t = step as f64 / 20.0;
                    let p = (
                        w[0].0 + (w[1].0 - w[0].0) * t,
                        w[0].1 + (w[1].1 - w[0].1) * t,
                    );
                    for (k, r) in rects.iter().enumerate() {
                        let inside = p.0 > r.left() + 1.0
                            && p.0 < r.right() - 1.0
                            && p.1 > r.top() + 1.0
                            && p.1 < r.bottom() - 1.0;
                        assert!(!inside, "{a}->{b} crosses box {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn boxes_never_overlap_and_lines_join_their_boxes_around_the_others() {
        // A tree with a shared dependency, a 2-cycle, a 3-cycle, a self-loop, a duplicate,
        // and edges that skip layers (0->4, 0->7).
        let edges = [
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 4),
            (2, 4),
            (4, 5),
            (5, 4),
            (3, 6),
            (6, 7),
            (7, 3),
            (2, 2),
            (0, 1),
            (0, 4),
            (0, 7),
        ];
        let depths = [0, 1, 1, 1, 2, 3, 2, 3];
        let d = layout(&sizes(8), &edges, &depths);
        check(&d, 8, &edges, true);
        // The layered layout itself placed them, not the fallback.
        assert_eq!(
            sugiyama(&sizes(8), &edges).map(|s| s.0),
            Some(d.rects.clone())
        );
        // Edges point down where there is no cycle, and bend where they skip a layer.
        let r = &d.rects;
        assert!(r[0].cy < r[1].cy && r[1].cy < r[4].cy);
        assert_eq!(d.routes[0].len(), 2, "0->1 is straight");
        assert!(d.routes[12].len() > 2, "0->4 bends through layer 1");
        // An edge and its reverse do not draw over each other.
        assert_ne!(d.routes[5][1..], d.routes[6][1..]);
    }

    #[test]
    fn parts_that_are_not_connected_sit_side_by_side() {
        let edges = [(0, 1), (2, 3), (3, 4)];
        let d = layout(&sizes(6), &edges, &[0, 1, 0, 1, 2, 0]);
        check(&d, 6, &edges, true);
        assert_eq!(
            sugiyama(&sizes(6), &edges).map(|s| s.0),
            Some(d.rects.clone())
        );
        let right_of = |a: &Rect, b: &Rect| a.left() >= b.right();
        let r = &d.rects;
        assert!(
            r[2..5]
                .iter()
                .all(|x| r[..2].iter().all(|l| right_of(x, l)))
        );
    }

    #[test]
    fn tall_tangled_graphs_are_drawn_by_depth_instead() {
        assert_eq!(ranks(3, &[(0, 1), (1, 2), (0, 2)]), [0, 1, 2]);
        assert_eq!(ranks(3, &[(0, 1), (1, 0), (1, 2)]), [0, 1, 2]);
        // A chain of 100 with edges jumping 50 layers: thousands of points, a useless picture.
        let n = 100;
        let mut edges: Vec<(usize, usize)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        edges.extend((0..50).map(|i| (i, i + 50)));
        let s = sizes(n);
        let depths: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
        assert_eq!(sugiyama(&s, &edges), None);
        let d = layout(&s, &edges, &depths);
        assert_eq!(d.rects, by_depth(&s, &depths));
        check(&d, n, &edges, false);
    }

    #[test]
    fn the_fallback_places_rows_by_depth_without_overlap() {
        let s = sizes(9);
        let depths = [0, 1, 1, 1, 2, 2, 2, 2, 3];
        let rects = by_depth(&s, &depths);
        for (i, a) in rects.iter().enumerate() {
            assert!(rects[i + 1..].iter().all(|b| !a.overlaps(b)));
        }
        assert!(rects[0].cy < rects[1].cy && rects[4].cy < rects[8].cy);
        assert_eq!(rects[1].cy, rects[3].cy);
    }

    #[test]
    fn points_along_a_line_are_measured_by_length() {
        let l = [(0.0, 0.0), (0.0, 10.0), (30.0, 10.0)];
        assert_eq!(along(&l, 0.5), Some((10.0, 10.0)));
        assert_eq!(along(&l, 0.0), Some((0.0, 0.0)));
        assert_eq!(along(&l, 1.0), Some((30.0, 10.0)));
        assert_eq!(along(&[], 0.5), None);
    }

    #[test]
    fn a_large_neighbourhood_lays_out_quickly() {
        // 120 boxes: a root, 12 neighbours, each with 9 more, some shared and some cycles.
        let n = 120;
        let depths: Vec<u32> = (0..n).map(|i| (i > 0) as u32 + (i > 12) as u32).collect();
        let mut edges: Vec<(usize, usize)> = (1..=12).map(|i| (0, i)).collect();
        for i in 13..n {
            edges.push((1 + (i - 13) % 12, i));
            if i % 5 == 0 {
                edges.push((i, 1 + (i * 7) % 12));
            }
            if i % 11 == 0 && i + 1 < n {
                edges.push((i, i + 1));
            }
        }
        let s = sizes(n);
        let start = std::time::Instant::now();
        let d = layout(&s, &edges, &depths);
        // A figure to compare, not an assertion: build with --release to read it.
        println!(
            "layout of {n} boxes, {} edges: {:?}",
            edges.len(),
            start.elapsed()
        );
        check(&d, n, &edges, false);
        assert_eq!(sugiyama(&s, &edges).map(|s| s.0), Some(d.rects));
    }
}
