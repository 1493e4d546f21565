//! `#[public]`: turns an item's `pub(crate)` (or `pub(super)`) into `pub`.
//!
//! rankfile-core keeps its plumbing (what only the core itself calls:
//! `Client::with_account`, the receive and relay-protocol steps of
//! `Account`…) crate-private, and the scenario tests and the simulated phones
//! of the benchmarks reach it through the core's `testing` feature:
//!
//! ```ignore
//! #[cfg_attr(feature = "testing", rankfile_testing_pub::public)]
//! pub(crate) fn drain_events(&mut self) -> Vec<Event> { … }
//! ```
//!
//! Written on `proc_macro` alone: a restricted visibility is the token `pub`
//! followed by a parenthesised group, found after the item's attributes.

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// Makes the item it is put on `pub`.
#[proc_macro_attribute]
pub fn public(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return error("#[public] takes no arguments");
    }
    let mut out = Vec::new();
    let mut tokens = item.into_iter().peekable();
    // Outer attributes (doc comments included) come first: `#` and a group.
    while let Some(TokenTree::Punct(p)) = tokens.peek() {
        if p.as_char() != '#' {
            break;
        }
        out.extend(tokens.next());
        out.extend(tokens.next());
    }
    match tokens.next() {
        Some(TokenTree::Ident(vis)) if vis.to_string() == "pub" => {
            out.push(TokenTree::Ident(vis));
            if let Some(TokenTree::Group(g)) = tokens.peek() {
                if g.delimiter() == Delimiter::Parenthesis {
                    tokens.next();
                }
            }
        }
        _ => return error("#[public] goes on an item declared pub(crate)"),
    }
    out.extend(tokens);
    out.into_iter().collect()
}

fn error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});")
        .parse()
        .unwrap_or_default()
}
