//! Scroll benchmark: the Packages list with N installed packages (default 2,000), scrolled from
//! top to bottom at a steady speed, one step per frame. Reports how long filling the model took,
//! the frame intervals and the work per frame, and how many row widgets the list made (a list
//! model makes widgets for the visible rows only).
//!
//! ```sh
//! Xvfb :99 & DISPLAY=:99 GSK_RENDERER=cairo cargo run --release -p moss-gui --example bench_scroll -- 2000
//! ```

use std::{cell::RefCell, rc::Rc, time::Instant};

use adw::prelude::*;
use moss_gui::ui::packages::PackageList;
use moss_proto::wire::Package;

/// Pixels scrolled per frame: about 2,400 px/s at 60 frames per second, a fast flick.
const STEP: f64 = 40.0;

#[derive(Default)]
struct Samples {
    frame_starts: Vec<Instant>,
    frame_ends: Vec<Instant>,
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index]
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    #[expect(clippy::print_stdout, reason = "the benchmark's report")]
    {
        println!(
            "{name}: n={} mean={mean:.2} ms p50={:.2} ms p95={:.2} ms max={:.2} ms",
            values.len(),
            percentile(&values, 0.5),
            percentile(&values, 0.95),
            values.last().copied().unwrap_or(0.0)
        );
    }
}

fn main() -> gtk::glib::ExitCode {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(2000);
    let application = adw::Application::builder()
        .application_id("com.serpentos.Moss.BenchScroll")
        .flags(gtk::gio::ApplicationFlags::NON_UNIQUE)
        .build();
    application.connect_activate(move |application| {
        let list = PackageList::new();
        let packages: Vec<Package> = (0..count)
            .map(|index| Package {
                id: format!("{index:064x}"),
                name: format!("package-{index:05}"),
                version: format!("{}.{}", index % 17, index % 5),
                release: (index % 9) as u64 + 1,
                build_release: 1,
                summary: format!("Synthetic package number {index} for the scroll benchmark"),
                explicit: index % 3 == 0,
                repository: String::new(),
            })
            .collect();
        let filled = Instant::now();
        list.set_packages(packages);
        let fill_ms = filled.elapsed().as_secs_f64() * 1000.0;
        let window = adw::ApplicationWindow::builder()
            .application(application)
            .default_width(480)
            .default_height(720)
            .content(&list.widget)
            .build();
        window.present();
        let samples = Rc::new(RefCell::new(Samples::default()));
        let adjustment = list.widget.vadjustment();
        let samples_in_tick = samples.clone();
        let window_in_tick = window.clone();
        let list_in_tick = list.clone();
        let settle = Rc::new(RefCell::new(10u32));
        list.view.add_tick_callback(move |_, clock| {
            // Let the window map and lay out before measuring.
            if *settle.borrow() > 0 {
                *settle.borrow_mut() -= 1;
                return gtk::glib::ControlFlow::Continue;
            }
            if samples_in_tick.borrow().frame_starts.is_empty() {
                let samples = samples_in_tick.clone();
                clock.connect_after_paint(move |_| {
                    samples.borrow_mut().frame_ends.push(Instant::now())
                });
            }
            samples_in_tick
                .borrow_mut()
                .frame_starts
                .push(Instant::now());
            let bottom = adjustment.upper() - adjustment.page_size();
            if adjustment.value() >= bottom {
                let samples = samples_in_tick.borrow();
                let starts = &samples.frame_starts;
                let intervals: Vec<f64> = starts
                    .windows(2)
                    .map(|pair| (pair[1] - pair[0]).as_secs_f64() * 1000.0)
                    .collect();
                let work: Vec<f64> = starts
                    .iter()
                    .zip(samples.frame_ends.iter())
                    .map(|(start, end)| (*end - *start).as_secs_f64() * 1000.0)
                    .collect();
                #[expect(clippy::print_stdout, reason = "the benchmark's report")]
                {
                    println!("packages: {count}; model filled in {fill_ms:.1} ms");
                    println!(
                        "scrolled {:.0} px in {} frames; row widgets made: {}",
                        bottom,
                        starts.len(),
                        list_in_tick.rows_created.get()
                    );
                }
                summary("frame interval", intervals);
                summary("work per frame (tick to painted)", work);
                window_in_tick.close();
                return gtk::glib::ControlFlow::Break;
            }
            adjustment.set_value((adjustment.value() + STEP).min(bottom));
            gtk::glib::ControlFlow::Continue
        });
    });
    application.run_with_args::<&str>(&[])
}
