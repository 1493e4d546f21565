//! Membership steps of a chaos run as they happen: a join from an invite
//! link (phone 0 makes the invite, the outsider asks, the step waits for the
//! admission to reach both), a removal or role change made again when the
//! organizer died under it and it did not take, and the rosters a send's
//! answer names (who the sender had in its committee before and after).
//!
//! Each membership step ends with the plan's membership true on the
//! organizer's phone, so the invariants can take the membership from the plan.

use super::plan::Op;
use super::process::Failed;
use super::world::{Audience, Outcome, World, SETUP};

/// How many times a command is asked again when its phone died under it.
const TRIES: usize = 4;

impl World<'_> {
    /// Phone `phone` joins: phone 0 makes a one-use invite, the phone asks
    /// with its link, and the step waits until phone 0 has admitted it and
    /// the phone holds the committee with its channel. Faults keep landing
    /// meanwhile (failpoints armed before, the proxy's cuts and delays).
    pub(super) fn join(&mut self, phone: usize) -> Result<Outcome, String> {
        let invite = format!("invite {}", self.committee);
        let link = self.ask_again(0, &invite)?;
        let request = format!("join {link}");
        let mut outcome = Outcome::Done;
        for _ in 0..TRIES {
            match self.try_ask(phone, &request) {
                Ok(_) => break,
                Err(Failed::Died) => {
                    outcome = Outcome::Unknown;
                    self.restart(phone)?;
                    // Asked again only if the request did not commit.
                    if self.ask(phone, "pending")? != "0" || self.is_member(phone, phone)? {
                        break;
                    }
                }
                Err(e) => return Err(format!("phone {phone} `join`: {e}")),
            }
        }
        let members = format!("members {} {}", self.committee, self.channel);
        self.until(SETUP, &format!("phone {phone} admitted"), |w| {
            w.reap()?;
            Ok(w.is_member(0, phone)?
                && w.is_member(phone, phone)?
                && w.ask(phone, &members)? != "0")
        })?;
        Ok(outcome)
    }

    /// After phone 0 died under a removal or role change: asks for it
    /// again unless phone 0's log already has it.
    pub(super) fn complete_change(&mut self, op: &Op, command: &str) -> Result<Outcome, String> {
        let roster = self.ask(0, &format!("roster {}", self.committee))?;
        let taken = match op {
            Op::Remove { phone } => !roster.contains(&self.phones[*phone].id),
            Op::SetRole { phone, role } => roster
                .split(',')
                .any(|m| m == format!("{}:{role}", self.phones[*phone].id)),
            _ => true,
        };
        if !taken {
            self.ask_again(0, command)?;
            self.log.push(format!(
                "    asked again: {}",
                command.split(' ').next().unwrap_or("")
            ));
        }
        Ok(Outcome::Unknown)
    }

    /// Whether phone `at` folds phone `who` a member.
    fn is_member(&mut self, at: usize, who: usize) -> Result<bool, String> {
        let roster = self.ask(at, &format!("roster {}", self.committee))?;
        Ok(roster.contains(&self.phones[who].id))
    }

    /// Asks `command` of phone `i`, starting it again (unarmed) and asking
    /// again when it dies under it.
    fn ask_again(&mut self, i: usize, command: &str) -> Result<String, String> {
        for _ in 0..TRIES {
            match self.try_ask(i, command) {
                Ok(answer) => return Ok(answer),
                Err(Failed::Died) => self.restart(i)?,
                Err(e) => return Err(format!("phone {i} `{}`: {e}", first(command))),
            }
        }
        Err(format!(
            "phone {i} `{}`: died {TRIES} times",
            first(command)
        ))
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        if let Some(mut p) = self.phones[i].process.take() {
            p.kill();
        }
        self.start_phone(i, None)
    }

    /// The audience a send's answer names: `<roster before> <roster after>`.
    pub(super) fn audience(&self, answer: &str) -> Result<Audience, String> {
        let mut rosters = answer.split(' ');
        let mut next = || {
            let roster = rosters
                .next()
                .ok_or_else(|| format!("a send answered `{answer}`"))?;
            self.roster_phones(roster)
        };
        Ok(Audience {
            before: next()?,
            after: next()?,
        })
    }

    /// The phones a roster (`<id>:<role>,…` or `-`) names.
    pub(super) fn roster_phones(
        &self,
        roster: &str,
    ) -> Result<std::collections::BTreeSet<usize>, String> {
        roster
            .split(',')
            .filter(|m| *m != "-" && !m.is_empty())
            .map(|m| {
                let id = m.split(':').next().unwrap_or(m);
                self.phones
                    .iter()
                    .position(|s| s.id == id)
                    .ok_or_else(|| format!("a roster names an unknown account {id}"))
            })
            .collect()
    }
}

/// A command's first word, for messages (no IDs, no links).
fn first(command: &str) -> &str {
    command.split(' ').next().unwrap_or(command)
}
