//! `observatory/dashboard.svg`: the last hour of the daemon's samples as four stacked
//! charts (throughput, p99 latency, cache hit ratio, bytes per tier), drawn anew on every
//! read. It is meant to be looked at: a browser opened on the mount shows it as it is, so
//! it is self-contained SVG 1.1 (presentation attributes only: no scripts, stylesheets or
//! fonts of its own) with a viewBox, and every number in it is finite whatever it is fed.

use std::ops::Range;

use chrono::DateTime;

/// One sampling period's figures.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// When it was taken: microseconds since the Unix epoch (UTC).
    pub at: i64,
    /// Operations of every kind per second over the period.
    pub ops_per_sec: f64,
    /// The period's 99th percentile latency over every kind of operation, in microseconds.
    pub p99_us: f64,
    /// Cache hits / (hits + misses) over the period; None when nothing was read.
    pub hit_ratio: Option<f64>,
    /// Bytes stored per tier: hot, warm, cold.
    pub tier_bytes: [u64; 3],
}

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
/// Time ticks fall on the wall clock's tens of minutes.
const TIME_TICK: i64 = 10 * MINUTE;
/// Samples further apart than this (and than three typical periods) are not joined by a
/// line: the daemon was not sampling in between (it was down, or stalled).
const MIN_GAP: i64 = 15 * SECOND;
/// Rates and latencies are drawn up to this: beyond it a figure is nonsense, and keeping
/// every coordinate far from f64's end keeps them finite.
const CEILING: f64 = 1e15;

const WIDTH: f64 = 960.0;
const HEADER: f64 = 70.0;
/// One chart, from its title to its time labels and the space after them.
const PANEL: f64 = 200.0;
const FOOTER: f64 = 30.0;
const HEIGHT: f64 = HEADER + 4.0 * PANEL + FOOTER;
/// The plots' left edge: room for the value labels and the rotated axis label.
const LEFT: f64 = 100.0;
const RIGHT: f64 = 930.0;
/// A plot's top, below its panel's top.
const PLOT_TOP: f64 = 32.0;
const PLOT_HEIGHT: f64 = 130.0;

const INK: &str = "#2f3437";
const MUTED: &str = "#6b7075";
const GRID: &str = "#e9ebed";
const AXIS: &str = "#b4b9be";
const BLUE: &str = "#4c72b0";
const RED: &str = "#c44e52";
const GREEN: &str = "#55a868";
/// Hot, warm, cold.
const TIERS: [(&str, &str); 3] = [("hot", "#dd8452"), ("warm", "#c4ad5e"), ("cold", "#64b5cd")];
const WAITING: &str = "waiting for the first sample";

