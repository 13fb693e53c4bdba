//! A range of points as one line of block characters, `▁▂▃▄▅▆▇█`, with `|` where a deploy fell
//! (Flickr's "Last Site Deploy" line on every graph). Pure.

const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Where a deploy falls on the line.
pub const MARK: char = '|';

/// A rendered range.
#[derive(Debug, Clone, PartialEq)]
pub struct Spark {
    /// One character per cell (a space where there was no data), marks before their cell.
    pub line: String,
    pub min: f64,
    pub max: f64,
    /// The newest value.
    pub last: f64,
}

/// Renders `points` (`(unix seconds, value)`) over `[from, until]` in `cells` characters, each
/// the mean of the points in its stretch (a point on a boundary belongs to the cell it ends,
/// as a source's value at a time sums up the stretch before it), scaled between the range's minimum and maximum (a flat range sits
/// in the middle). `marks` are times to show as [`MARK`]; one up to a cell after `until` is
/// shown in the last cell. `None` when no point is a finite number.
pub fn render(
    points: &[(f64, f64)],
    from: f64,
    until: f64,
    cells: usize,
    marks: &[f64],
) -> Option<Spark> {
    let cells = cells.max(1);
    let span = (until - from).max(f64::MIN_POSITIVE);
    let width = span / cells as f64;
    // The epsilon keeps a point on a boundary in the cell it ends despite rounding.
    let cell_of = |t: f64| {
        ((t - from) / width - 1.0 - 1e-9)
            .ceil()
            .clamp(0.0, (cells - 1) as f64) as usize
    };
    let inside: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, v)| v.is_finite() && *t >= from && *t <= until)
        .collect();
    let (_, last) = *inside.last()?;
    let min = inside.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = inside.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let mut sums = vec![(0.0, 0usize); cells];
    for (t, v) in &inside {
        let cell = &mut sums[cell_of(*t)];
        cell.0 += v;
        cell.1 += 1;
    }
    let mut marked = vec![false; cells];
    // A deploy in the moments after `until` (a whole second, at most a cell, ago) still shows.
    for t in marks.iter().filter(|t| **t >= from && **t <= until + width) {
        marked[cell_of(*t)] = true;
    }
    let mut line = String::new();
    for (i, (sum, n)) in sums.into_iter().enumerate() {
        if marked[i] {
            line.push(MARK);
        }
        line.push(if n == 0 {
            ' '
        } else if max == min {
            LEVELS[3]
        } else {
            let level = ((sum / n as f64 - min) / (max - min) * 7.0).round() as usize;
            LEVELS[level.min(7)]
        });
    }
    Some(Spark {
        line,
        min,
        max,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<(f64, f64)> {
        // Values 0, 1, 2, … at the ends of cells 1, 2, 3, …
        (0..n).map(|i| (i as f64 + 1.0, i as f64)).collect()
    }

    #[test]
    fn a_ramp_climbs_every_level() {
        let spark = render(&ramp(8), 0.0, 8.0, 8, &[]).unwrap();
        assert_eq!(spark.line, "▁▂▃▄▅▆▇█");
        assert_eq!((spark.min, spark.max, spark.last), (0.0, 7.0, 7.0));
    }

    #[test]
    fn cells_average_their_points() {
        // 16 points in 4 cells: means 1.5, 5.5, 9.5, 13.5 of a 0..15 range: levels 1, 3, 4, 6.
        let spark = render(&ramp(16), 0.0, 16.0, 4, &[]).unwrap();
        assert_eq!(spark.line, "▂▄▅▇");
    }

    #[test]
    fn gaps_are_spaces_and_flat_ranges_sit_in_the_middle() {
        let points = [(1.0, 5.0), (2.0, 5.0), (4.0, 5.0)];
        assert_eq!(render(&points, 0.0, 4.0, 4, &[]).unwrap().line, "▄▄ ▄");
        let with_nan = [
            (1.0, 1.0),
            (2.0, f64::NAN),
            (3.0, 3.0),
            (4.0, f64::INFINITY),
        ];
        let spark = render(&with_nan, 0.0, 4.0, 4, &[]).unwrap();
        assert_eq!(spark.line, "▁ █ ");
        assert_eq!(spark.last, 3.0);
        assert_eq!(render(&[(0.0, f64::NAN)], 0.0, 4.0, 4, &[]), None);
        assert_eq!(render(&[], 0.0, 4.0, 4, &[]), None);
    }

    #[test]
    fn deploys_are_marked_before_their_cell() {
        let spark = render(&ramp(8), 0.0, 8.0, 8, &[3.5, 3.9, 8.5, 100.0]).unwrap();
        assert_eq!(spark.line, "▁▂▃|▄▅▆▇|█");
        let start = render(&ramp(8), 0.0, 8.0, 8, &[0.0, 0.5]).unwrap();
        assert_eq!(start.line, "|▁▂▃▄▅▆▇█");
    }

    #[test]
    fn points_outside_the_range_are_ignored() {
        let points = [(-5.0, 100.0), (1.0, 1.0), (2.0, 2.0), (9.0, 100.0)];
        let spark = render(&points, 0.0, 2.0, 2, &[]).unwrap();
        assert_eq!((spark.line.as_str(), spark.max), ("▁█", 2.0));
    }
}
