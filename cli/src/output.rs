//! What the CLI prints: text for people (aligned, coloured only when stdout is
//! a terminal and `NO_COLOR` is unset) or one JSON object per line for
//! scripts; errors on stderr; spinners only on a terminal and only for waits
//! longer than a second.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::error::CliError;

/// A wait shorter than this shows no spinner.
const SPINNER_DELAY: Duration = Duration::from_secs(1);

/// Where and how to print.
#[derive(Debug, Clone)]
pub struct Output {
    json: bool,
    colour: bool,
    interactive: bool,
}

/// A text style, as ANSI codes when colour is on.
#[derive(Debug, Clone, Copy)]
pub enum Style {
    Bold,
    Good,
    Bad,
    Dim,
}

impl Output {
    /// For `--json` or for people.
    pub fn new(json: bool) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        Output {
            json,
            colour: stdout_tty && std::env::var_os("NO_COLOR").is_none(),
            interactive: std::io::stderr().is_terminal(),
        }
    }

    /// Whether scripts asked for JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// `text` in `style` (plain when colour is off).
    pub fn paint(&self, style: Style, text: &str) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match style {
            Style::Bold => "1",
            Style::Good => "32",
            Style::Bad => "31",
            Style::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Prints the human text, or the JSON object, to stdout.
    pub fn emit(&self, human: impl FnOnce() -> String, json: impl FnOnce() -> Value) {
        if self.json {
            println!("{}", json());
        } else {
            println!("{}", human());
        }
    }

    /// A note for people on stderr (nothing in JSON mode).
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// Reports an error on stderr: plain words, or a JSON object.
    pub fn error(&self, e: &CliError) {
        if self.json {
            eprintln!(
                "{}",
                serde_json::json!({
                    "error": e.kind(),
                    "message": e.to_string(),
                    "exit_code": e.exit_code(),
                })
            );
        } else {
            eprintln!("rankfile: {e}");
        }
    }

    /// Runs `fut`; if it takes longer than a second and stderr is a terminal,
    /// shows a spinner with `message` until it finishes.
    pub async fn wait<F: Future>(&self, message: &str, fut: F) -> F::Output {
        tokio::pin!(fut);
        if let Ok(done) = tokio::time::timeout(SPINNER_DELAY, &mut fut).await {
            return done;
        }
        let bar = self.spinner(message);
        let out = fut.await;
        bar.finish_and_clear();
        out
    }

    /// A spinner on stderr, hidden when stderr is not a terminal.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A progress bar of `len` steps on stderr, hidden when not a terminal.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_owned());
        bar
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.interactive && !self.json {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }
}

/// Rows as aligned columns, two spaces apart; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
pub fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock((13 * 3600 + 5 * 60 + 9) * 1000 + 999), "13:05:09");
        assert_eq!(clock(86_400_000 + 61_000), "00:01:01");
    }

    #[test]
    fn tables_align() {
        let t = table(&[
            vec!["name".into(), "id".into()],
            vec!["alice-long".into(), "rf1-a".into()],
        ]);
        assert_eq!(t, "name        id\nalice-long  rf1-a");
    }

    #[test]
    fn no_colour_off_a_terminal() {
        let out = Output {
            json: false,
            colour: false,
            interactive: false,
        };
        assert_eq!(out.paint(Style::Bad, "x"), "x");
        let on = Output {
            colour: true,
            ..out
        };
        assert_eq!(on.paint(Style::Bad, "x"), "\x1b[31mx\x1b[0m");
    }
}