/// The SVG of the hour ending at `now` (microseconds since the epoch), from `samples` (any order; those outside the hour are left out).
pub fn render(samples: &[Sample], now: i64) -> Vec<u8> {
    let start = now.saturating_sub(HOUR);
    let mut hour: Vec<&Sample> = samples
        .iter()
        .filter(|s| (start..=now).contains(&s.at))
        .collect();
    hour.sort_by_key(|s| s.at);
    let times: Vec<i64> = hour.iter().map(|s| s.at).collect();
    let period = typical_period(&times);
    let frame = Frame {
        start,
        now,
        times: &times,
        gap: period.map_or(MIN_GAP, |p| p.saturating_mul(3).max(MIN_GAP)),
    };

    let mut out = String::new();
    out.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\" fill=\"{INK}\">\n\
         <title>IsLab DB: the last hour</title>\n\
         <desc>Throughput, p99 latency, cache hit ratio and bytes per tier over the hour \
         ending {}, from the daemon's samples.</desc>\n\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\n",
        clock(now, "%Y-%m-%d %H:%M:%S UTC"),
    ));
    header(&mut out, &frame, period);

    let ops: Vec<Option<f64>> = hour.iter().map(|s| clean(s.ops_per_sec)).collect();
    let scale = Scale::linear(largest(&ops), rate);
    let chart = Chart {
        index: 0,
        id: "throughput",
        title: "Throughput",
        axis: "operations per second",
        scale: &scale,
    };
    let now_text = now_value(&ops, rate);
    chart.frame(&mut out, &frame, &[(&now_text, BLUE)]);
    chart.series(
        &mut out,
        &frame,
        &ops,
        BLUE,
        true,
        "no figures in this hour",
    );

    let p99: Vec<Option<f64>> = hour
        .iter()
        .map(|s| clean(s.p99_us).map(|us| us / 1000.0))
        .collect();
    let scale = Scale::linear(largest(&p99), millis);
    let chart = Chart {
        index: 1,
        id: "latency",
        title: "p99 latency",
        axis: "latency",
        scale: &scale,
    };
    chart.frame(&mut out, &frame, &[(&now_value(&p99, millis), RED)]);
    chart.series(
        &mut out,
        &frame,
        &p99,
        RED,
        false,
        "no figures in this hour",
    );

    let hits: Vec<Option<f64>> = hour
        .iter()
        .map(|s| s.hit_ratio.and_then(clean).map(|r| r.min(1.0)))
        .collect();
    let scale = Scale::linear(1.0, digits);
    let chart = Chart {
        index: 2,
        id: "hit-ratio",
        title: "Cache hit ratio",
        axis: "hits / lookups",
        scale: &scale,
    };
    let now_text = match hour.last() {
        Some(s) if s.hit_ratio.is_none() => "nothing read".to_string(),
        _ => now_value(&hits, |r| format!("{r:.2}")),
    };
    chart.frame(&mut out, &frame, &[(&now_text, GREEN)]);
    chart.series(
        &mut out,
        &frame,
        &hits,
        GREEN,
        true,
        "nothing read in this hour",
    );

    tiers(&mut out, &frame, &hour);

    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{MUTED}\">time (UTC)</text>\n\
         </svg>\n",
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 10.0,
    ));
    out.into_bytes()
}

/// The hour drawn, and the instants of its samples in order.
struct Frame<'a> {
    start: i64,
    now: i64,
    times: &'a [i64],
    /// Samples further apart than this are not joined.
    gap: i64,
}

impl Frame<'_> {
    fn x(&self, t: i64) -> f64 {
        // `t` is in the hour: the difference neither overflows nor exceeds an hour.
        LEFT + (t - self.start) as f64 / HOUR as f64 * (RIGHT - LEFT)
    }

    /// The unbroken stretches of a series: samples where it has a value, each no gap
    /// after the one before.
    fn stretches(&self, present: impl Fn(usize) -> bool) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut open: Option<usize> = None;
        for i in 0..self.times.len() {
            if !present(i) {
                out.extend(open.take().map(|s| s..i));
                continue;
            }
            let joined = i > 0 && self.times[i] - self.times[i - 1] <= self.gap;
            match open {
                Some(s) if !joined => {
                    out.push(s..i);
                    open = Some(i);
                }
                Some(_) => {}
                None => open = Some(i),
            }
        }
        out.extend(open.map(|s| s..self.times.len()));
        out
    }

    /// The tens of minutes in the hour.
    fn time_ticks(&self) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = self
            .start
            .checked_sub(self.start.rem_euclid(TIME_TICK))
            .and_then(|t| {
                if t < self.start {
                    t.checked_add(TIME_TICK)
                } else {
                    Some(t)
                }
            });
        while let Some(at) = t.filter(|at| *at <= self.now) {
            out.push(at);
            t = at.checked_add(TIME_TICK);
        }
        out
    }
}

/// The median time between samples: how often the daemon samples.
fn typical_period(times: &[i64]) -> Option<i64> {
    let mut steps: Vec<i64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    steps.sort_unstable();
    steps.get(steps.len() / 2).copied()
}

