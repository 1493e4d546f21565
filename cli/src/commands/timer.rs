//! `rankfile timer CONTACT DURATION|off`: the disappearing timer of the
//! conversation with a contact. Either side sets it; the other phone adopts
//! it, and both delete each text that long after it was sent. The timer is
//! shown where conversations show: `contact list`, and `watch` beside each
//! message.

use serde_json::json;

use super::contact::by_name;
use crate::cli::TimerArgs;
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::output::{Output, Style};

/// Longest timer: a year, as the core allows.
const MAX_SECS: u64 = 365 * 24 * 3600;

/// Runs `rankfile timer`.
pub fn run(home: &Home, args: &TimerArgs, out: &Output) -> Result<()> {
    let secs = parse_duration(&args.duration)?;
    let (name, peer) = super::online(home, &args.relay, out, async |online| {
        let peer = by_name(&online.client, &args.contact).await?;
        let name = online.client.contact(peer).await?.name;
        out.wait(
            "sending the change",
            online.client.set_conversation_timer(peer, secs),
        )
        .await?;
        Ok((name, peer))
    })?;
    out.emit(
        || {
            if secs == 0 {
                format!(
                    "{} with {name}: messages are kept",
                    out.paint(Style::Good, "disappearing messages off")
                )
            } else {
                format!(
                    "{} with {name}: {} — both phones delete each message that long after it is sent",
                    out.paint(Style::Good, "disappearing messages"),
                    out.paint(Style::Bold, &show_duration(secs))
                )
            }
        },
        || json!({ "peer": peer.to_string(), "name": name, "timer_secs": secs }),
    );
    Ok(())
}

/// A duration as typed: `off` (or 0), a number of seconds, or a number with
/// a unit — `s`, `m`, `h`, `d`, `w` (`90m`, `1d`).
pub fn parse_duration(text: &str) -> Result<u32> {
    let bad = || {
        CliError::Usage(format!(
            "`{}` is not a duration: give `off`, or a number with s, m, h, d or w (e.g. 1h, 7d), at most a year",
            super::quoted(text)
        ))
    };
    let t = text.trim().to_ascii_lowercase();
    if t == "off" {
        return Ok(0);
    }
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = n
        .checked_mul(per)
        .filter(|s| *s <= MAX_SECS)
        .ok_or_else(bad)?;
    u32::try_from(secs).map_err(|_| bad())
}

/// A timer for people: `off`, or its largest whole unit (`90m`, `1d`).
pub fn show_duration(secs: u32) -> String {
    if secs == 0 {
        return "off".into();
    }
    for (per, unit) in [(7 * 86_400, "w"), (86_400, "d"), (3600, "h"), (60, "m")] {
        if secs % per == 0 {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_show_in_the_largest_whole_one() {
        for (text, secs) in [
            ("off", 0),
            ("0", 0),
            ("45", 45),
            ("45s", 45),
            ("90m", 5400),
            ("1H", 3600),
            ("7d", 604_800),
            ("52w", 52 * 604_800),
        ] {
            assert_eq!(parse_duration(text).expect(text), secs, "{text}");
        }
        for bad in ["", "h", "1y", "-1h", "1.5h", "53w", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(show_duration(0), "off");
        assert_eq!(show_duration(5400), "90m");
        assert_eq!(show_duration(86_400), "1d");
        assert_eq!(show_duration(1_209_600), "2w");
        assert_eq!(show_duration(61), "61s");
    }
}
