//! Writing a run's report: `report.json` and three plots as SVG, drawn with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::check::Report;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder or a file could not be written.
    #[error("writing {path}: {message}")]
    Write {
        /// The path.
        path: String,
        /// The cause.
        message: String,
    },
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes `report.json`, `convergence.svg`, `latency_cdf.svg` and `bytes_per_link.svg`.
pub fn write(report: &Report, dir: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let json = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| write_err(&json, e))?;
    std::fs::write(&json, text).map_err(|e| write_err(&json, e))?;
    let path = dir.join("convergence.svg");
    convergence(report, &path).map_err(|e| write_err(&path, e))?;
    let path = dir.join("latency_cdf.svg");
    latency(report, &path).map_err(|e| write_err(&path, e))?;
    let path = dir.join("bytes_per_link.svg");
    bytes(report, &path).map_err(|e| write_err(&path, e))?;
    Ok(())
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn title(report: &Report, what: &str) -> String {
    format!(
        "{what} — {} seed {} ({} days)",
        report.scenario, report.seed, report.days
    )
}

fn convergence(report: &Report, path: &Path) -> PlotResult {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let end = report.convergence.last().map_or(1.0, |p| p.0).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            title(report, "Convergence: deliveries due that have arrived"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("hours since start")
        .y_desc("share arrived")
        .draw()?;
    chart
        .draw_series(LineSeries::new(report.convergence.iter().copied(), &BLUE))?
        .label("delivered")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    let heal = report.days * 24.0;
    chart
        .draw_series(LineSeries::new(vec![(heal, 0.0), (heal, 1.0)], &RED))?
        .label("heal")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn latency(report: &Report, path: &Path) -> PlotResult {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let end = report
        .latency_cdf
        .iter()
        .chain(&report.bound_cdf)
        .map(|p| p.0)
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            title(
                report,
                "Delivery latency against the foremost-journey bound",
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("hours from writing to arrival")
        .y_desc("fraction of deliveries")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            report.latency_cdf.iter().copied(),
            ShapeStyle::from(&BLUE).stroke_width(4),
        ))?
        .label("guihe")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(report.bound_cdf.iter().copied(), &GREEN))?
        .label("foremost-journey bound")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn bytes(report: &Report, path: &Path) -> PlotResult {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut bars: Vec<(String, u64)> = report
        .traffic
        .iter()
        .map(|(k, t)| (k.clone(), t.bytes))
        .collect();
    bars.push(("changes written".into(), report.change_bytes));
    let top = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64 / 1024.0;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title(report, "Bytes per link class"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (0..bars.len().saturating_sub(1)).into_segmented(),
            0.0..top * 1.1,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => {
                labels.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_desc("KiB")
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(BLUE.mix(0.6).filled())
            .margin(40)
            .data(
                bars.iter()
                    .enumerate()
                    .map(|(i, (_, b))| (i, *b as f64 / 1024.0)),
            ),
    )?;
    root.present()?;
    Ok(())
}