fn header(out: &mut String, frame: &Frame<'_>, period: Option<i64>) {
    let mut about = format!(
        "{} – {} UTC, {}",
        clock(frame.start, "%H:%M"),
        clock(frame.now, "%H:%M"),
        clock(frame.now, "%Y-%m-%d"),
    );
    match frame.times.last() {
        None => about.push_str(" · no samples yet"),
        Some(last) => {
            about.push_str(&format!(" · {} samples", frame.times.len()));
            if let Some(p) = period {
                about.push_str(&format!(", one every {} s", digits(p as f64 / 1e6)));
            }
            about.push_str(&format!(" · latest {} UTC", clock(*last, "%H:%M:%S")));
        }
    }
    out.push_str(&format!(
        "<text x=\"24\" y=\"32\" font-size=\"20\" font-weight=\"bold\">IsLab DB · the last hour</text>\n\
         <text x=\"24\" y=\"54\" font-size=\"12\" fill=\"{MUTED}\">{about}</text>\n"
    ));
}

/// How a chart's values map to heights, and the values it labels.
struct Scale {
    /// The value at the plot's top: positive and finite.
    top: f64,
    ticks: Vec<(f64, String)>,
}

impl Scale {
    /// From 0 to the first round value at or above `max`, in at most five steps of 1, 2,
    /// 2.5 or 5 times a power of ten (the smallest such step).
    fn linear(max: f64, label: impl Fn(f64) -> String) -> Scale {
        // Below this (or no figures at all) the chart shows 0 to 1, not a microscope.
        let max = if max >= 1e-6 { max } else { 1.0 };
        let power = 10f64.powf((max / 5.0).log10().floor());
        // Ten times `power` is at least a fifth of `max`: it always fits.
        let step = [1.0, 2.0, 2.5, 5.0]
            .into_iter()
            .map(|m| m * power)
            .find(|s| (max / s).ceil() <= 5.0)
            .unwrap_or(10.0 * power);
        let steps = (max / step).ceil();
        let ticks = (0..=steps as usize)
            .map(|i| {
                let v = i as f64 * step;
                (v, label(v))
            })
            .collect();
        Scale {
            top: steps * step,
            ticks,
        }
    }

    /// A linear scale in the binary unit that suits `max` (so ticks read 0, 50, 100 MiB).
    fn bytes(max: f64) -> Scale {
        // Whole bytes at least: an empty store's chart reads 0 to 5 B, not 0.2 B steps.
        let max = max.max(5.0);
        let power = binary_power(max);
        let unit = 1024f64.powi(power as i32);
        let scaled = Scale::linear(max / unit, |v| format!("{} {}", digits(v), UNITS[power]));
        Scale {
            top: scaled.top * unit,
            ticks: scaled
                .ticks
                .into_iter()
                .map(|(v, label)| (v * unit, label))
                .collect(),
        }
    }
}

/// One of the four charts.
struct Chart<'a> {
    index: usize,
    id: &'static str,
    title: &'static str,
    /// The value axis's label.
    axis: &'static str,
    scale: &'a Scale,
}

