//! Small charts drawn on the server as SVG: no chart library in the browser.

use maud::{Markup, html};

/// One bar: a label (the day), a total, and the part of it that went wrong.
pub(crate) struct Bar {
    pub label: String,
    pub total: u64,
    pub bad: u64,
}

/// Bars of totals with their bad part in red, scaled to the largest; `title` names the chart
/// for screen readers, and the same numbers stand in a table next to it.
pub(crate) fn bars(title: &str, bars: &[Bar]) -> Markup {
    const WIDTH: f64 = 400.0;
    const HEIGHT: f64 = 120.0;
    const BASE: f64 = 104.0;
    let max = bars.iter().map(|bar| bar.total).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / bars.len().max(1) as f64;
    let width = (slot * 0.7).max(1.0);
    html! {
        svg class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
            title { (title) }
            line x1="0" y1=(BASE) x2=(WIDTH) y2=(BASE) stroke="#cfd8d3" {}
            @for (index, bar) in bars.iter().enumerate() {
                @let x = index as f64 * slot + (slot - width) / 2.0;
                @let height = bar.total as f64 / max * 92.0;
                @let bad = bar.bad.min(bar.total) as f64 / max * 92.0;
                rect class="bar" x=(format!("{x:.1}")) y=(format!("{:.1}", BASE - height)) width=(format!("{width:.1}")) height=(format!("{height:.1}")) {
                    title { (bar.label) ": " (bar.total) " requests, " (bar.bad) " failed" }
                }
                @if bar.bad > 0 {
                    rect class="bad" x=(format!("{x:.1}")) y=(format!("{:.1}", BASE - bad)) width=(format!("{width:.1}")) height=(format!("{bad:.1}")) {}
                }
                @if bars.len() <= 12 || index % (bars.len() / 8).max(1) == 0 {
                    text x=(format!("{:.1}", x + width / 2.0)) y="116" text-anchor="middle" { (bar.label) }
                }
            }
            text x="2" y="10" { "max " (max as u64) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_their_labels() {
        let chart = bars(
            "Requests <per day>",
            &[Bar { label: "12-01".into(), total: 10, bad: 2 }, Bar { label: "<b>".into(), total: 5, bad: 0 }],
        )
        .into_string();
        assert!(chart.contains("height=\"92.0\""), "{chart}");
        assert!(chart.contains("&lt;b&gt;"), "{chart}");
        assert!(!chart.contains("<b>"), "{chart}");
        assert_eq!(chart.matches("class=\"bad\"").count(), 1);
        // No data draws an empty chart, not a division by zero.
        assert!(bars("empty", &[]).into_string().contains("max 1"));
    }
}
