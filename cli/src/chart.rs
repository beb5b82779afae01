//! Charts of a figure over time: bars in the terminal, and an SVG line chart (axes, labels,
//! one line per site) that a browser shows.

use std::fmt::Write as _;
use std::io::Write;

use ledger_core::stats::Width;

/// One line of a chart: a site's points `(unix seconds, label, value)`, in time order.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(i64, String, u64)>,
}

/// A value for people: durations (`*_us`) in minutes.
fn shown(figure: &str, v: u64) -> f64 {
    if figure.ends_with("_us") {
        v as f64 / 60_000_000.0
    } else {
        v as f64
    }
}

fn unit(figure: &str) -> &'static str {
    if figure.ends_with("_us") {
        "minutes"
    } else {
        "count"
    }
}

/// Bars in the terminal: one line per interval and site, scaled to the largest value.
///
/// # Errors
///
/// When `out` cannot be written.
pub(crate) fn terminal(
    out: &mut impl Write,
    series: &[Series],
    figure: &str,
) -> std::io::Result<()> {
    const WIDTH: f64 = 50.0;
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| shown(figure, p.2)))
        .fold(0.0_f64, f64::max);
    writeln!(out, "{figure} ({})", unit(figure))?;
    let mut lines: Vec<(i64, &str, &str, f64)> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(move |p| (p.0, p.1.as_str(), s.name.as_str(), shown(figure, p.2)))
        })
        .collect();
    lines.sort_by(|a, b| (a.0, a.2).cmp(&(b.0, b.2)));
    for (_, label, site, v) in lines {
        let len = if max > 0.0 {
            (v / max * WIDTH).round() as usize
        } else {
            0
        };
        writeln!(out, "{label}  {site:<8} {:<50} {v:.1}", "█".repeat(len))?;
    }
    Ok(())
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG line chart of `figure` over time, one line per site, with axes, ticks and a legend.
pub(crate) fn svg(series: &[Series], figure: &str, by: Width, tz: &str) -> String {
    const W: f64 = 900.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 150.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 90.0;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let xs: Vec<i64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let (x0, x1) = (
        xs.iter().copied().min().unwrap_or(0),
        xs.iter().copied().max().unwrap_or(0),
    );
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| shown(figure, p.2)))
        .fold(0.0_f64, f64::max);
    let top = nice_ceiling(max);
    let x = |t: i64| {
        if x1 == x0 {
            LEFT + pw / 2.0
        } else {
            LEFT + (t - x0) as f64 / (x1 - x0) as f64 * pw
        }
    };
    let y = |v: f64| TOP + ph - v / top * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{} per {by} ({tz})</text>"#,
        LEFT + pw / 2.0,
        escape(figure)
    );
    // Axes.
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        TOP + ph,
        TOP + ph,
        LEFT + pw,
        TOP + ph
    );
    for i in 0..=5 {
        let v = top * f64::from(i) / 5.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            LEFT + 1.0,
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            trim(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        unit(figure)
    );
    // Time labels: at most 8, from the first series that has the point.
    let mut labels: Vec<(i64, &str)> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.0, p.1.as_str())))
        .collect();
    labels.sort_unstable();
    labels.dedup_by_key(|l| l.0);
    let step = labels.len().div_ceil(8).max(1);
    for (t, label) in labels.iter().step_by(step) {
        let xx = x(*t);
        let _ = writeln!(
            s,
            r#"<line x1="{xx}" y1="{}" x2="{xx}" y2="{}" stroke="black"/><text x="{xx}" y="{}" text-anchor="start" transform="rotate(30 {xx} {})">{}</text>"#,
            TOP + ph,
            TOP + ph + 5.0,
            TOP + ph + 18.0,
            TOP + ph + 18.0,
            escape(label)
        );
    }
    for (i, line) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = line
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(shown(figure, p.2))))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for p in &points {
            if let Some((px, py)) = p.split_once(',') {
                let _ = writeln!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#);
            }
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            LEFT + pw + 15.0,
            LEFT + pw + 40.0,
            LEFT + pw + 46.0,
            ly + 4.0,
            escape(&line.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round number at or above `v` for the top of the axis.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * magnitude >= v {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_axes_labels_and_a_line_per_site() {
        let series = vec![
            Series {
                name: "SiteA".into(),
                points: vec![(0, "00:00".into(), 3), (3600, "01:00".into(), 7)],
            },
            Series {
                name: "SiteB".into(),
                points: vec![(0, "00:00".into(), 1)],
            },
        ];
        let svg = svg(&series, "calls", Width::Hour, "UTC");
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">SiteA<") && svg.contains(">SiteB<"));
        assert!(svg.contains("calls per hour (UTC)"));
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
    }
}