impl Chart<'_> {
    fn top(&self) -> f64 {
        HEADER + self.index as f64 * PANEL
    }

    fn plot_top(&self) -> f64 {
        self.top() + PLOT_TOP
    }

    fn bottom(&self) -> f64 {
        self.plot_top() + PLOT_HEIGHT
    }

    fn y(&self, v: f64) -> f64 {
        self.bottom() - (v / self.scale.top).clamp(0.0, 1.0) * PLOT_HEIGHT
    }

    /// Opens the chart's group and draws all but its series: title and current values,
    /// grid, ticks, axes; and, when there are no samples, says so.
    fn frame(&self, out: &mut String, frame: &Frame<'_>, now: &[(&str, &str)]) {
        let (top, bottom) = (self.plot_top(), self.bottom());
        out.push_str(&format!(
            "<g id=\"{}\" class=\"chart\">\n\
             <text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"15\" font-weight=\"bold\">{}",
            self.id,
            self.top() + 18.0,
            self.title,
        ));
        for (i, (text, color)) in now.iter().enumerate() {
            let dx = if i == 0 { 12 } else { 10 };
            out.push_str(&format!(
                "<tspan dx=\"{dx}\" font-weight=\"normal\" fill=\"{color}\">{text}</tspan>"
            ));
        }
        out.push_str("</text>\n");
        for (v, label) in &self.scale.ticks {
            let y = self.y(*v);
            out.push_str(&format!(
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>\n\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{MUTED}\">{label}</text>\n",
                LEFT - 8.0,
                y + 4.0,
            ));
        }
        for t in frame.time_ticks() {
            let x = frame.x(t);
            out.push_str(&format!(
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{GRID}\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}</text>\n",
                bottom + 15.0,
                clock(t, "%H:%M"),
            ));
        }
        out.push_str(&format!(
            "<polyline points=\"{LEFT},{top:.1} {LEFT},{bottom:.1} {RIGHT},{bottom:.1}\" \
             fill=\"none\" stroke=\"{AXIS}\"/>\n\
             <text transform=\"translate(20 {:.1}) rotate(-90)\" text-anchor=\"middle\" \
             fill=\"{MUTED}\">{}</text>\n",
            (top + bottom) / 2.0,
            self.axis,
        ));
        if frame.times.is_empty() {
            self.note(out, WAITING);
        }
    }

    /// A message across the middle of the plot.
    fn note(&self, out: &mut String, text: &str) {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\" \
             font-style=\"italic\" fill=\"{MUTED}\">{text}</text>\n",
            (LEFT + RIGHT) / 2.0,
            (self.plot_top() + self.bottom()) / 2.0 + 4.0,
        ));
    }

    /// Draws one series as a line (with the area under it shaded when `area`), and closes
    /// the chart's group. `empty`: what to say when there are samples but no values.
    fn series(
        &self,
        out: &mut String,
        frame: &Frame<'_>,
        values: &[Option<f64>],
        color: &str,
        area: bool,
        empty: &str,
    ) {
        let stretches = frame.stretches(|i| values[i].is_some());
        if stretches.is_empty() && !frame.times.is_empty() {
            self.note(out, empty);
        }
        let point = |i: usize| (frame.x(frame.times[i]), self.y(values[i].unwrap_or(0.0)));
        for run in stretches {
            if run.len() == 1 {
                dot(out, point(run.start), color);
                continue;
            }
            let line = points(run.clone().map(point));
            if area {
                let (first, last) = (
                    frame.x(frame.times[run.start]),
                    frame.x(frame.times[run.end - 1]),
                );
                out.push_str(&format!(
                    "<polygon points=\"{line} {last:.1},{bottom:.1} {first:.1},{bottom:.1}\" \
                     fill=\"{color}\" fill-opacity=\"0.15\"/>\n",
                    bottom = self.bottom(),
                ));
            }
            polyline(out, &line, color);
        }
        out.push_str("</g>\n");
    }
}

/// The tiers' chart: stacked areas, hot at the bottom, with a legend.
fn tiers(out: &mut String, frame: &Frame<'_>, hour: &[&Sample]) {
    // The top of each tier's band: hot, hot + warm, all three (exact in u128, then f64).
    let stacked: Vec<[f64; 3]> = hour
        .iter()
        .map(|s| {
            let [hot, warm, cold] = s.tier_bytes.map(u128::from);
            [hot, hot + warm, hot + warm + cold].map(|b| b as f64)
        })
        .collect();
    let scale = Scale::bytes(stacked.iter().map(|s| s[2]).fold(0.0, f64::max));
    let chart = Chart {
        index: 3,
        id: "tiers",
        title: "Bytes per tier",
        axis: "bytes stored",
        scale: &scale,
    };
    let now: Vec<(String, &str)> = TIERS
        .iter()
        .enumerate()
        .map(|(k, (name, color))| {
            let value = hour
                .last()
                .map_or("–".to_string(), |s| bytes(s.tier_bytes[k] as f64));
            (format!("{name} {value}"), *color)
        })
        .collect();
    let now: Vec<(&str, &str)> = now.iter().map(|(t, c)| (t.as_str(), *c)).collect();
    chart.frame(out, frame, &now);

    for (k, (name, color)) in TIERS.iter().enumerate() {
        let x = RIGHT - 200.0 + 70.0 * k as f64;
        let y = chart.top() + 8.0;
        out.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{color}\" \
             fill-opacity=\"0.6\" stroke=\"{color}\"/>\n\
             <text x=\"{}\" y=\"{}\">{name}</text>\n",
            x + 17.0,
            y + 10.5,
        ));
    }

    let point = |i: usize, band: Option<usize>| {
        let v = band.map_or(0.0, |b| stacked[i][b]);
        (frame.x(frame.times[i]), chart.y(v))
    };
    for run in frame.stretches(|_| true) {
        for (k, (_, color)) in TIERS.iter().enumerate() {
            if run.len() == 1 {
                dot(out, point(run.start, Some(k)), color);
                continue;
            }
            let upper = points(run.clone().map(|i| point(i, Some(k))));
            let lower = points(run.clone().rev().map(|i| point(i, k.checked_sub(1))));
            out.push_str(&format!(
                "<polygon points=\"{upper} {lower}\" fill=\"{color}\" fill-opacity=\"0.45\"/>\n"
            ));
            polyline(out, &upper, color);
        }
    }
    out.push_str("</g>\n");
}

fn points(points: impl Iterator<Item = (f64, f64)>) -> String {
    let all: Vec<String> = points.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    all.join(" ")
}

fn polyline(out: &mut String, points: &str, color: &str) {
    out.push_str(&format!(
        "<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\" \
         stroke-linejoin=\"round\"/>\n"
    ));
}

/// A lone sample, which a line cannot show.
fn dot(out: &mut String, (x, y): (f64, f64), color: &str) {
    out.push_str(&format!(
        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.2\" fill=\"{color}\"/>\n"
    ));
}

/// A figure fit to draw: finite, and within 0..=CEILING.
fn clean(v: f64) -> Option<f64> {
    v.is_finite().then(|| v.clamp(0.0, CEILING))
}

fn largest(values: &[Option<f64>]) -> f64 {
    values.iter().flatten().copied().fold(0.0, f64::max)
}

/// The latest sample's value, written by `write`.
fn now_value(values: &[Option<f64>], write: impl Fn(f64) -> String) -> String {
    match values.last() {
        Some(Some(v)) => write(*v),
        Some(None) => "n/a".to_string(),
        None => "–".to_string(),
    }
}

/// `t` in UTC as `format` says; empty for an instant chrono cannot represent.
fn clock(t: i64, format: &str) -> String {
    DateTime::from_timestamp_micros(t).map_or(String::new(), |d| d.format(format).to_string())
}

/// `v` to three significant digits, without trailing zeros: 0, 0.25, 12.5, 950.
fn digits(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `v` with an SI prefix: 950, 1.2k, 3.4M.
fn si(v: f64) -> String {
    // Each prefix is taken a little early, so that 999.7 reads 1k rather than 1000.
    for (factor, prefix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if v.abs() >= factor * 0.9995 {
            return format!("{}{prefix}", digits(v / factor));
        }
    }
    digits(v)
}

/// Operations per second: 950 ops/s, 1.2k ops/s.
fn rate(v: f64) -> String {
    format!("{} ops/s", si(v))
}

/// Milliseconds, or seconds from a thousand of them: 0.25 ms, 3.4 ms, 1.5 s.
fn millis(v: f64) -> String {
    if v >= 999.5 {
        format!("{} s", si(v / 1000.0))
    } else {
        format!("{} ms", digits(v))
    }
}

const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// The power of 1024 whose unit writes `v` best (taken a little early, as in `si`).
fn binary_power(v: f64) -> usize {
    (1..UNITS.len())
        .rev()
        .find(|p| v >= 1024f64.powi(*p as i32) * 0.9995)
        .unwrap_or(0)
}

/// 512 B, 56 MiB, 1.2 GiB.
fn bytes(v: f64) -> String {
    let power = binary_power(v);
    format!(
        "{} {}",
        digits(v / 1024f64.powi(power as i32)),
        UNITS[power]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io;
    use std::path::Path;
    use std::process::Command;

    /// 2026-05-01T14:05:00Z.
    const NOW: i64 = 1_777_644_300 * SECOND;

    /// The last 55 minutes at one sample every 5 s, the load rising, with the daemon down
    /// from 35 to 30 minutes ago and nothing read for a few minutes.
    fn rising() -> Vec<Sample> {
        let first = NOW - 55 * MINUTE;
        (0..=55 * 12)
            .map(|i| first + i * 5 * SECOND)
            .filter(|t| !(NOW - 35 * MINUTE..NOW - 30 * MINUTE).contains(t))
            .map(|at| {
                let f = (at - first) as f64 / (55 * MINUTE) as f64;
                let wobble = (f * 60.0).sin();
                let quiet = (NOW - 12 * MINUTE..NOW - 9 * MINUTE).contains(&at);
                Sample {
                    at,
                    ops_per_sec: 200.0 + 3800.0 * f * f + 150.0 * wobble,
                    p99_us: 800.0 + 5200.0 * f + 300.0 * wobble,
                    hit_ratio: (!quiet).then_some(0.95 - 0.15 * f + 0.02 * wobble),
                    tier_bytes: [
                        ((8.0 + 40.0 * f) * 1048576.0) as u64,
                        ((30.0 + 90.0 * f) * 1048576.0) as u64,
                        ((150.0 + 60.0 * f) * 1048576.0) as u64,
                    ],
                }
            })
            .collect()
    }

    fn text(svg: &[u8]) -> &str {
        std::str::from_utf8(svg).expect("UTF-8")
    }

    /// The charts' groups, by id.
    fn charts<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("chart"))
            .collect()
    }

    fn texts(node: roxmltree::Node<'_, '_>) -> Vec<String> {
        node.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| {
                n.descendants()
                    .filter(|t| t.is_text())
                    .filter_map(|t| t.text())
                    .collect()
            })
            .collect()
    }

    fn count(node: roxmltree::Node<'_, '_>, tag: &str) -> usize {
        node.descendants().filter(|n| n.has_tag_name(tag)).count()
    }

    #[test]
    fn it_is_svg_with_a_viewbox_and_a_chart_for_each_figure() {
        let svg = render(&rising(), NOW);
        let doc = roxmltree::Document::parse(text(&svg)).expect("XML");
        let root = doc.root_element();
        assert!(root.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
        let view: Vec<f64> = root
            .attribute("viewBox")
            .expect("viewBox")
            .split(' ')
            .map(|n| n.parse().expect("number"))
            .collect();
        assert_eq!(view, [0.0, 0.0, WIDTH, HEIGHT]);
        let charts = charts(&doc);
        let ids: Vec<_> = charts.iter().map(|c| c.attribute("id")).collect();
        assert_eq!(
            ids,
            [
                Some("throughput"),
                Some("latency"),
                Some("hit-ratio"),
                Some("tiers")
            ]
        );
        for chart in &charts {
            let texts = texts(*chart);
            // Ticks on both axes: values with units, and times.
            assert!(texts.len() >= 8, "{texts:?}");
            for time in ["13:10", "13:20", "14:00"] {
                assert!(texts.iter().any(|t| t == time), "{time} in {texts:?}");
            }
            assert!(!texts.iter().any(|t| t == WAITING));
            // The daemon was down for five minutes: each line is broken there.
            assert!(
                count(*chart, "polyline") >= 3,
                "{:?}",
                chart.attribute("id")
            );
        }
        let title = |i: usize| texts(charts[i])[0].clone();
        // The last sample's figures, next to each title.
        assert_eq!(title(0), "Throughput3.95k ops/s");
        assert_eq!(title(1), "p99 latency5.91 ms");
        assert_eq!(title(2), "Cache hit ratio0.79");
        assert_eq!(title(3), "Bytes per tierhot 48 MiBwarm 120 MiBcold 210 MiB");
        // The legend names the tiers.
        let legend = texts(charts[3]);
        for tier in ["hot", "warm", "cold"] {
            assert!(legend.iter().any(|t| t == tier), "{tier}");
        }
        // The hit ratio's stretch with nothing read breaks its line once more.
        assert!(count(charts[2], "polyline") > count(charts[0], "polyline"));
    }

    #[test]
    fn an_empty_hour_waits_for_its_first_sample_on_drawn_axes() {
        let svg = render(&[], NOW);
        let doc = roxmltree::Document::parse(text(&svg)).expect("XML");
        let charts = charts(&doc);
        assert_eq!(charts.len(), 4);
        for chart in charts {
            let texts = texts(chart);
            assert!(texts.iter().any(|t| t == WAITING), "{texts:?}");
            assert!(texts.iter().any(|t| t == "13:10"), "{texts:?}");
            assert!(count(chart, "line") >= 8, "a grid");
        }
        assert!(text(&svg).contains("no samples yet"));
    }

    #[test]
    fn samples_outside_the_hour_are_left_out() {
        let inside = rising();
        let mut all = inside.clone();
        for at in [
            NOW - HOUR - 1,
            NOW + 1,
            NOW - 2 * HOUR,
            NOW + HOUR,
            i64::MIN,
        ] {
            all.push(Sample {
                at,
                ops_per_sec: 1e9,
                p99_us: 1e9,
                hit_ratio: Some(0.0),
                tier_bytes: [1 << 50; 3],
            });
        }
        // In another order too: the order of the samples given does not matter.
        all.reverse();
        assert!(render(&all, NOW) == render(&inside, NOW));
        assert!(render(&all[..5], NOW) == render(&[], NOW));
        // The hour's ends are in it.
        let ends = [NOW - HOUR, NOW].map(|at| Sample {
            at,
            ..Sample::default()
        });
        assert!(!text(&render(&ends, NOW)).contains(WAITING));
    }

    #[test]
    fn any_figure_draws_finite() {
        let odd = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            -1e300,
            1e-320,
        ];
        let mut samples = Vec::new();
        for (i, v) in odd.iter().enumerate() {
            samples.push(Sample {
                at: NOW - i as i64 * SECOND,
                ops_per_sec: *v,
                p99_us: *v,
                hit_ratio: Some(*v),
                tier_bytes: [u64::MAX; 3],
            });
        }
        let huge = [Sample {
            at: NOW,
            ops_per_sec: 1e300,
            p99_us: f64::MAX,
            hit_ratio: Some(1e300),
            tier_bytes: [u64::MAX, 0, u64::MAX],
        }];
        let tiny = [Sample {
            at: NOW,
            ops_per_sec: 1e-320,
            p99_us: 1e-9,
            hit_ratio: Some(-0.0),
            tier_bytes: [0; 3],
        }];
        for (samples, now) in [
            (&samples[..], NOW),
            (&huge[..], NOW),
            (&tiny[..], NOW),
            (&[][..], i64::MAX),
            (&[][..], i64::MIN),
            (&[][..], 0),
        ] {
            let extreme = [Sample {
                at: now,
                ..samples.first().cloned().unwrap_or_default()
            }];
            for samples in [samples, &extreme[..]] {
                let svg = render(samples, now);
                let s = text(&svg);
                assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
                roxmltree::Document::parse(s).expect("XML");
            }
        }
    }

    #[test]
    fn figures_are_written_short_with_their_units() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(1234.0), "1.23k");
        assert_eq!(si(1200.0), "1.2k");
        assert_eq!(si(999.8), "1k");
        assert_eq!(si(3.4e6), "3.4M");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(millis(3.4), "3.4 ms");
        assert_eq!(millis(0.042), "0.042 ms");
        assert_eq!(millis(1500.0), "1.5 s");
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(56.0 * 1048576.0), "56 MiB");
        assert_eq!(bytes(1.2 * 1073741824.0), "1.2 GiB");
        assert_eq!(bytes(u64::MAX as f64), "16 EiB");
        assert_eq!(clock(NOW, "%H:%M"), "14:05");
    }

    #[test]
    fn scales_end_on_a_round_value_above_the_largest() {
        let labels = |s: Scale| s.ticks.into_iter().map(|(_, l)| l).collect::<Vec<_>>();
        assert_eq!(
            labels(Scale::linear(1.0, digits)),
            ["0", "0.2", "0.4", "0.6", "0.8", "1"]
        );
        let s = Scale::linear(4150.0, si);
        assert_eq!(s.top, 5000.0);
        assert_eq!(labels(s), ["0", "1k", "2k", "3k", "4k", "5k"]);
        assert_eq!(
            labels(Scale::linear(12.0, digits)),
            ["0", "2.5", "5", "7.5", "10", "12.5"]
        );
        let s = Scale::bytes(378.0 * 1048576.0);
        assert_eq!(s.top, 400.0 * 1048576.0);
        assert_eq!(
            labels(s),
            ["0 MiB", "100 MiB", "200 MiB", "300 MiB", "400 MiB"]
        );
        // Nothing to show: still a scale to draw.
        assert_eq!(Scale::linear(0.0, digits).top, 1.0);
    }

    /// `svg` drawn by rsvg-convert 800 pixels wide, as RGBA pixels; None without the tool.
    fn rasterize(svg: &[u8], dir: &Path, name: &str) -> Option<Vec<[u8; 4]>> {
        let (svg_path, png_path) = (
            dir.join(format!("{name}.svg")),
            dir.join(format!("{name}.png")),
        );
        std::fs::write(&svg_path, svg).expect("write");
        let out = match Command::new("rsvg-convert")
            .args(["-w", "800", "-o"])
            .arg(&png_path)
            .arg(&svg_path)
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => panic!("rsvg-convert: {e}"),
        };
        assert!(
            out.status.success(),
            "rsvg-convert: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let png = std::fs::read(&png_path).expect("read");
        let mut decoder = png::Decoder::new(io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!(info.width, 800);
        let channels = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            other => panic!("rsvg-convert wrote {other:?} pixels"),
        };
        Some(
            buf[..info.buffer_size()]
                .chunks_exact(channels)
                .map(|p| [p[0], p[1], p[2], p.get(3).copied().unwrap_or(255)])
                .collect(),
        )
    }

    /// What a person sees: both pictures have something drawn, and a rising load looks
    /// unlike an empty hour. Set DASHBOARD_RENDERS to a directory to keep the pictures.
    #[test]
    fn it_draws_for_real() {
        let kept = std::env::var_os("DASHBOARD_RENDERS");
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = kept.as_deref().map_or(tmp.path(), Path::new);
        let Some(empty) = rasterize(&render(&[], NOW), dir, "empty") else {
            eprintln!(
                "note: rsvg-convert is not on PATH (Debian: librsvg2-bin); not drawing the dashboard"
            );
            return;
        };
        let busy = rasterize(&render(&rising(), NOW), dir, "rising").expect("drawn");
        for (name, pixels) in [("empty", &empty), ("rising", &busy)] {
            let mut colors: HashMap<[u8; 4], usize> = HashMap::new();
            for p in pixels.iter() {
                *colors.entry(*p).or_default() += 1;
            }
            let background = colors.values().max().copied().unwrap_or(0);
            let drawn = 1.0 - background as f64 / pixels.len() as f64;
            eprintln!(
                "{name}: {} colors, {:.1}% drawn",
                colors.len(),
                drawn * 100.0
            );
            // Text, grid and axes are drawn antialiased: hundreds of colors, and here
            // (with DejaVu) about 9% of the empty hour and 27% of the rising one.
            assert!(colors.len() >= 100, "{name}: {} colors", colors.len());
            assert!(drawn > 0.03, "{name}: {:.1}% drawn", drawn * 100.0);
        }
        assert_eq!(empty.len(), busy.len());
        let differ = empty.iter().zip(&busy).filter(|(a, b)| a != b).count();
        let differ = differ as f64 / empty.len() as f64;
        eprintln!("{:.1}% of the pixels differ", differ * 100.0);
        assert!(differ > 0.05, "a rising load looks like an empty hour");
    }
}
